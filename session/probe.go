package session

import (
	"slices"
	"strconv"
	"strings"
)

// The probe asks a server connection, after a transaction that may have
// changed session state, what state the session holds now. Its answer is
// exact, whatever the SQL did (rolled back SETs, SET LOCAL, savepoints,
// functions, set_config): the settings changed in this session, and the
// counts of the kinds of state that cannot move to another connection.
//
// Rows are (probeMark, name, value): settings by lowercase name, and the
// counters under names that start with '#', which no setting does. The
// mark tells them from rows of statements sent in the same query.
const probeMark = "pgpoolx.probe"

const probeSQL = `SELECT 'pgpoolx.probe', lower(name), setting FROM pg_catalog.pg_settings WHERE source = 'session'` +
	` UNION ALL ` + LockProbeSQL +
	` UNION ALL SELECT 'pgpoolx.probe', '#listen', count(*)::text FROM pg_catalog.pg_listening_channels()` +
	` UNION ALL SELECT 'pgpoolx.probe', '#temp', count(*)::text FROM pg_catalog.pg_class WHERE relnamespace = pg_catalog.pg_my_temp_schema()` +
	` UNION ALL SELECT 'pgpoolx.probe', '#cursors', count(*)::text FROM pg_catalog.pg_cursors WHERE is_holdable` +
	` UNION ALL SELECT 'pgpoolx.probe', '#prepared', count(*)::text FROM pg_catalog.pg_prepared_statements WHERE from_sql` +
	` UNION ALL SELECT 'pgpoolx.probe', '#role', (pg_catalog.current_setting('role') <> 'none' OR session_user <> (SELECT usename FROM pg_catalog.pg_stat_activity WHERE pid = pg_catalog.pg_backend_pid()))::int::text`

// LockProbeSQL is the probe after a transaction whose statements could
// change nothing but session advisory locks (Effect.OnlyLocks): it reads
// the lock count alone, about a tenth of ProbeSQL's cost on the server.
const LockProbeSQL = `SELECT 'pgpoolx.probe', '#locks', count(*)::text FROM pg_catalog.pg_locks WHERE locktype = 'advisory' AND pid = pg_catalog.pg_backend_pid()`

// OtherState reports whether the probe found session state other than
// advisory locks: a LISTEN, temporary objects, WITH HOLD cursors, SQL
// prepared statements or a changed role.
func (p *Probe) OtherState() bool {
	return p.Listens > 0 || p.TempObjects > 0 || p.HoldCursors > 0 || p.SQLPrepared > 0 || p.RoleChanged
}

// IsCustom reports whether a setting name is a custom (extension or
// application) setting such as "myapp.tenant". PostgreSQL lists those in
// pg_settings only once a module defines them, so the probe asks for each
// one it knows of by name.
func IsCustom(name string) bool { return strings.Contains(name, ".") }

// ProbeSQL returns the probe. defaults are the settings a RESET must go
// back to for this client (its startup settings and the baseline): any of
// them that is no longer set in the session (a RESET, RESET ALL or
// DISCARD ALL took it back to the server default) is set again first.
// custom names the custom settings to read besides pg_settings.
func ProbeSQL(defaults map[string]string, custom []string) string {
	var plain, dotted []string
	for k := range defaults {
		if IsCustom(k) {
			dotted = append(dotted, k)
		} else {
			plain = append(plain, k)
		}
	}
	slices.Sort(plain)
	slices.Sort(dotted)
	var b strings.Builder
	values := func(names []string, vals map[string]string) {
		for i, k := range names {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(" + Literal(k))
			if vals != nil {
				b.WriteString(", " + Literal(vals[k]))
			}
			b.WriteString(")")
		}
	}
	if len(plain) > 0 {
		b.WriteString("SELECT pg_catalog.set_config(f.name, f.value, false) FROM (VALUES ")
		values(plain, defaults)
		b.WriteString(") AS f(name, value) JOIN pg_catalog.pg_settings s ON lower(s.name) = f.name WHERE s.source <> 'session'; ")
	}
	if len(dotted) > 0 {
		b.WriteString("SELECT pg_catalog.set_config(f.name, f.value, false) FROM (VALUES ")
		values(dotted, defaults)
		b.WriteString(") AS f(name, value) WHERE coalesce(pg_catalog.current_setting(f.name, true), '') = ''; ")
	}
	b.WriteString(probeSQL)
	if len(custom) > 0 {
		custom = slices.Clone(custom)
		slices.Sort(custom)
		custom = slices.Compact(custom)
		b.WriteString(" UNION ALL SELECT 'pgpoolx.probe', c.name, pg_catalog.current_setting(c.name, true) FROM (VALUES ")
		values(custom, nil)
		b.WriteString(") AS c(name) WHERE coalesce(pg_catalog.current_setting(c.name, true), '') <> ''")
	}
	return b.String()
}

// Probe is what a probe found.
type Probe struct {
	Settings      map[string]string
	AdvisoryLocks int
	Listens       int
	TempObjects   int
	HoldCursors   int
	SQLPrepared   int
	RoleChanged   bool
}

// NewProbe returns an empty probe to feed rows to.
func NewProbe() *Probe { return &Probe{Settings: map[string]string{}} }

// Row records one row of the probe's answer. Rows of other statements in
// the same query (fix-ups, settings) are ignored.
func (p *Probe) Row(values [][]byte) {
	if len(values) != 3 || string(values[0]) != probeMark || values[1] == nil {
		return
	}
	name, value := string(values[1]), string(values[2])
	if !strings.HasPrefix(name, "#") {
		p.Settings[name] = value
		return
	}
	n, _ := strconv.Atoi(value)
	switch name {
	case "#locks":
		p.AdvisoryLocks = n
	case "#listen":
		p.Listens = n
	case "#temp":
		p.TempObjects = n
	case "#cursors":
		p.HoldCursors = n
	case "#prepared":
		p.SQLPrepared = n
	case "#role":
		p.RoleChanged = n != 0
	}
}

// PinReason returns why the session cannot leave its server connection,
// or "" when nothing holds it there.
func (p *Probe) PinReason() Reason {
	switch {
	case p.AdvisoryLocks > 0:
		return PinAdvisoryLock
	case p.Listens > 0:
		return PinListen
	case p.TempObjects > 0:
		return PinTempTable
	case p.HoldCursors > 0:
		return PinHoldCursor
	case p.SQLPrepared > 0:
		return PinSQLPrepare
	case p.RoleChanged:
		return PinRole
	}
	return ""
}

// Reason is the stable code of why a client is pinned to its server
// connection, as logged in "session pinned" lines.
type Reason string

// The reasons pgpoolx pins a session.
const (
	PinAdvisoryLock Reason = "session_advisory_lock"
	PinListen       Reason = "listen"
	PinTempTable    Reason = "temp_table"
	PinHoldCursor   Reason = "hold_cursor"
	PinSQLPrepare   Reason = "sql_prepared_statement"
	PinRole         Reason = "role_change"
	PinLoad         Reason = "load"
)

// Detail is a sentence a person understands about the pin.
func (r Reason) Detail() string {
	switch r {
	case PinAdvisoryLock:
		return "The session holds a session-level advisory lock, which lives on its server connection until unlocked."
	case PinListen:
		return "The session listens on a notification channel; notifications arrive on its server connection only."
	case PinTempTable:
		return "The session has temporary tables, views or sequences, which exist on its server connection only."
	case PinHoldCursor:
		return "The session has a cursor declared WITH HOLD, which outlives its transaction on its server connection."
	case PinSQLPrepare:
		return "The session prepared a statement with SQL PREPARE, which exists on its server connection only."
	case PinRole:
		return "The session changed its role or session authorization, which pgpoolx does not move between server connections."
	case PinLoad:
		return "The session loaded a shared library with LOAD, whose effect pgpoolx cannot know or undo."
	}
	return ""
}

// Hint says how to avoid the pin.
func (r Reason) Hint() string {
	switch r {
	case PinAdvisoryLock:
		return "Use transaction-level advisory locks (pg_advisory_xact_lock) or unlock as soon as possible."
	case PinListen:
		return "Run LISTEN on a dedicated connection (session pool mode), or UNLISTEN when done."
	case PinTempTable:
		return "Create temporary tables with ON COMMIT DROP, or drop them before the transaction ends."
	case PinHoldCursor:
		return "Declare cursors WITHOUT HOLD inside a transaction, or CLOSE them when done."
	case PinSQLPrepare:
		return "Use protocol-level prepared statements (your driver's prepare), which pgpoolx moves between server connections, or DEALLOCATE when done."
	case PinRole:
		return "Connect as the role you need, or RESET ROLE when done."
	case PinLoad:
		return "Load libraries with shared_preload_libraries or session_preload_libraries on the server instead."
	}
	return ""
}

package admin

import (
	"context"
	"fmt"
	"strconv"

	"github.com/pgpoolx/pgpoolx/config"
	"github.com/pgpoolx/pgpoolx/stats"
)

// Backend is the pooler as the console sees it.
type Backend interface {
	Pools() []stats.Pool
	DatabaseStats() []stats.DatabaseStats
	Clients() []stats.Client
	Servers() []stats.Server
	Databases() []stats.Database
	Config() []config.Setting
	Version() string

	// Pause holds new transactions of db ("" for all) and returns once
	// the running ones have finished and the idle server connections are
	// closed, or ctx ends.
	Pause(ctx context.Context, db string) error
	Resume(db string) error
	Reload() error
	// Kill disconnects every client and server connection of db and
	// leaves it paused.
	Kill(db string) error
	// Reconnect closes db's server connections ("" for all) as each
	// becomes idle.
	Reconnect(db string) error
	Shutdown()
}

// UnknownDatabase is the error for a command naming a database that is
// not configured.
func UnknownDatabase(db string) *Error {
	return &Error{Code: codeUndefinedDatabase, Message: fmt.Sprintf("database %q is not configured", db)}
}

// StateError is the error for a command that does not fit the current
// state (RESUME of a database that is not paused, say).
func StateError(format string, args ...any) *Error {
	return &Error{Code: codeObjectState, Message: fmt.Sprintf(format, args...)}
}

// Run executes one command.
func Run(ctx context.Context, b Backend, cmd Command) (*Result, error) {
	switch cmd.Verb {
	case Show:
		return show(b, cmd.Arg), nil
	case Pause:
		return &Result{Tag: "PAUSE"}, b.Pause(ctx, cmd.Arg)
	case Resume:
		return &Result{Tag: "RESUME"}, b.Resume(cmd.Arg)
	case Reload:
		return &Result{Tag: "RELOAD"}, b.Reload()
	case Kill:
		return &Result{Tag: "KILL"}, b.Kill(cmd.Arg)
	case Reconnect:
		return &Result{Tag: "RECONNECT"}, b.Reconnect(cmd.Arg)
	case Shutdown:
		// After the answer is out: shutdown closes console sessions.
		return &Result{Tag: "SHUTDOWN", After: b.Shutdown}, nil
	}
	return nil, syntaxError("unknown command %q", cmd.Verb)
}

func show(b Backend, what string) *Result {
	switch what {
	case "POOLS":
		return showPools(b.Pools())
	case "STATS":
		return showStats(b.DatabaseStats())
	case "CLIENTS":
		return showClients(b.Clients())
	case "SERVERS":
		return showServers(b.Servers())
	case "DATABASES":
		return showDatabases(b.Databases())
	case "CONFIG":
		return showConfig(b.Config())
	case "PINS":
		return showPins(b.Clients())
	case "VERSION":
		return &Result{Columns: []Column{text("version")}, Rows: [][]string{{"pgpoolx " + b.Version()}}, Tag: "SHOW"}
	}
	return showHelp()
}

// The column names follow PgBouncer's SHOW output where the concept is
// the same, so exporters and dashboards made for it work; pgpoolx's own
// columns come last.

func showPools(pools []stats.Pool) *Result {
	r := &Result{Tag: "SHOW", Columns: []Column{
		text("database"), text("user"),
		integer("cl_active"), integer("cl_waiting"), integer("cl_active_cancel_req"), integer("cl_waiting_cancel_req"),
		integer("sv_active"), integer("sv_active_cancel"), integer("sv_being_canceled"), integer("sv_idle"),
		integer("sv_used"), integer("sv_tested"), integer("sv_login"),
		integer("maxwait"), integer("maxwait_us"), text("pool_mode"),
		integer("cl_pinned"), integer("paused"),
	}}
	for _, p := range pools {
		r.Rows = append(r.Rows, []string{
			p.Database, p.User,
			// PgBouncer counts idle clients as active: logged in, not waiting.
			itoa(p.ClientsActive + p.ClientsIdle), itoa(p.ClientsWaiting), "0", "0",
			itoa(p.ServersActive), "0", "0", itoa(p.ServersIdle),
			"0", "0", itoa(p.ServersLogin),
			itoa(int64(p.MaxWait.Seconds())), itoa(p.MaxWait.Microseconds() % 1e6), p.PoolMode,
			itoa(p.ClientsPinned), boolean(p.Paused),
		})
	}
	return r
}

func showStats(dbs []stats.DatabaseStats) *Result {
	r := &Result{Tag: "SHOW", Columns: []Column{
		text("database"),
		integer("total_xact_count"), integer("total_query_count"), integer("total_received"), integer("total_sent"),
		integer("total_xact_time"), integer("total_query_time"), integer("total_wait_time"),
		integer("avg_xact_count"), integer("avg_query_count"), integer("avg_recv"), integer("avg_sent"),
		integer("avg_xact_time"), integer("avg_query_time"), integer("avg_wait_time"),
	}}
	for _, d := range dbs {
		t, a := d.Totals, d.Rates
		r.Rows = append(r.Rows, []string{
			d.Database,
			itoa(t.Xacts), itoa(t.Queries), itoa(t.BytesIn), itoa(t.BytesOut),
			micros(t.XactTime), micros(t.QueryTime), micros(t.WaitTime),
			float(a.Xacts), float(a.Queries), float(a.BytesIn), float(a.BytesOut),
			micros(a.XactTime), micros(a.QueryTime), micros(a.WaitTime),
		})
	}
	return r
}

var connectionColumns = []Column{
	text("type"), text("user"), text("database"), text("state"), text("addr"), integer("port"),
	text("local_addr"), integer("local_port"), text("connect_time"), text("request_time"),
	integer("wait"), integer("wait_us"), integer("close_needed"), text("ptr"), text("link"),
	integer("remote_pid"), text("tls"), text("application_name"),
}

func showClients(clients []stats.Client) *Result {
	r := &Result{Tag: "SHOW", Columns: append(connectionColumns[:len(connectionColumns):len(connectionColumns)],
		integer("pgpoolx_pid"), text("pin_reason"))}
	for _, c := range clients {
		link := ""
		if c.ServerPID != 0 {
			link = itoa(c.ServerPID)
		}
		r.Rows = append(r.Rows, []string{
			"C", c.User, c.Database, c.State, c.Addr, itoa(c.Port),
			c.LocalAddr, itoa(c.LocalPort), timestamp(c.ConnectTime), timestamp(c.RequestTime),
			itoa(int64(c.Wait.Seconds())), itoa(c.Wait.Microseconds() % 1e6), "0", strconv.FormatUint(c.ID, 16), link,
			// PgBouncer shows the pid a client got in BackendKeyData.
			itoa(c.PID), c.TLS, c.ApplicationName,
			itoa(c.PID), c.Pin,
		})
	}
	return r
}

func showServers(servers []stats.Server) *Result {
	r := &Result{Tag: "SHOW", Columns: connectionColumns}
	for _, s := range servers {
		link := ""
		if s.ClientPID != 0 {
			link = itoa(s.ClientPID)
		}
		r.Rows = append(r.Rows, []string{
			"S", s.User, s.Database, s.State, s.Addr, itoa(s.Port),
			s.LocalAddr, itoa(s.LocalPort), timestamp(s.ConnectTime), timestamp(s.RequestTime),
			"0", "0", "0", strconv.FormatUint(uint64(s.PID), 16), link,
			itoa(s.PID), "", s.ApplicationName,
		})
	}
	return r
}

func showDatabases(dbs []stats.Database) *Result {
	r := &Result{Tag: "SHOW", Columns: []Column{
		text("name"), text("host"), integer("port"), text("database"), text("force_user"),
		integer("pool_size"), integer("min_pool_size"), integer("reserve_pool"), text("pool_mode"),
		integer("max_connections"), integer("current_connections"), integer("paused"), integer("disabled"),
	}}
	for _, d := range dbs {
		r.Rows = append(r.Rows, []string{
			d.Name, d.Host, itoa(d.Port), d.DBName, d.ForceUser,
			itoa(d.PoolSize), "0", "0", d.PoolMode,
			"0", itoa(d.CurrentConnections), boolean(d.Paused), "0",
		})
	}
	return r
}

func showConfig(settings []config.Setting) *Result {
	r := &Result{Tag: "SHOW", Columns: []Column{text("key"), text("value"), text("default"), text("changeable")}}
	for _, s := range settings {
		ch := "no"
		if s.Changeable {
			ch = "yes"
		}
		r.Rows = append(r.Rows, []string{s.Key, s.Value, s.Default, ch})
	}
	return r
}

// showPins lists the pinned sessions: who, why, since when.
func showPins(clients []stats.Client) *Result {
	r := &Result{Tag: "SHOW", Columns: []Column{
		text("database"), text("user"), integer("pid"), text("addr"), integer("port"),
		text("reason"), text("detail"), text("digest"), text("pinned_since"), numeric("pinned_seconds"),
		integer("transactions"), integer("server_pid"), text("application_name"),
	}}
	for _, c := range clients {
		if c.Pin == "" {
			continue
		}
		r.Rows = append(r.Rows, []string{
			c.Database, c.User, itoa(c.PID), c.Addr, itoa(c.Port),
			c.Pin, c.PinDetail, c.PinDigest, timestamp(c.PinnedAt), strconv.FormatFloat(since(c.PinnedAt), 'f', 3, 64),
			itoa(c.PinnedTransactions), itoa(c.ServerPID), c.ApplicationName,
		})
	}
	return r
}

func showHelp() *Result {
	r := &Result{Tag: "SHOW", Columns: []Column{text("command"), text("description")}}
	for _, h := range [][2]string{
		{"SHOW POOLS", "clients and server connections of each (database, user) pool"},
		{"SHOW STATS", "traffic totals and per-second averages of each database"},
		{"SHOW CLIENTS", "every client connection"},
		{"SHOW SERVERS", "every server connection"},
		{"SHOW DATABASES", "the configured databases"},
		{"SHOW CONFIG", "the configuration in force"},
		{"SHOW PINS", "the pinned sessions, why and since when"},
		{"SHOW VERSION", "pgpoolx's version"},
		{"PAUSE [db]", "let running transactions finish, close server connections, hold new transactions"},
		{"RESUME [db]", "let held transactions go after PAUSE or KILL"},
		{"RELOAD", "re-read the configuration file"},
		{"KILL db", "disconnect every client and server connection of db, and pause it"},
		{"RECONNECT [db]", "replace server connections as each becomes idle"},
		{"SHUTDOWN", "stop pgpoolx gracefully"},
	} {
		r.Rows = append(r.Rows, []string{h[0], h[1]})
	}
	return r
}

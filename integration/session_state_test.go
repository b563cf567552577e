package integration

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/zap/zaptest/observer"
)

// Session state tracking (issue 3): settings follow each client to
// whatever server connection runs its transaction, and state that cannot
// move pins the client while it lasts.

// rowQuerier is what *pgx.Conn and pgx.Tx have in common for reading.
type rowQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// trioSQL reads the three settings the concurrency test gives every
// client its own value of.
const trioSQL = `SELECT current_setting('application_name'), current_setting('statement_timeout'), current_setting('search_path')`

// TestNoSettingLeaksUnderConcurrency is the acceptance test: 100 clients,
// each with its own application_name, statement_timeout and search_path,
// half from the startup packet and half from SET, share 5 server
// connections; every transaction sees exactly its client's values.
func TestNoSettingLeaksUnderConcurrency(t *testing.T) {
	const (
		poolSize    = 5
		clients     = 100
		txPerClient = 100
	)
	p := startPooler(t, "", fmt.Sprintf("pool_size: %d", poolSize))
	ctx := t.Context()
	direct := p.direct(t)
	var ddl strings.Builder
	for k := 1; k <= clients; k++ {
		fmt.Fprintf(&ddl, "CREATE SCHEMA s%d;", k)
	}
	if _, err := direct.Exec(ctx, ddl.String()); err != nil {
		t.Fatal(err)
	}

	type leakClient struct {
		k      int
		viaSet bool
		want   [3]string
		conn   *pgx.Conn
	}
	cs := make([]*leakClient, clients)
	for i := range cs {
		k := i + 1
		// k*1001 ms is never a whole number of seconds, so it reads back
		// as written: 17017ms.
		c := &leakClient{k: k, viaSet: k%2 == 0, want: [3]string{
			fmt.Sprintf("c%d", k), fmt.Sprintf("%dms", k*1001), fmt.Sprintf("s%d, public", k)}}
		extra := "default_query_exec_mode=" + execModes[k%len(execModes)]
		if !c.viaSet {
			extra += fmt.Sprintf("&application_name=c%d&statement_timeout=%d&search_path=%s",
				k, k*1001, url.PathEscape(c.want[2]))
		}
		c.conn = p.connect(t, extra)
		cs[i] = c
	}

	stopSampling := p.sampleServerConns(t, direct)

	var (
		mu         sync.Mutex
		mismatches int
		firstFew   []string
		failures   []error
	)
	mismatch := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		mismatches++
		if len(firstFew) < 5 {
			firstFew = append(firstFew, fmt.Sprintf(format, args...))
		}
	}
	// One transaction of client c, in one of three shapes: a lone query,
	// an explicit transaction through pgx, and BEGIN; SELECT; COMMIT in one
	// simple query.
	run := func(c *leakClient, i int) (got [3]string, err error) {
		switch i % 3 {
		case 0:
			err = c.conn.QueryRow(ctx, trioSQL).Scan(&got[0], &got[1], &got[2])
		case 1:
			err = pgx.BeginFunc(ctx, c.conn, func(tx pgx.Tx) error {
				return tx.QueryRow(ctx, trioSQL).Scan(&got[0], &got[1], &got[2])
			})
		case 2:
			var results []*pgconn.Result
			results, err = c.conn.PgConn().Exec(ctx, "BEGIN; "+trioSQL+"; COMMIT").ReadAll()
			if err == nil {
				if len(results) != 3 || len(results[1].Rows) != 1 || len(results[1].Rows[0]) != 3 {
					return got, fmt.Errorf("unexpected results %v", results)
				}
				for j, v := range results[1].Rows[0] {
					got[j] = string(v)
				}
			}
		}
		return got, err
	}

	start := time.Now()
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Go(func() {
			fail := func(err error) {
				mu.Lock()
				failures = append(failures, fmt.Errorf("client c%d: %w", c.k, err))
				mu.Unlock()
			}
			if c.viaSet {
				for _, q := range []string{
					fmt.Sprintf("SET application_name = 'c%d'", c.k),
					fmt.Sprintf("SET statement_timeout = '%dms'", c.k*1001),
					fmt.Sprintf("SET search_path = s%d, public", c.k),
				} {
					if _, err := c.conn.Exec(ctx, q); err != nil {
						fail(fmt.Errorf("%s: %w", q, err))
						return
					}
				}
			}
			for i := range txPerClient {
				got, err := run(c, i)
				if err != nil {
					fail(fmt.Errorf("transaction %d: %w", i, err))
					return
				}
				if got != c.want {
					mismatch("client c%d (set via %s), transaction %d (shape %d): got %q, want %q",
						c.k, map[bool]string{true: "SET", false: "startup"}[c.viaSet], i, i%3, got, c.want)
				}
			}
			if ps := c.conn.PgConn().ParameterStatus("application_name"); ps != c.want[0] {
				mismatch("client c%d: ParameterStatus application_name = %q, want %q", c.k, ps, c.want[0])
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	for _, err := range failures {
		t.Error(err)
	}
	maxConns, samples := stopSampling()
	t.Logf("%d transactions from %d clients in %s; %d samples, at most %d server connections",
		clients*txPerClient, clients, elapsed.Round(time.Millisecond), samples, maxConns)
	if mismatches > 0 {
		t.Errorf("%d mismatches, the first:\n%s", mismatches, strings.Join(firstFew, "\n"))
	}
	if maxConns > poolSize || maxConns <= 0 {
		t.Errorf("server connections peaked at %d, want 1..%d", maxConns, poolSize)
	}
	if n := p.logCount("session pinned"); n != 0 {
		t.Errorf("%d \"session pinned\" lines, want none: %v", n, p.logs.FilterMessage("session pinned").All())
	}
}

// semNames are the settings TestSessionSettingsFollowTransactionSemantics
// compares, in the order of settingsOf.
var semNames = [5]string{"application_name", "statement_timeout", "lock_timeout", "search_path", "work_mem"}

func settingsOf(ctx context.Context, q rowQuerier) ([5]string, error) {
	var got [5]string
	err := q.QueryRow(ctx, `SELECT current_setting('application_name'), current_setting('statement_timeout'),
		current_setting('lock_timeout'), current_setting('search_path'), current_setting('work_mem')`).
		Scan(&got[0], &got[1], &got[2], &got[3], &got[4])
	return got, err
}

// serverLog reads what PostgreSQL logged for one database from some
// point on; with log_statement = all, that is every statement pgpoolx
// sent there.
type serverLog struct {
	path string
	db   string
	off  int64
}

func (p *pooler) serverLogFromNow(t *testing.T) *serverLog {
	t.Helper()
	l := &serverLog{path: p.cluster.LogPath(), db: p.db}
	l.skip(t)
	return l
}

// skip moves past everything logged so far.
func (l *serverLog) skip(t *testing.T) {
	t.Helper()
	fi, err := os.Stat(l.path)
	if err != nil {
		t.Fatal(err)
	}
	l.off = fi.Size()
}

// statements returns the statements logged for the database since the
// last call (or skip), first lines only, and moves past them.
func (l *serverLog) statements(t *testing.T) []string {
	t.Helper()
	f, err := os.Open(l.path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(l.off, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	// Only whole lines: a line being written is read next time.
	end := strings.LastIndexByte(string(b), '\n') + 1
	l.off += int64(end)
	var out []string
	for _, line := range strings.Split(string(b[:end]), "\n") {
		_, msg, ok := strings.Cut(line, "@"+l.db+" LOG:  ")
		switch {
		case !ok:
		case strings.HasPrefix(msg, "statement: "):
			out = append(out, strings.TrimPrefix(msg, "statement: "))
		case strings.HasPrefix(msg, "execute "):
			// Extended protocol: "execute <name>: <first line of the SQL>".
			if _, stmt, ok := strings.Cut(msg, ": "); ok {
				out = append(out, stmt)
			}
		}
	}
	return out
}

// TestSessionSettingsFollowTransactionSemantics checks that a client's
// settings after each step are what PostgreSQL itself would leave, with a
// second client on the only server connection between every step: any
// leak shows in its settings, and its own must hold.
func TestSessionSettingsFollowTransactionSemantics(t *testing.T) {
	p := startPooler(t, "", "pool_size: 1\ninit_query: \"SET lock_timeout TO 2222\"")
	ctx := t.Context()
	// Every statement pgpoolx sends in this database is logged, to tell
	// what a step cost on the server.
	if _, err := p.direct(t).Exec(ctx, "ALTER DATABASE "+pgx.Identifier{p.db}.Sanitize()+" SET log_statement = 'all'"); err != nil {
		t.Fatal(err)
	}
	const defaultPath = `"$user", public`
	// No statement cache for A: after its DISCARD ALL, pgx's cached
	// statements would be gone, as on PostgreSQL itself.
	a := p.connect(t, "statement_timeout=4321&default_query_exec_mode=exec")
	aStart := [5]string{"", "4321ms", "2222ms", defaultPath, "4MB"}
	aWant := aStart
	b := p.connect(t, "application_name=bee&work_mem=7MB&search_path=pg_catalog")
	bWant := [5]string{"bee", "0", "2222ms", "pg_catalog", "7MB"}

	exec := func(t *testing.T, conn *pgx.Conn, sqls ...string) {
		t.Helper()
		for _, sql := range sqls {
			if _, err := conn.Exec(ctx, sql); err != nil {
				t.Fatalf("%s: %v", sql, err)
			}
		}
	}
	expect := func(t *testing.T, who string, conn *pgx.Conn, want [5]string) {
		t.Helper()
		got, err := settingsOf(ctx, conn)
		if err != nil {
			t.Fatalf("client %s: %v", who, err)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("client %s: %s = %q, want %q", who, semNames[i], got[i], want[i])
			}
		}
	}
	// Each step runs on client A, then B and A show their settings, twice
	// over, so that each runs once right after the other.
	step := func(name string, run func(t *testing.T), changes func(w *[5]string)) {
		t.Run(name, func(t *testing.T) {
			run(t)
			if changes != nil {
				changes(&aWant)
			}
			for range 2 {
				expect(t, "B", b, bWant)
				expect(t, "A", a, aWant)
			}
		})
	}
	expect(t, "A", a, aWant)
	expect(t, "B", b, bWant)

	step("SET in a rolled back transaction does not stick", func(t *testing.T) {
		exec(t, a, "BEGIN", "SET application_name = 'rolled back'")
		inside := aWant
		inside[0] = "rolled back"
		expect(t, "A in its transaction", a, inside)
		exec(t, a, "ROLLBACK")
	}, nil)

	step("SET in a rolled back savepoint does not stick, one before it does", func(t *testing.T) {
		exec(t, a, "BEGIN", "SET work_mem = '5MB'", "SAVEPOINT s", "SET application_name = 'in savepoint'",
			"ROLLBACK TO SAVEPOINT s", "COMMIT")
	}, func(w *[5]string) { w[4] = "5MB" })

	step("SET in a released savepoint sticks", func(t *testing.T) {
		exec(t, a, "BEGIN", "SAVEPOINT s", "SET application_name = 'released'", "RELEASE SAVEPOINT s", "COMMIT")
	}, func(w *[5]string) { w[0] = "released" })

	step("SET LOCAL ends with the transaction", func(t *testing.T) {
		exec(t, a, "BEGIN", "SET LOCAL statement_timeout = '9s'")
		inside := aWant
		inside[1] = "9s"
		expect(t, "A in its transaction", a, inside)
		exec(t, a, "COMMIT")
	}, nil)

	step("SET then SET LOCAL in one transaction leaves the SET", func(t *testing.T) {
		exec(t, a, "BEGIN", "SET work_mem = '6MB'", "SET LOCAL work_mem = '8MB'", "COMMIT")
	}, func(w *[5]string) { w[4] = "6MB" })

	step("set_config is_local false sticks, true does not", func(t *testing.T) {
		var v string
		if err := a.QueryRow(ctx, "SELECT set_config('application_name', 'x', false)").Scan(&v); err != nil || v != "x" {
			t.Fatalf("set_config: %q, %v", v, err)
		}
		if err := a.QueryRow(ctx, "SELECT set_config('search_path', 'y', true)").Scan(&v); err != nil || v != "y" {
			t.Fatalf("set_config local: %q, %v", v, err)
		}
		// Names and values pgpoolx cannot read from the text.
		if err := a.QueryRow(ctx, "SELECT set_config($1, $2, false)", "work_mem", "9MB").Scan(&v); err != nil || v != "9MB" {
			t.Fatalf("set_config with parameters: %q, %v", v, err)
		}
	}, func(w *[5]string) { w[0], w[4] = "x", "9MB" })

	step("SET in a multi-statement query that fails later does not stick", func(t *testing.T) {
		_, err := a.PgConn().Exec(ctx, "SET application_name = 'multi'; SELECT 1/0").ReadAll()
		assertCode(t, err, "22012")
	}, nil)

	step("SET statement_timeout and lock_timeout", func(t *testing.T) {
		exec(t, a, "SET statement_timeout = '1s'", "SET lock_timeout = '1s'")
	}, func(w *[5]string) { w[1], w[2] = "1s", "1s" })

	step("RESET name goes back to the startup setting and the init query's", func(t *testing.T) {
		exec(t, a, "RESET statement_timeout", "RESET lock_timeout")
	}, func(w *[5]string) { w[1], w[2] = aStart[1], aStart[2] })

	step("RESET ALL goes back to the startup settings and the init query's", func(t *testing.T) {
		exec(t, a, "SET statement_timeout = '2s'", "SET lock_timeout = '2s'", "SET search_path = pg_catalog")
		expect(t, "A before RESET ALL", a, [5]string{"x", "2s", "2s", "pg_catalog", "9MB"})
		exec(t, a, "RESET ALL")
	}, func(w *[5]string) { *w = aStart })

	step("DISCARD ALL goes back to the startup settings and the init query's", func(t *testing.T) {
		exec(t, a, "SET application_name = 'd'", "SET statement_timeout = '3s'", "SET lock_timeout = '3s'", "SET work_mem = '10MB'")
		expect(t, "A before DISCARD ALL", a, [5]string{"d", "3s", "3s", defaultPath, "10MB"})
		exec(t, a, "DISCARD ALL")
	}, func(w *[5]string) { *w = aStart })

	// What a setting of A costs when B runs next, as statements on the
	// server naming lock_timeout other than A's own and the probe's (which
	// reads pg_settings): a different value costs one, the init query's
	// value nothing.
	log := p.serverLogFromNow(t)
	syncs := func(own string) []string {
		var out []string
		for _, s := range log.statements(t) {
			if strings.Contains(s, "lock_timeout") && s != own && !strings.Contains(s, "pg_settings") {
				out = append(out, s)
			}
		}
		return out
	}
	step("SET to another value than the init query's is applied for each client", func(t *testing.T) {
		log.skip(t)
		exec(t, a, "SET lock_timeout = '3333ms'")
	}, func(w *[5]string) { w[2] = "3333ms" })
	if got := syncs("SET lock_timeout = '3333ms'"); len(got) == 0 {
		t.Errorf("no statement setting lock_timeout between A (3333ms) and B (2222ms) found in the server log; is log_statement in effect?")
	}
	step("SET to the init query's value costs nothing", func(t *testing.T) {
		exec(t, a, "RESET lock_timeout") // back at the init query's value
		log.skip(t)
		exec(t, a, "SET lock_timeout TO 2222")
	}, func(w *[5]string) { w[2] = aStart[2] })
	if got := syncs("SET lock_timeout TO 2222"); len(got) != 0 {
		t.Errorf("A's SET to the init query's value made pgpoolx send %q", got)
	}

	t.Run("identical settings cost nothing", func(t *testing.T) {
		c1 := p.connect(t, "application_name=same")
		c2 := p.connect(t, "application_name=same")
		want := [5]string{"same", "0", "2222ms", defaultPath, "4MB"}
		expect(t, "C1", c1, want) // the server connection takes C1's settings
		log.skip(t)
		for range 3 {
			expect(t, "C2", c2, want)
			expect(t, "C1", c1, want)
		}
		stmts := log.statements(t)
		if len(stmts) < 6 {
			t.Fatalf("the server log shows %d statements for 6 queries: %q", len(stmts), stmts)
		}
		for _, s := range stmts {
			if !strings.Contains(s, "current_setting('application_name')") {
				t.Errorf("pgpoolx sent %q between two clients with the same settings", s)
			}
		}
	})
}

// TestParameterStatusFollowsTheClient checks that the ParameterStatus
// values a client sees are its own, whoever used the server connection in
// between.
func TestParameterStatusFollowsTheClient(t *testing.T) {
	p := startPooler(t, "", "pool_size: 1")
	ctx := t.Context()
	if _, err := p.direct(t).Exec(ctx, `CREATE FUNCTION set_app(v text) RETURNS text LANGUAGE sql
		AS $$ SELECT set_config('application_name', v, false) $$`); err != nil {
		t.Fatal(err)
	}
	a := p.connect(t, "application_name=start")
	b := p.connect(t, "application_name=bee")
	show := func(t *testing.T, who string, conn *pgx.Conn, want string) {
		t.Helper()
		if got := conn.PgConn().ParameterStatus("application_name"); got != want {
			t.Errorf("client %s: ParameterStatus application_name = %q, want %q", who, got, want)
		}
		var got string
		if err := conn.QueryRow(ctx, "SHOW application_name").Scan(&got); err != nil {
			t.Fatalf("client %s: %v", who, err)
		}
		if got != want {
			t.Errorf("client %s: SHOW application_name = %q, want %q", who, got, want)
		}
		// The statements that put the client's settings on the server
		// connection must not have told it anything else.
		if got := conn.PgConn().ParameterStatus("application_name"); got != want {
			t.Errorf("client %s: ParameterStatus application_name after SHOW = %q, want %q", who, got, want)
		}
	}
	show(t, "A", a, "start")
	show(t, "B", b, "bee")

	if _, err := a.Exec(ctx, "SET application_name = 'mine'"); err != nil {
		t.Fatal(err)
	}
	if got := a.PgConn().ParameterStatus("application_name"); got != "mine" {
		t.Errorf("after SET: ParameterStatus application_name = %q, want mine", got)
	}
	for range 2 {
		show(t, "B", b, "bee")
		show(t, "A", a, "mine")
	}

	if _, err := a.Exec(ctx, "RESET application_name"); err != nil {
		t.Fatal(err)
	}
	if got := a.PgConn().ParameterStatus("application_name"); got != "start" {
		t.Errorf("after RESET: ParameterStatus application_name = %q, want start", got)
	}
	for range 2 {
		show(t, "A", a, "start")
		show(t, "B", b, "bee")
	}

	// Changed inside a function, where no SET is to be seen: the server's
	// ParameterStatus tells.
	var v string
	if err := a.QueryRow(ctx, "SELECT set_app('viafunc')").Scan(&v); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		show(t, "B", b, "bee")
		show(t, "A", a, "viafunc")
	}
}

// pinCase is one kind of session state that pins a client.
type pinCase struct {
	name    string
	setup   string   // run on a direct connection first
	noPin   []string // statements that leave no such state: they must not pin
	pin     string
	reason  string
	digest  string
	use     string             // a query on the pinned state, run while pinned
	useWant func(i int) string // its answer in the i-th pinned transaction
	unpin   string
	secret  string // a literal of pin that must not reach the log
}

// TestEachPinReason pins a client for each kind of state that cannot
// move, checks from the log and from the server pid that serves it that
// it stays on its server connection while the state lasts, and that it
// leaves it once the state is gone.
func TestEachPinReason(t *testing.T) {
	cases := []pinCase{
		{
			name: "advisory lock",
			noPin: []string{
				"SELECT pg_advisory_xact_lock(987654)",
				"BEGIN; SELECT pg_advisory_xact_lock(987654); SELECT pg_try_advisory_xact_lock(987655); COMMIT",
				"SELECT pg_advisory_lock(987654), pg_advisory_unlock(987654)",
			},
			pin:     "SELECT pg_advisory_lock(987654)",
			reason:  "session_advisory_lock",
			digest:  "select pg_advisory_lock($1)",
			use:     "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted",
			useWant: func(int) string { return "1" },
			unpin:   "SELECT pg_advisory_unlock(987654)",
			secret:  "987654",
		},
		{
			name:    "listen",
			noPin:   []string{"LISTEN pinchan; UNLISTEN pinchan"},
			pin:     "LISTEN pinchan",
			reason:  "listen",
			digest:  "listen pinchan",
			use:     "SELECT string_agg(c, ',') FROM pg_listening_channels() c",
			useWant: func(int) string { return "pinchan" },
			unpin:   "UNLISTEN pinchan",
		},
		{
			name: "temp table",
			noPin: []string{
				"BEGIN; CREATE TEMP TABLE tt0 (id int DEFAULT 454545) ON COMMIT DROP; INSERT INTO tt0 DEFAULT VALUES; COMMIT",
				"CREATE TEMP TABLE tt1 (id int) ON COMMIT DROP",
				"CREATE TEMP TABLE tt2 (id int); DROP TABLE tt2",
			},
			pin:     "CREATE TEMP TABLE tt (id int DEFAULT 454545)",
			reason:  "temp_table",
			digest:  "create temp table tt (id int default $1)",
			use:     "INSERT INTO tt DEFAULT VALUES; SELECT count(*) FROM tt",
			useWant: func(i int) string { return strconv.Itoa(i + 1) },
			unpin:   "DROP TABLE tt",
			secret:  "454545",
		},
		{
			name:    "hold cursor",
			noPin:   []string{"BEGIN; DECLARE c0 CURSOR FOR SELECT 1; FETCH 1 FROM c0; COMMIT"},
			pin:     "DECLARE c1 CURSOR WITH HOLD FOR SELECT g FROM generate_series(424201, 424299) g",
			reason:  "hold_cursor",
			digest:  "declare c1 cursor with hold for select g from generate_series($1, $2) g",
			use:     "FETCH 1 FROM c1",
			useWant: func(i int) string { return strconv.Itoa(424201 + i) },
			unpin:   "CLOSE c1",
			secret:  "4242",
		},
		{
			name:    "sql prepared statement",
			noPin:   []string{"PREPARE q0 AS SELECT 1; EXECUTE q0; DEALLOCATE q0"},
			pin:     "PREPARE q1 (int) AS SELECT $1 + 434343",
			reason:  "sql_prepared_statement",
			digest:  "prepare q1 (int) as select $1 + $2",
			use:     "EXECUTE q1(1)",
			useWant: func(int) string { return "434344" },
			unpin:   "DEALLOCATE q1",
			secret:  "434343",
		},
		{
			name:    "role",
			setup:   "DROP ROLE IF EXISTS pinrole; CREATE ROLE pinrole; GRANT pinrole TO postgres",
			noPin:   []string{"BEGIN; SET LOCAL ROLE pinrole; SELECT current_user; COMMIT"},
			pin:     "SET ROLE pinrole",
			reason:  "role_change",
			digest:  "set role $1",
			use:     "SELECT current_user",
			useWant: func(int) string { return "pinrole" },
			unpin:   "RESET ROLE",
		},
		// The other ways into and out of the same states.
		{
			name:    "try advisory lock shared, unlock all",
			pin:     "SELECT pg_try_advisory_lock_shared(987654)",
			reason:  "session_advisory_lock",
			digest:  "select pg_try_advisory_lock_shared($1)",
			use:     "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted",
			useWant: func(int) string { return "1" },
			unpin:   "SELECT pg_advisory_unlock_all()",
			secret:  "987654",
		},
		{
			name:    "listen, unlisten all",
			pin:     "LISTEN pinchan",
			reason:  "listen",
			digest:  "listen pinchan",
			use:     "SELECT string_agg(c, ',') FROM pg_listening_channels() c",
			useWant: func(int) string { return "pinchan" },
			unpin:   "UNLISTEN *",
		},
		{
			name:    "temp sequence, discard temp",
			pin:     "CREATE TEMP SEQUENCE ts START 454545",
			reason:  "temp_table",
			digest:  "create temp sequence ts start $1",
			use:     "SELECT nextval('ts')",
			useWant: func(i int) string { return strconv.Itoa(454545 + i) },
			unpin:   "DISCARD TEMP",
			secret:  "454545",
		},
		{
			name:    "temp view, discard all",
			pin:     "CREATE TEMP VIEW tv AS SELECT 454545 AS v",
			reason:  "temp_table",
			digest:  "create temp view tv as select $1 as v",
			use:     "SELECT v FROM tv",
			useWant: func(int) string { return "454545" },
			unpin:   "DISCARD ALL",
			secret:  "454545",
		},
		{
			name:    "hold cursor, close all",
			pin:     "DECLARE c1 CURSOR WITH HOLD FOR SELECT g FROM generate_series(424201, 424299) g",
			reason:  "hold_cursor",
			digest:  "declare c1 cursor with hold for select g from generate_series($1, $2) g",
			use:     "FETCH 1 FROM c1",
			useWant: func(i int) string { return strconv.Itoa(424201 + i) },
			unpin:   "CLOSE ALL",
			secret:  "4242",
		},
		{
			name:    "sql prepared statement, deallocate all",
			pin:     "PREPARE q1 (int) AS SELECT $1 + 434343",
			reason:  "sql_prepared_statement",
			digest:  "prepare q1 (int) as select $1 + $2",
			use:     "EXECUTE q1(1)",
			useWant: func(int) string { return "434344" },
			unpin:   "DEALLOCATE ALL",
			secret:  "434343",
		},
		{
			name:    "session authorization",
			setup:   "DROP ROLE IF EXISTS pinrole; CREATE ROLE pinrole; GRANT pinrole TO postgres",
			pin:     "SET SESSION AUTHORIZATION pinrole",
			reason:  "role_change",
			digest:  "set session authorization $1",
			use:     "SELECT session_user || ' ' || current_user",
			useWant: func(int) string { return "pinrole pinrole" },
			unpin:   "RESET SESSION AUTHORIZATION",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { testPin(t, tc) })
	}
}

func testPin(t *testing.T, tc pinCase) {
	p := startPooler(t, "", "pool_size: 2")
	ctx := t.Context()
	if tc.setup != "" {
		if _, err := p.direct(t).Exec(ctx, tc.setup); err != nil {
			t.Fatal(err)
		}
	}
	// A speaks the simple protocol only: one query, one transaction, for
	// counting them.
	a := p.connect(t, "default_query_exec_mode=simple_protocol")
	b := p.connect(t, "")
	simple := func(conn *pgx.Conn, sql string) string {
		t.Helper()
		results, err := conn.PgConn().Exec(ctx, sql).ReadAll()
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		last := results[len(results)-1]
		if len(last.Rows) == 0 || len(last.Rows[0]) == 0 {
			return ""
		}
		return string(last.Rows[0][0])
	}
	pidOf := func(q rowQuerier) uint32 {
		t.Helper()
		var pid uint32
		if err := q.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
			t.Fatal(err)
		}
		return pid
	}

	for _, sql := range tc.noPin {
		simple(a, sql)
	}
	if n := p.logCount("session pinned"); n != 0 {
		t.Fatalf("statements that leave no state (%q) pinned: %v", tc.noPin, p.logs.FilterMessage("session pinned").All())
	}

	simple(a, tc.pin)
	pinned := p.logs.FilterMessage("session pinned").All()
	if len(pinned) != 1 {
		t.Fatalf("%q logged %d \"session pinned\" lines, want 1: %v", tc.pin, len(pinned), pinned)
	}
	pf := pinned[0].ContextMap()
	pA := pidOf(a)
	if pf["server_pid"] != pA {
		t.Errorf("pinned server_pid = %v, but the client runs on pid %d", pf["server_pid"], pA)
	}
	for _, k := range []string{"reason", "detail", "digest", "hint", "db", "user"} {
		if s, _ := pf[k].(string); s == "" {
			t.Errorf("session pinned: field %s = %#v, want a non-empty string", k, pf[k])
		}
	}
	if pf["reason"] != tc.reason {
		t.Errorf("session pinned: reason = %v, want %s", pf["reason"], tc.reason)
	}
	if pf["digest"] != tc.digest {
		t.Errorf("session pinned: digest = %v, want %q", pf["digest"], tc.digest)
	}
	if pf["db"] != p.db || pf["user"] != "postgres" {
		t.Errorf("session pinned: db = %v, user = %v; want %s, postgres", pf["db"], pf["user"], p.db)
	}
	if pf["query_bytes"] != int64(len(tc.pin)) {
		t.Errorf("session pinned: query_bytes = %#v, want %d", pf["query_bytes"], len(tc.pin))
	}
	clientID, ok := pf["client_id"].(uint64)
	if !ok {
		t.Errorf("session pinned: client_id = %#v, want a number", pf["client_id"])
	}

	// While pinned, A keeps its server connection: B, running its own
	// transactions between A's, never gets it (the pool hands out the
	// connection released last, which would be A's were it not pinned),
	// and B holding the other one does not stop A. A's SETs, probed while
	// it is pinned, change nothing about the pin.
	const pinnedTx = 3
	for i := range pinnedTx {
		if got := pidOf(b); got == pA {
			t.Errorf("client B ran on pinned pid %d", pA)
		}
		tx, err := b.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pB := pidOf(tx)
		if pB == pA {
			t.Errorf("client B's transaction runs on pinned pid %d", pA)
		}
		if got := pidOf(a); got != pA {
			t.Errorf("pinned transaction %d runs on pid %d, want %d", i, got, pA)
		}
		if got, want := simple(a, tc.use), tc.useWant(i); got != want {
			t.Errorf("pinned transaction %d: %s = %q, want %q", i, tc.use, got, want)
		}
		simple(a, fmt.Sprintf("SET application_name = 'pinned%d'", i))
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if tc.reason == "listen" {
		// Notifications reach the pinned client.
		if _, err := b.Exec(ctx, "NOTIFY pinchan, 'hello'"); err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		n, err := a.WaitForNotification(wctx)
		cancel()
		if err != nil {
			t.Fatalf("waiting for a notification: %v", err)
		}
		if n.Channel != "pinchan" || n.Payload != "hello" {
			t.Errorf("notification %+v, want hello on pinchan", n)
		}
	}
	if n := p.logCount("session unpinned"); n != 0 {
		t.Fatalf("unpinned while the state lasts: %v", p.logs.FilterMessage("session unpinned").All())
	}

	simple(a, tc.unpin)
	unpinned := p.logs.FilterMessage("session unpinned").All()
	if len(unpinned) != 1 {
		t.Fatalf("%q logged %d \"session unpinned\" lines, want 1: %v", tc.unpin, len(unpinned), unpinned)
	}
	uf := unpinned[0].ContextMap()
	if uf["reason"] != tc.reason {
		t.Errorf("session unpinned: reason = %v, want %s", uf["reason"], tc.reason)
	}
	if uf["client_id"] != clientID {
		t.Errorf("session unpinned: client_id = %v, want %d as when pinned", uf["client_id"], clientID)
	}
	if d, ok := uf["pinned_for"].(time.Duration); !ok || d <= 0 {
		t.Errorf("session unpinned: pinned_for = %#v, want a positive duration", uf["pinned_for"])
	}
	// A ran 1+3*pinnedTx transactions between the one that pinned it and
	// the one that unpinned it; those two may count as well.
	if n, ok := uf["transactions"].(int64); !ok || n < 1+3*pinnedTx || n > 3+3*pinnedTx {
		t.Errorf("session unpinned: transactions = %#v, want %d to %d", uf["transactions"], 1+3*pinnedTx, 3+3*pinnedTx)
	}

	// Unpinned, A's server connection is back in the pool: two other
	// clients hold both connections at once.
	c := p.connect(t, "")
	bctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	txB, err := b.Begin(bctx)
	if err != nil {
		t.Fatal(err)
	}
	txC, err := c.Begin(bctx)
	if err != nil {
		t.Fatal(err)
	}
	var pB, pC uint32
	if err := txB.QueryRow(bctx, "SELECT pg_backend_pid()").Scan(&pB); err != nil {
		t.Fatal(err)
	}
	if err := txC.QueryRow(bctx, "SELECT pg_backend_pid()").Scan(&pC); err != nil {
		t.Fatalf("a second transaction did not get a server connection after the unpin: %v", err)
	}
	if pB != pA && pC != pA {
		t.Errorf("after the unpin, two transactions run on pids %d and %d, neither A's %d", pB, pC, pA)
	}
	txB.Commit(ctx)
	txC.Commit(ctx)
	// A goes on, wherever it runs, with the setting it made while pinned.
	wantApp := fmt.Sprintf("pinned%d", pinnedTx-1)
	if tc.unpin == "DISCARD ALL" {
		wantApp = ""
	}
	if got := simple(a, "SHOW application_name"); got != wantApp {
		t.Errorf("after the unpin, A's application_name = %q, want %q", got, wantApp)
	}

	if n, m := p.logCount("session pinned"), p.logCount("session unpinned"); n != 1 || m != 1 {
		t.Errorf("%d \"session pinned\" and %d \"session unpinned\" lines in all, want 1 and 1", n, m)
	}
	if tc.secret != "" {
		assertNotLogged(t, p.logs, tc.secret)
	}
}

// TestPinnedClientLeavingLeavesNothing: a client that leaves while
// pinned takes its state with it; the next client on its server
// connection finds none of it.
func TestPinnedClientLeavingLeavesNothing(t *testing.T) {
	p := startPooler(t, "", "pool_size: 1")
	ctx := t.Context()
	direct := p.direct(t)
	if _, err := direct.Exec(ctx, "DROP ROLE IF EXISTS leaverole; CREATE ROLE leaverole; GRANT leaverole TO postgres"); err != nil {
		t.Fatal(err)
	}
	cfg, err := pgx.ParseConfig(p.dsn(""))
	if err != nil {
		t.Fatal(err)
	}
	d, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var pid uint32
	if err := d.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{
		"SELECT pg_advisory_lock(1)", "LISTEN leavechan", "CREATE TEMP TABLE leave (id int)",
		"DECLARE leavecur CURSOR WITH HOLD FOR SELECT 1", "PREPARE leaveq AS SELECT 1",
		"SET application_name = 'leaver'", "SET ROLE leaverole",
	} {
		if _, err := d.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	if n := p.logCount("session pinned"); n != 1 {
		t.Fatalf("%d \"session pinned\" lines, want 1", n)
	}
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// pgpoolx resets the server connection once it has seen the client
	// go; only PostgreSQL can tell when the lock is gone.
	waitFor(t, "the advisory lock to go and the pin to end", 5*time.Second, func() bool {
		var locks int
		err := direct.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'
			AND database = (SELECT oid FROM pg_database WHERE datname = $1)`, p.db).Scan(&locks)
		if err != nil {
			t.Fatal(err)
		}
		return locks == 0 && p.logCount("session unpinned") > 0
	})
	if n := p.logCount("session unpinned"); n != 1 {
		t.Errorf("%d \"session unpinned\" lines, want 1", n)
	}

	e := p.connect(t, "default_query_exec_mode=simple_protocol")
	var (
		epid                                      uint32
		user, app                                 string
		heldLocks, listens, temps, cursors, preps int
	)
	err = e.QueryRow(ctx, `SELECT pg_backend_pid(), current_user, current_setting('application_name'),
		(SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()),
		(SELECT count(*) FROM pg_listening_channels()),
		(SELECT count(*) FROM pg_class WHERE relnamespace = pg_my_temp_schema()),
		(SELECT count(*) FROM pg_cursors),
		(SELECT count(*) FROM pg_prepared_statements WHERE from_sql)`).
		Scan(&epid, &user, &app, &heldLocks, &listens, &temps, &cursors, &preps)
	if err != nil {
		t.Fatal(err)
	}
	if epid != pid {
		t.Errorf("the next client runs on pid %d, not on %d: the reset server connection was not reused", epid, pid)
	}
	if user != "postgres" || app != "" || heldLocks+listens+temps+cursors+preps != 0 {
		t.Errorf("the next client finds user %q, application_name %q, %d advisory locks, %d channels, %d temp objects, %d cursors, %d SQL prepared statements; want postgres, \"\" and none",
			user, app, heldLocks, listens, temps, cursors, preps)
	}
}

// assertNotLogged fails if s appears in any logged message or field.
func assertNotLogged(t *testing.T, logs *observer.ObservedLogs, s string) {
	t.Helper()
	for _, e := range logs.All() {
		if text := fmt.Sprintf("%s %v", e.Message, e.ContextMap()); strings.Contains(text, s) {
			t.Errorf("the literal %q reached the log: %s", s, text)
		}
	}
}

// TestOversizedQueryIsTrackedByProbe runs a query longer than
// pinning.max_query_bytes: pgpoolx streams it without reading it, and
// still learns the setting it made, from the server.
func TestOversizedQueryIsTrackedByProbe(t *testing.T) {
	p := startPooler(t, "pinning:\n  max_query_bytes: 2048", "pool_size: 1")
	ctx := t.Context()
	a := p.connect(t, "")
	b := p.connect(t, "")
	// The second sets a parameter the server does not report, so that no
	// ParameterStatus tells pgpoolx of it.
	for _, tail := range []string{"'; SET application_name = 'big'", "'; SET statement_timeout = '7s'"} {
		payload := strings.Repeat("x", 10<<10-len("SELECT '")-len(tail))
		sql := "SELECT '" + payload + tail
		results, err := a.PgConn().Exec(ctx, sql).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(results) != 2 || len(results[0].Rows) != 1 || string(results[0].Rows[0][0]) != payload {
			t.Fatalf("the %d-byte query did not come back whole: %d results", len(sql), len(results))
		}
	}
	check := func(who string, conn *pgx.Conn, app, timeout string) {
		t.Helper()
		var gotApp, gotTimeout string
		if err := conn.QueryRow(ctx, "SELECT current_setting('application_name'), current_setting('statement_timeout')").Scan(&gotApp, &gotTimeout); err != nil {
			t.Fatal(err)
		}
		if gotApp != app || gotTimeout != timeout {
			t.Errorf("client %s: application_name = %q, statement_timeout = %q; want %q, %q", who, gotApp, gotTimeout, app, timeout)
		}
		if got := conn.PgConn().ParameterStatus("application_name"); got != app {
			t.Errorf("client %s: ParameterStatus application_name = %q, want %q", who, got, app)
		}
	}
	for range 2 {
		check("B", b, "", "0")
		check("A", a, "big", "7s")
	}
	if n := p.logCount("session pinned"); n != 0 {
		t.Errorf("%d \"session pinned\" lines, want none: %v", n, p.logs.FilterMessage("session pinned").All())
	}
	if n := p.logCount("session state probe failed"); n != 0 {
		t.Errorf("the probe failed: %v", p.logs.FilterMessage("session state probe failed").All())
	}
}

// TestRDSProxyReport checks the report of what AWS RDS Proxy would pin
// for: once per digest, while pgpoolx itself pins nothing.
func TestRDSProxyReport(t *testing.T) {
	p := startPooler(t, "pinning:\n  rds_proxy_report: true", "")
	ctx := t.Context()
	if _, err := p.direct(t).Exec(ctx, "CREATE SEQUENCE s"); err != nil {
		t.Fatal(err)
	}
	a := p.connect(t, "")
	b := p.connect(t, "")
	for _, step := range []struct {
		conn *pgx.Conn
		sql  string
	}{
		{a, "SET client_encoding TO 'UTF8'"},
		{a, "SET client_encoding TO 'UTF8'"},
		{a, "SELECT nextval('s')"},
		{b, "SELECT nextval('s')"},
		{b, "SET client_encoding TO 'UTF8'"},
		{a, "SELECT 1"},
	} {
		if _, err := step.conn.Exec(ctx, step.sql); err != nil {
			t.Fatalf("%s: %v", step.sql, err)
		}
	}
	want := map[string]string{
		"set client_encoding to $1": "session_setting",
		"select nextval($1)":        "sequence_function",
	}
	lines := p.logs.FilterMessage("would pin on rds proxy").All()
	seen := map[string]int{}
	for _, e := range lines {
		f := e.ContextMap()
		digest, _ := f["digest"].(string)
		seen[digest]++
		if r, ok := want[digest]; !ok {
			t.Errorf("unexpected report %v", f)
		} else if f["reason"] != r {
			t.Errorf("digest %q: reason %v, want %s", digest, f["reason"], r)
		}
		for _, k := range []string{"detail", "hint"} {
			if s, _ := f[k].(string); s == "" {
				t.Errorf("digest %q: field %s = %#v, want a sentence", digest, k, f[k])
			}
		}
	}
	for digest := range want {
		if seen[digest] != 1 {
			t.Errorf("digest %q reported %d times, want once", digest, seen[digest])
		}
	}
	if n := p.logCount("session pinned"); n != 0 {
		t.Errorf("%d \"session pinned\" lines, want none: %v", n, p.logs.FilterMessage("session pinned").All())
	}
}

// TestDiscardAllDropsOnlyTheClientsStatements: after DISCARD ALL a
// client's protocol-level prepared statements are gone, as on PostgreSQL,
// while another client's on the same server connection still work.
func TestDiscardAllDropsOnlyTheClientsStatements(t *testing.T) {
	p := startPooler(t, "", "pool_size: 1")
	ctx := t.Context()
	a := p.connect(t, "").PgConn()
	b := p.connect(t, "").PgConn()
	prepare := func(conn *pgconn.PgConn, name, sql string) {
		t.Helper()
		if _, err := conn.Prepare(ctx, name, sql, nil); err != nil {
			t.Fatalf("prepare %s: %v", name, err)
		}
	}
	run := func(conn *pgconn.PgConn, name, arg string) (string, error) {
		r := conn.ExecPrepared(ctx, name, [][]byte{[]byte(arg)}, nil, nil).Read()
		if r.Err != nil {
			return "", r.Err
		}
		if len(r.Rows) != 1 || len(r.Rows[0]) != 1 {
			return "", fmt.Errorf("%s: unexpected rows %q", name, r.Rows)
		}
		return string(r.Rows[0][0]), nil
	}
	expect := func(who string, conn *pgconn.PgConn, name, arg, want string) {
		t.Helper()
		got, err := run(conn, name, arg)
		if err != nil || got != want {
			t.Errorf("client %s, statement %s(%s) = %q, %v; want %q", who, name, arg, got, err, want)
		}
	}
	prepare(b, "b1", "SELECT $1::text || '-b1'")
	prepare(b, "s1", "SELECT $1::text || '-b-s1'") // the same name as A's, its own statement
	prepare(a, "s1", "SELECT $1::int + 1")
	expect("A", a, "s1", "41", "42")
	expect("B", b, "b1", "x", "x-b1")
	expect("B", b, "s1", "x", "x-b-s1")
	expect("A", a, "s1", "1", "2")

	if _, err := a.Exec(ctx, "DISCARD ALL").ReadAll(); err != nil {
		t.Fatal(err)
	}
	_, err := run(a, "s1", "41")
	assertCode(t, err, "26000")
	for range 2 {
		expect("B", b, "b1", "y", "y-b1")
		expect("B", b, "s1", "y", "y-b-s1")
	}
	prepare(b, "b2", "SELECT $1::text || '-b2'")
	expect("B", b, "b2", "z", "z-b2")
	// The name is free again for A.
	prepare(a, "s1", "SELECT $1::int * 2")
	expect("A", a, "s1", "21", "42")
	expect("B", b, "s1", "z", "z-b-s1")
	expect("A", a, "s1", "5", "10")
}

// TestStartupSettingsOfAnyCount connects clients with none to four
// startup settings, each applied to the only server connection as it
// connects, and has them take turns on it. The client with two comes
// first, so that its two settings are applied together to the baseline.
func TestStartupSettingsOfAnyCount(t *testing.T) {
	p := startPooler(t, "", "pool_size: 1")
	ctx := t.Context()
	params := []string{"application_name=one", "statement_timeout=2345", "work_mem=5MB", "search_path=pg_catalog"}
	type client struct {
		n    int // startup settings: the first n of params
		conn *pgx.Conn
		want [5]string
	}
	var cs []client
	for _, n := range []int{2, 0, 1, 3, 4} {
		want := [5]string{"", "0", "0", `"$user", public`, "4MB"}
		for i, v := range []string{"one", "2345ms", "5MB", "pg_catalog"}[:n] {
			want[[]int{0, 1, 4, 3}[i]] = v
		}
		cs = append(cs, client{n, p.connect(t, strings.Join(params[:n], "&")), want})
	}
	for round := range 2 {
		for _, c := range cs {
			got, err := settingsOf(ctx, c.conn)
			if err != nil {
				t.Errorf("round %d, client with %d startup settings: %v", round, c.n, err)
				continue
			}
			if got != c.want {
				t.Errorf("round %d, client with %d startup settings sees %q, want %q", round, c.n, got, c.want)
			}
		}
	}
}

// TestParameterStatusWhenThePoolIsBusy connects a client while the only
// server connection is in another client's transaction: pgpoolx answers
// the startup itself, and must report the parameters as PostgreSQL would.
func TestParameterStatusWhenThePoolIsBusy(t *testing.T) {
	p := startPooler(t, "", "pool_size: 1")
	ctx := t.Context()
	const startup = "application_name=busy&DateStyle=iso&client_encoding=utf8"
	// What PostgreSQL itself reports for these startup parameters.
	cfg, err := pgx.ParseConfig(p.cluster.DSN(p.db) + "&" + startup)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close(ctx)

	x := p.connect(t, "")
	tx, err := x.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	y := p.connect(t, startup)
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"application_name", "DateStyle", "client_encoding", "TimeZone", "IntervalStyle"} {
		if got, want := y.PgConn().ParameterStatus(name), ref.PgConn().ParameterStatus(name); got != want {
			t.Errorf("ParameterStatus %s = %q, PostgreSQL reports %q", name, got, want)
		}
	}
	var app, ds string
	if err := y.QueryRow(ctx, "SELECT current_setting('application_name'), current_setting('DateStyle')").Scan(&app, &ds); err != nil {
		t.Fatal(err)
	}
	if app != "busy" || ds != "ISO, MDY" {
		t.Errorf("the client runs with application_name %q, DateStyle %q; want busy, \"ISO, MDY\"", app, ds)
	}
}

// TestCustomSettingsAreTracked: custom settings (a dotted name, as row
// level security policies read a tenant from) are settings like any
// other. An unset one reads as NULL or, once the server connection has
// seen it, as an empty string; both are "unset" here.
func TestCustomSettingsAreTracked(t *testing.T) {
	p := startPooler(t, "", "pool_size: 1")
	ctx := t.Context()
	a := p.connect(t, "")
	b := p.connect(t, "")
	c := p.connect(t, "options=-c%20myapp.tenant%3Dstartup")
	want := map[string]string{"A": "", "B": "", "C": "startup"}
	conns := map[string]*pgx.Conn{"A": a, "B": b, "C": c}
	check := func(when string) {
		t.Helper()
		for range 2 {
			for _, who := range []string{"B", "C", "A"} {
				var got string
				if err := conns[who].QueryRow(ctx, "SELECT coalesce(current_setting('myapp.tenant', true), '')").Scan(&got); err != nil {
					t.Fatalf("%s, client %s: %v", when, who, err)
				}
				if got != want[who] {
					t.Errorf("%s: client %s sees myapp.tenant = %q, want %q", when, who, got, want[who])
				}
			}
		}
	}
	check("at first")
	for _, step := range []struct{ sql, value string }{
		{"SET myapp.tenant = 't1'", "t1"},
		{"SELECT set_config('myapp.tenant', 't2', false)", "t2"},
		{"RESET myapp.tenant", ""},
	} {
		if _, err := a.Exec(ctx, step.sql); err != nil {
			t.Fatalf("%s: %v", step.sql, err)
		}
		want["A"] = step.value
		check("after A's " + step.sql)
	}
}

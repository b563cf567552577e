package integration

import (
	"context"
	"fmt"
	"math/big"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Issue 4: prepared statements in transaction mode with no client changes.

func TestPgbenchPreparedNeedsNoPins(t *testing.T) {
	pgbench := clientBinary(t, "pgbench")
	const poolSize = 5
	p := startPooler(t, "", fmt.Sprintf("pool_size: %d", poolSize))
	run := func(env []string, args ...string) string {
		t.Helper()
		out, err := runWithEnv(t, pgbench, env, args...)
		if err != nil {
			t.Fatalf("pgbench %v: %v\n%s", args, err, tailLines(out, 40))
		}
		return out
	}
	run(libpqEnv(t, net.JoinHostPort(p.cluster.Host(), strconv.Itoa(p.cluster.Port())), p.db), "-i", "-s", "1", "-q")
	through := libpqEnv(t, p.addr, p.db)
	tps := map[string]string{}
	for _, mode := range []string{"prepared", "extended"} {
		out := run(through, "-c", "50", "-j", "2", "-T", "10", "-M", mode)
		failed := pgbenchFailed.FindStringSubmatch(out)
		processed := pgbenchProcessed.FindStringSubmatch(out)
		if failed == nil || processed == nil {
			t.Fatalf("unexpected pgbench output:\n%s", out)
		}
		if failed[1] != "0" {
			t.Errorf("-M %s: %s failed transactions, want 0", mode, failed[1])
		}
		if n, _ := strconv.Atoi(processed[1]); n == 0 {
			t.Errorf("-M %s: no transactions processed", mode)
		}
		tps[mode] = pgbenchTPS.FindString(out)
	}
	t.Logf("-M prepared: %s; -M extended: %s (pool_size %d, 50 clients, under -race)", tps["prepared"], tps["extended"], poolSize)
	if n := p.logCount("session pinned"); n != 0 {
		t.Errorf("%d pins, want 0", n)
	}
	if n := p.serverConns(t, p.direct(t)); n > poolSize {
		t.Errorf("%d server connections, want at most %d", n, poolSize)
	}
}

// runWithEnv runs a command with env and returns its combined output.
func runWithEnv(t *testing.T, bin string, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), bin, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestPgxpoolDefaultStatementCache(t *testing.T) {
	p := startPooler(t, "", "pool_size: 5")
	ctx := t.Context()
	cfg, err := pgxpool.ParseConfig(p.dsn("pool_max_conns=50"))
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()

	type check func(ctx context.Context, q *pgxpool.Pool, i int) error
	eq := func(what string, got, want any) error {
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("%s: got %v, want %v", what, got, want)
		}
		return nil
	}
	ts := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	checks := []check{
		func(ctx context.Context, q *pgxpool.Pool, i int) error {
			var n int64
			err := q.QueryRow(ctx, "SELECT $1::int8 * 2", int64(i)).Scan(&n)
			return errors2(err, eq("int8", n, int64(2*i)))
		},
		func(ctx context.Context, q *pgxpool.Pool, i int) error {
			var s string
			err := q.QueryRow(ctx, "SELECT $1::text || '!'", "v"+strconv.Itoa(i)).Scan(&s)
			return errors2(err, eq("text", s, "v"+strconv.Itoa(i)+"!"))
		},
		func(ctx context.Context, q *pgxpool.Pool, i int) error {
			var f float64
			err := q.QueryRow(ctx, "SELECT $1::float8 / 2", float64(i)).Scan(&f)
			return errors2(err, eq("float8", f, float64(i)/2))
		},
		func(ctx context.Context, q *pgxpool.Pool, i int) error {
			var got time.Time
			err := q.QueryRow(ctx, "SELECT $1::timestamptz + make_interval(secs => $2)", ts, i).Scan(&got)
			return errors2(err, eq("timestamptz", got.UTC(), ts.Add(time.Duration(i)*time.Second)))
		},
		func(ctx context.Context, q *pgxpool.Pool, i int) error {
			var b []byte
			err := q.QueryRow(ctx, "SELECT $1::bytea || '\\x00'::bytea", []byte{byte(i), 1}).Scan(&b)
			return errors2(err, eq("bytea", b, []byte{byte(i), 1, 0}))
		},
		func(ctx context.Context, q *pgxpool.Pool, i int) error {
			var ok bool
			err := q.QueryRow(ctx, "SELECT NOT $1::bool", i%2 == 0).Scan(&ok)
			return errors2(err, eq("bool", ok, i%2 != 0))
		},
		func(ctx context.Context, q *pgxpool.Pool, i int) error {
			var n pgtype.Numeric
			err := q.QueryRow(ctx, "SELECT $1::numeric + 0.5", strconv.Itoa(i)).Scan(&n)
			want := new(big.Int).SetInt64(int64(10*i + 5)) // i + 0.5 = (10i+5) * 10^-1
			return errors2(err, eq("numeric", fmt.Sprint(n.Int, n.Exp), fmt.Sprint(want, -1)))
		},
		func(ctx context.Context, q *pgxpool.Pool, i int) error {
			var a []int32
			err := q.QueryRow(ctx, "SELECT array_append($1::int4[], $2)", []int32{1, 2}, int32(i)).Scan(&a)
			return errors2(err, eq("int4[]", a, []int32{1, 2, int32(i)}))
		},
	}
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for g := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				if err := checks[(g+i)%len(checks)](ctx, pool, g*1000+i); err != nil {
					errs <- fmt.Errorf("goroutine %d query %d: %w", g, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := p.logCount("session pinned"); n != 0 {
		t.Errorf("%d pins, want 0", n)
	}
}

func errors2(err, check error) error {
	if err != nil {
		return err
	}
	return check
}

// A table changed between executions of a prepared statement: PostgreSQL
// refuses the old plan once ("cached plan must not change result type");
// through pgpoolx the next execution prepares the statement afresh and
// returns the new shape instead of failing for ever.
func TestPreparedStatementSurvivesSchemaChange(t *testing.T) {
	p := startPooler(t, "", "pool_size: 1")
	ctx := t.Context()
	direct := p.direct(t)
	if _, err := direct.Exec(ctx, "CREATE TABLE shape (a int); INSERT INTO shape VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	conn := p.connect(t, "").PgConn()
	if _, err := conn.Prepare(ctx, "s", "SELECT * FROM shape", nil); err != nil {
		t.Fatal(err)
	}
	if res := conn.ExecPrepared(ctx, "s", nil, nil, nil).Read(); res.Err != nil || len(res.Rows[0]) != 1 {
		t.Fatalf("before: %v %q", res.Err, res.Rows)
	}
	if _, err := direct.Exec(ctx, "ALTER TABLE shape ADD COLUMN b text DEFAULT 'x'"); err != nil {
		t.Fatal(err)
	}
	res := conn.ExecPrepared(ctx, "s", nil, nil, nil).Read()
	if res.Err != nil {
		assertCode(t, res.Err, "0A000") // as PostgreSQL says it, once
		res = conn.ExecPrepared(ctx, "s", nil, nil, nil).Read()
	}
	if res.Err != nil || len(res.Rows) != 1 || len(res.Rows[0]) != 2 || string(res.Rows[0][1]) != "x" {
		t.Fatalf("after the change: %v %q, want one row (1, x)", res.Err, res.Rows)
	}
}

// One client preparing 10,000 distinct statements keeps its server
// connection's prepared statements within prepared_statements.cache_size.
func TestStatementCacheIsBounded(t *testing.T) {
	const cacheSize = 50
	p := startPooler(t, fmt.Sprintf("prepared_statements: {cache_size: %d}", cacheSize), "pool_size: 1")
	ctx := t.Context()
	conn := p.connect(t, "").PgConn()
	for i := range 10000 {
		name := "q" + strconv.Itoa(i)
		if _, err := conn.Prepare(ctx, name, "SELECT "+strconv.Itoa(i), nil); err != nil {
			t.Fatalf("prepare %d: %v", i, err)
		}
		if i%1000 == 999 {
			// The oldest statements were closed on the server, yet the
			// client can still use them: they are prepared again.
			res := conn.ExecPrepared(ctx, "q0", nil, nil, nil).Read()
			if res.Err != nil || string(res.Rows[0][0]) != "0" {
				t.Fatalf("q0 after %d statements: %v %q", i+1, res.Err, res.Rows)
			}
		}
	}
	res, err := conn.Exec(ctx, "SELECT count(*) FROM pg_prepared_statements").ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(string(res[0].Rows[0][0]))
	if n > cacheSize {
		t.Errorf("%d statements prepared on the server connection, want at most %d", n, cacheSize)
	}
	t.Logf("%d statements prepared on the server connection after 10,000 distinct ones (cache_size %d)", n, cacheSize)
}

// Names are the client's own: two clients may give one name to different
// SQL on one server connection, and a name reused after Close gets the new
// SQL.
func TestStatementNamesArePerClient(t *testing.T) {
	p := startPooler(t, "", "pool_size: 1")
	ctx := t.Context()
	a := p.connect(t, "").PgConn()
	b := p.connect(t, "").PgConn()
	value := func(c *pgconn.PgConn) string {
		t.Helper()
		res := c.ExecPrepared(ctx, "same", nil, nil, nil).Read()
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		return string(res.Rows[0][0])
	}
	if _, err := a.Prepare(ctx, "same", "SELECT 'a'", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Prepare(ctx, "same", "SELECT 'b'", nil); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if got := value(a); got != "a" {
			t.Errorf("client a got %q", got)
		}
		if got := value(b); got != "b" {
			t.Errorf("client b got %q", got)
		}
	}
	if err := a.Deallocate(ctx, "same"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Prepare(ctx, "same", "SELECT 'a2'", nil); err != nil {
		t.Fatal(err)
	}
	if got := value(a); got != "a2" {
		t.Errorf("client a after Close and a new Parse got %q, want a2", got)
	}
	if got := value(b); got != "b" {
		t.Errorf("client b got %q after a closed its own", got)
	}
}

// The statements pgpoolx keeps are visible: the periodic "pool stats" line
// counts them on the server connections and per client.
func TestPoolStatsShowStatementCounts(t *testing.T) {
	p := startPooler(t, "stats_period: 50ms\nprepared_statements: {cache_size: 3}", "pool_size: 1")
	ctx := t.Context()
	conn := p.connect(t, "").PgConn()
	for i := range 5 {
		if _, err := conn.Prepare(ctx, "s"+strconv.Itoa(i), "SELECT "+strconv.Itoa(i), nil); err != nil {
			t.Fatal(err)
		}
	}
	// Wait for a stats line taken after the five Prepares.
	var fields map[string]any
	waitFor(t, "a pool stats line with the statements", 10*time.Second, func() bool {
		entries := p.logs.FilterMessage("pool stats").All()
		if len(entries) == 0 {
			return false
		}
		fields = entries[len(entries)-1].ContextMap()
		return fields["client_prepared_statements"] == int64(5)
	})
	if got := fields["server_prepared_statements"]; got != int64(3) {
		t.Errorf("server_prepared_statements = %v, want 3 (the cache size)", got)
	}
	if fields["clients"] != int64(1) || fields["server_conns"] != int64(1) || fields["db"] != p.db {
		t.Errorf("pool stats fields: %v", fields)
	}
}

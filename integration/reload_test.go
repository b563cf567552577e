package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgpoolx/pgpoolx/config"
)

// dbEntry is one database of a configuration written by writeConfig.
type dbEntry struct {
	name string // the same for clients and on the server
	port int    // 0: the pooler's cluster
	yaml string // extra keys of the entry, one a line
}

// writeConfig replaces the pooler's configuration file with one written
// the way newPooler writes it: the same listen address, topYAML, and each
// database pointing at the pooler's cluster as user postgres. The pooler
// reads it at its next Reload.
func writeConfig(t testing.TB, p *pooler, topYAML string, dbs ...dbEntry) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "listen: 127.0.0.1:0\n%s\ndatabases:\n", topYAML)
	for _, db := range dbs {
		port := db.port
		if port == 0 {
			port = p.cluster.Port()
		}
		fmt.Fprintf(&b, "  %s:\n    host: %s\n    port: %d\n    user: postgres\n", db.name, p.cluster.Host(), port)
		for _, line := range strings.Split(strings.TrimSpace(db.yaml), "\n") {
			if line != "" {
				b.WriteString("    " + line + "\n")
			}
		}
	}
	writeConfigText(t, p, b.String())
}

// writeConfigText replaces the pooler's configuration file with text.
func writeConfigText(t testing.TB, p *pooler, text string) {
	t.Helper()
	if err := os.WriteFile(p.configFile, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// reload has the pooler re-read its configuration file, which must be valid.
func reload(t testing.TB, p *pooler) {
	t.Helper()
	if err := p.srv.Reload(); err != nil {
		t.Fatalf("reload:\n%v", err)
	}
}

// reloadWorkload is clients running short transactions through the pooler
// until stopped. The test moves it through phases; every transaction is
// recorded with the phase it began in and the server pid it ran on.
type reloadWorkload struct {
	phase atomic.Int32
	// reached[i] receives once from each client when it has run
	// perPhase transactions in phase i.
	reached  []chan struct{}
	perPhase int
	stop     chan struct{}
	wg       sync.WaitGroup
	// Each client's records, written by its goroutine alone and read
	// after wg.Wait.
	pids [][]phasePID
	errs [][]error
}

type phasePID struct {
	phase int32
	pid   int32
}

func startReloadWorkload(t *testing.T, p *pooler, clients, phases, perPhase int) *reloadWorkload {
	t.Helper()
	w := &reloadWorkload{perPhase: perPhase, stop: make(chan struct{}),
		pids: make([][]phasePID, clients), errs: make([][]error, clients)}
	for range phases {
		w.reached = append(w.reached, make(chan struct{}, clients))
	}
	conns := make([]*pgx.Conn, clients)
	for k := range conns {
		conns[k] = p.connect(t, "")
	}
	ctx := t.Context()
	for k, conn := range conns {
		w.wg.Go(func() {
			counts := make([]int, phases)
			for {
				select {
				case <-w.stop:
					return
				default:
				}
				// Read before the transaction begins, so a transaction of
				// phase i takes its server connection after phase i began.
				phase := w.phase.Load()
				pid, err := logTransaction(ctx, conn, k)
				if err != nil && len(w.errs[k]) < 5 {
					w.errs[k] = append(w.errs[k], fmt.Errorf("client %d, phase %d: %w", k, phase, err))
				}
				if err == nil {
					w.pids[k] = append(w.pids[k], phasePID{phase, pid})
				}
				// Failed transactions count too, so that the phases move on
				// and the test reports the errors rather than hangs.
				if counts[phase]++; counts[phase] == perPhase {
					w.reached[phase] <- struct{}{}
				}
			}
		})
	}
	t.Cleanup(w.finish)
	return w
}

// txLogSQL creates the table logTransaction writes to.
const txLogSQL = "CREATE TABLE tx_log (client int, pid int)"

// logTransaction runs one transaction of several statements, which logs
// the client and the server pid in table tx_log, and returns the pid.
func logTransaction(ctx context.Context, conn *pgx.Conn, client int) (int32, error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(ctx)
	var pid int32
	if err := tx.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		return 0, err
	}
	if _, err := tx.Exec(ctx, "INSERT INTO tx_log (client, pid) VALUES ($1, $2)", client, pid); err != nil {
		return 0, err
	}
	return pid, tx.Commit(ctx)
}

// nextPhase starts the next phase: transactions begun from now on belong
// to it.
func (w *reloadWorkload) nextPhase() { w.phase.Add(1) }

// waitPhase waits until every client has begun perPhase transactions in
// the current phase.
func (w *reloadWorkload) waitPhase(t *testing.T) {
	t.Helper()
	phase := w.phase.Load()
	timeout := time.After(60 * time.Second)
	for range len(w.pids) {
		select {
		case <-w.reached[phase]:
		case <-timeout:
			t.Fatalf("phase %d: the clients did not run %d transactions each within 60s", phase, w.perPhase)
		}
	}
}

// finish stops the clients and waits for them.
func (w *reloadWorkload) finish() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	w.wg.Wait()
}

// pidsFrom returns the server pids of the transactions begun in phase or
// later. Call after finish.
func (w *reloadWorkload) pidsFrom(phase int32) []int32 {
	var pids []int32
	for _, recs := range w.pids {
		for _, r := range recs {
			if r.phase >= phase && !slices.Contains(pids, r.pid) {
				pids = append(pids, r.pid)
			}
		}
	}
	return pids
}

// TestReloadUnderLoad changes the pool size and the init query of a
// database while 20 clients run transactions through it: none of them
// sees an error, the pool grows, every server connection opened from then
// on runs the new init query and the old ones are retired. Broken files
// are then rejected while the clients carry on under the configuration
// in force.
func TestReloadUnderLoad(t *testing.T) {
	const (
		clients  = 20
		perPhase = 10
	)
	p := startPooler(t, "", "pool_size: 2")
	ctx := t.Context()
	// The pooler's only other connection to the database, so that the
	// catalog's count of backends is the pooler's server connections.
	direct := p.direct(t)
	// reload_init records each server connection that ran the new init
	// query: proof on the server's side, whatever settings clients later
	// apply on top of it.
	if _, err := direct.Exec(ctx, txLogSQL+"; CREATE TABLE reload_init (pid int)"); err != nil {
		t.Fatal(err)
	}

	w := startReloadWorkload(t, p, clients, 3, perPhase)

	// Phase 0: the configuration the pooler started with.
	stopSampling := p.sampleServerConns(t, direct)
	w.waitPhase(t)
	maxConns, samples := stopSampling()
	t.Logf("before the reload: at most %d server connections in %d samples", maxConns, samples)
	if maxConns < 1 || maxConns > 2 {
		t.Errorf("before the reload, server connections peaked at %d, want 1..2", maxConns)
	}

	// Phase 1: a larger pool and an init query.
	const initQuery = `SET statement_timeout = '17s'; INSERT INTO reload_init (pid) VALUES (pg_backend_pid())`
	newDB := dbEntry{name: p.db, yaml: fmt.Sprintf("pool_size: 6\ninit_query: %q", initQuery)}
	writeConfig(t, p, "", newDB)
	reload(t, p)
	w.nextPhase()
	w.waitPhase(t)
	// The pool grows only while clients queue for it, which 20 clients on
	// 6 connections do; once opened the connections stay.
	waitFor(t, "more than 2 server connections in pg_stat_activity", 10*time.Second, func() bool {
		return p.serverConns(t, direct) > 2
	})

	reloaded := p.logs.FilterMessage("configuration reloaded").All()
	if len(reloaded) != 1 {
		t.Fatalf("%d \"configuration reloaded\" log entries, want 1", len(reloaded))
	}
	if got, want := fmt.Sprint(reloaded[0].ContextMap()["databases_changed"]), fmt.Sprint([]any{p.db}); got != want {
		t.Errorf("configuration reloaded: databases_changed = %s, want %s", got, want)
	}

	// A client that connects now starts from the new init query's settings,
	// in each of its transactions, wherever they run.
	assertStatementTimeout := func(when string) {
		t.Helper()
		fresh := p.connect(t, "")
		for i := range 3 {
			if got := queryValue[string](t, fresh, "SHOW statement_timeout"); got != "17s" {
				t.Errorf("%s: a new client's statement_timeout is %q in transaction %d, want 17s", when, got, i+1)
			}
		}
	}
	assertStatementTimeout("after the reload")

	// Phase 2: broken files change nothing.
	retired := p.logs.FilterFieldKey("reason").FilterMessage("server connection closed").Len()
	for _, bad := range []struct {
		name, text, want string
	}{
		{"bad YAML", "listen: 127.0.0.1:0\ndatabases:\n  " + p.db + ": [host: 127.0.0.1\n", ""},
		{"pool_size -1", "", "databases." + p.db + ".pool_size"},
	} {
		if bad.text != "" {
			writeConfigText(t, p, bad.text)
		} else {
			writeConfig(t, p, "", dbEntry{name: p.db, yaml: fmt.Sprintf("pool_size: -1\ninit_query: %q", initQuery)})
		}
		before := p.logs.FilterMessageSnippet("configuration reload rejected").Len()
		err := p.srv.Reload()
		var probs *config.Problems
		if !errors.As(err, &probs) {
			t.Fatalf("%s: Reload returned %v, want a *config.Problems", bad.name, err)
		}
		if !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: Reload error %q does not name %q", bad.name, err, bad.want)
		}
		if n := p.logs.FilterMessageSnippet("configuration reload rejected").Len(); n != before+1 {
			t.Errorf("%s: %d \"configuration reload rejected\" log entries, want %d", bad.name, n, before+1)
		}
	}
	if n := p.logs.FilterMessage("configuration reloaded").Len(); n != 1 {
		t.Errorf("%d \"configuration reloaded\" log entries after the rejected files, want still 1", n)
	}
	for _, d := range p.srv.Databases() {
		if d.Name == p.db && d.PoolSize != 6 {
			t.Errorf("pool_size in force after the rejected files: %d, want still 6", d.PoolSize)
		}
	}
	assertStatementTimeout("after the rejected files")
	w.nextPhase()
	w.waitPhase(t)
	if n := p.logs.FilterFieldKey("reason").FilterMessage("server connection closed").Len(); n != retired {
		t.Errorf("%d server connections closed after the rejected files, want none", n-retired)
	}

	w.finish()
	var errs []error
	for _, e := range w.errs {
		errs = append(errs, e...)
	}
	if len(errs) > 0 {
		t.Errorf("the clients saw errors (at most 5 each shown):\n%v", errors.Join(errs...))
	}

	// Every transaction begun after the reload ran on a server connection
	// that ran the new init query.
	after := w.pidsFrom(1)
	if len(after) == 0 {
		t.Fatal("no transaction begun after the reload was recorded")
	}
	var stray []int32
	if err := direct.QueryRow(ctx, `SELECT coalesce(array_agg(p), '{}') FROM unnest($1::int[]) p
		WHERE p NOT IN (SELECT pid FROM reload_init)`, after).Scan(&stray); err != nil {
		t.Fatal(err)
	}
	if len(stray) > 0 {
		t.Errorf("transactions begun after the reload ran on server pids %v, which did not run the new init query", stray)
	}
	// And the connections from before are gone: once the backends of the
	// closed ones have exited, every server connection left is a new one.
	waitFor(t, "only server connections that ran the new init query", 10*time.Second, func() bool {
		var old int
		if err := direct.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = $1 AND backend_type = 'client backend' AND pid <> pg_backend_pid()
				AND pid NOT IN (SELECT pid FROM reload_init)`, p.db).Scan(&old); err != nil {
			t.Fatal(err)
		}
		return old == 0
	})
	if n := p.serverConns(t, direct); n < 3 || n > 6 {
		t.Errorf("%d server connections after the workload, want 3..6", n)
	}
	t.Logf("%d transactions on %d server connections, %d of them used after the reload; %d ran the new init query",
		queryValue[int](t, direct, "SELECT count(*) FROM tx_log"), len(w.pidsFrom(0)), len(after),
		queryValue[int](t, direct, "SELECT count(*) FROM reload_init"))
}

// TestReloadRemovesDatabase removes one of two databases from the
// configuration: its idle clients are disconnected with 3D000 at once, a
// client inside a transaction when it finishes, newcomers are refused
// with 3D000, and the other database's clients do not notice.
func TestReloadRemovesDatabase(t *testing.T) {
	c := pg.Get(t)
	kept, removed := c.NewDatabase(t), c.NewDatabase(t)
	p := startPoolerFor(t, c, kept, "", "pool_size: 2")
	ctx := t.Context()
	writeConfig(t, p, "", dbEntry{name: kept, yaml: "pool_size: 2"}, dbEntry{name: removed, yaml: "pool_size: 2"})
	reload(t, p)

	dsn := func(db string) string { return fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable", p.addr, db) }
	connectTo := func(db string) *pgx.Conn {
		t.Helper()
		conn, err := pgx.Connect(ctx, dsn(db))
		if err != nil {
			t.Fatalf("connect to %s: %v", db, err)
		}
		t.Cleanup(func() { conn.Close(context.WithoutCancel(ctx)) })
		return conn
	}
	begin := func(conn *pgx.Conn) pgx.Tx {
		t.Helper()
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "SELECT 1"); err != nil {
			t.Fatal(err)
		}
		return tx
	}
	goneIdle, goneInTx := connectTo(removed), connectTo(removed)
	keptIdle, keptInTx := connectTo(kept), connectTo(kept)
	for _, conn := range []*pgx.Conn{goneIdle, keptIdle} {
		if _, err := conn.Exec(ctx, "SELECT 1"); err != nil {
			t.Fatal(err)
		}
	}
	goneTx, keptTx := begin(goneInTx), begin(keptInTx)

	writeConfig(t, p, "", dbEntry{name: kept, yaml: "pool_size: 2"})
	reload(t, p)

	// waitFatal reads what the pooler sent a client that sent nothing: a
	// FATAL error ends WaitForNotification with it.
	waitFatal := func(who string, conn *pgx.Conn) {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		err := conn.PgConn().WaitForNotification(wctx)
		t.Logf("%s: %v", who, err)
		assertCode(t, err, "3D000")
	}
	waitFatal("idle client of the removed database", goneIdle)

	// The transaction under way finishes, then the client is let go.
	if _, err := goneTx.Exec(ctx, "SELECT 2"); err != nil {
		t.Fatalf("statement in a transaction of the removed database: %v", err)
	}
	if err := goneTx.Commit(ctx); err != nil {
		t.Fatalf("commit in the removed database: %v", err)
	}
	waitFatal("client of the removed database after its transaction", goneInTx)

	_, err := pgx.Connect(ctx, dsn(removed))
	assertCode(t, err, "3D000")

	// The other database carries on: the transaction under way, the idle
	// client and a newcomer.
	if _, err := keptTx.Exec(ctx, "SELECT 2"); err != nil {
		t.Fatalf("statement in a transaction of the kept database: %v", err)
	}
	if err := keptTx.Commit(ctx); err != nil {
		t.Fatalf("commit in the kept database: %v", err)
	}
	for _, conn := range []*pgx.Conn{keptIdle, keptInTx, p.connect(t, "")} {
		if got := queryValue[string](t, conn, "SELECT current_database()"); got != kept {
			t.Errorf("client of the kept database is in %q", got)
		}
	}

	for _, ps := range p.srv.Pools() {
		if ps.Database == removed {
			t.Errorf("a pool of the removed database is still there: %+v", ps)
		}
	}
	direct := p.direct(t)
	waitFor(t, "no server connections to the removed database", 10*time.Second, func() bool {
		var n int
		if err := direct.QueryRow(ctx, serverConnsSQL, removed).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 0
	})
}

// Package integration holds black-box tests of pgpoolx against a real
// PostgreSQL with real clients (pgx, psql, pgbench).
package integration

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/pgpoolx/pgpoolx/config"
	"github.com/pgpoolx/pgpoolx/internal/pgcluster"
	"github.com/pgpoolx/pgpoolx/proxy"
)

var pg pgcluster.Shared

func TestMain(m *testing.M) { os.Exit(pg.Run(m)) }

// pooler is a pgpoolx server running in-process in front of a fresh
// database of the shared cluster.
type pooler struct {
	cluster *pgcluster.Cluster
	db      string // the database name, the same for clients and server
	addr    string
	logs    *observer.ObservedLogs
	srv     *proxy.Server
	// configFile holds the configuration, which srv.Reload re-reads.
	configFile string
}

// startPooler starts pgpoolx for a fresh database. dbYAML adds keys to the
// database's entry (indented under it), topYAML adds top-level keys.
func startPooler(t *testing.T, topYAML, dbYAML string) *pooler {
	t.Helper()
	c := pg.Get(t)
	db := c.NewDatabase(t)
	return startPoolerFor(t, c, db, topYAML, dbYAML)
}

func startPoolerFor(t *testing.T, c *pgcluster.Cluster, db, topYAML, dbYAML string) *pooler {
	t.Helper()
	return serveInTest(t, newPooler, c, db, topYAML, dbYAML)
}

// startPoolerYAML is startPoolerFor without the default server user.
func startPoolerYAML(t *testing.T, c *pgcluster.Cluster, db, topYAML, dbYAML string) *pooler {
	t.Helper()
	return serveInTest(t, newPoolerYAML, c, db, topYAML, dbYAML)
}

// ownCluster starts a cluster for one test (one it restarts, or one with
// its own settings), stopped when the test ends.
func ownCluster(t *testing.T, opts pgcluster.Options) *pgcluster.Cluster {
	t.Helper()
	c, err := pgcluster.Start(t.Context(), opts)
	if err != nil {
		pgcluster.SkipOrFail(t, err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("stop the test's cluster: %v", err)
		}
	})
	c.LogOnFailure(t)
	return c
}

func serveInTest(t *testing.T, build func(testing.TB, *pgcluster.Cluster, string, string, string) (*pooler, func(context.Context) error),
	c *pgcluster.Cluster, db, topYAML, dbYAML string) *pooler {
	t.Helper()
	p, serve := build(t, c, db, topYAML, dbYAML)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return p
}

// newPooler builds pgpoolx for database db of cluster c (see startPooler
// for topYAML and dbYAML) with its logs observed, and listens on a free
// port. It returns the pooler and the server's Serve on that listener,
// which the caller runs and stops.
func newPooler(t testing.TB, c *pgcluster.Cluster, db, topYAML, dbYAML string) (*pooler, func(context.Context) error) {
	t.Helper()
	if !strings.Contains(dbYAML, "user:") {
		dbYAML = "user: postgres\n" + dbYAML
	}
	return newPoolerYAML(t, c, db, topYAML, dbYAML)
}

// newPoolerYAML is newPooler without the default server user postgres.
func newPoolerYAML(t testing.TB, c *pgcluster.Cluster, db, topYAML, dbYAML string) (*pooler, func(context.Context) error) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "listen: 127.0.0.1:0\n%s\ndatabases:\n  %s:\n    port: %d\n", topYAML, db, c.Port())
	if !strings.Contains(dbYAML, "host:") {
		fmt.Fprintf(&b, "    host: %s\n", c.Host())
	}
	for _, line := range strings.Split(strings.TrimSpace(dbYAML), "\n") {
		if line != "" {
			b.WriteString("    " + line + "\n")
		}
	}
	configFile := filepath.Join(t.TempDir(), "pgpoolx.yaml")
	if err := os.WriteFile(configFile, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte(b.String()), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config:\n%s\n%v", b.String(), err)
	}
	core, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(zapcore.NewTee(core, zaptest.NewLogger(t, zaptest.Level(zapcore.InfoLevel)).Core()))

	srv, err := proxy.NewServer(cfg, log, proxy.Options{ConfigFile: configFile, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &pooler{cluster: c, db: db, addr: ln.Addr().String(), logs: logs, srv: srv, configFile: configFile}
	return p, func(ctx context.Context) error { return srv.Serve(ctx, ln) }
}

// dsn is a URL for clients of the pooler; extra is appended to the query.
func (p *pooler) dsn(extra string) string {
	u := fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable", p.addr, p.db)
	if extra != "" {
		u += "&" + extra
	}
	return u
}

// connect opens a pgx connection through the pooler.
func (p *pooler) connect(t testing.TB, extra string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.dsn(extra))
	if err != nil {
		t.Fatalf("connect through pgpoolx: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.WithoutCancel(t.Context())) })
	return conn
}

// direct opens a pgx connection straight to PostgreSQL, bypassing pgpoolx.
func (p *pooler) direct(t testing.TB) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), p.cluster.DSN(p.db))
	if err != nil {
		t.Fatalf("connect to PostgreSQL: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.WithoutCancel(t.Context())) })
	return conn
}

// serverConnsSQL counts the client backends of database $1 other than the
// asking one: the pooler's server connections when only the asking
// connection bypasses it.
const serverConnsSQL = `SELECT count(*) FROM pg_stat_activity
	WHERE datname = $1 AND backend_type = 'client backend' AND pid <> pg_backend_pid()`

// serverConns counts the pooler's server connections to its database as
// PostgreSQL sees them (excluding the asking connection itself).
func (p *pooler) serverConns(t testing.TB, direct *pgx.Conn) int {
	t.Helper()
	var n int
	if err := direct.QueryRow(t.Context(), serverConnsSQL, p.db).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// sampleServerConns counts the pooler's server connections through direct
// (see serverConns) every 10ms, in a goroutine, until stop is called. stop
// returns the largest count and how many samples were taken, and fails the
// test if a sample's query failed. direct is the sampler's alone until
// then. If the test ends without calling stop, its cleanup stops the
// sampler before direct's cleanup closes the connection.
func (p *pooler) sampleServerConns(t testing.TB, direct *pgx.Conn) (stop func() (max, samples int)) {
	t.Helper()
	type result struct {
		max, samples int
		err          error
	}
	ctx := t.Context()
	done := make(chan struct{})
	sampled := make(chan result, 1)
	go func() {
		var r result
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			var n int
			if err := direct.QueryRow(ctx, serverConnsSQL, p.db).Scan(&n); err != nil {
				r.err = err
				sampled <- r
				return
			}
			r.samples++
			r.max = max(r.max, n)
			select {
			case <-done:
				sampled <- r
				return
			case <-tick.C:
			}
		}
	}()
	finish := sync.OnceValue(func() result { close(done); return <-sampled })
	// Registered after direct's, so it runs before direct is closed; by
	// then the test is over and t.Context is cancelled, so a query error
	// here says nothing.
	t.Cleanup(func() { finish() })
	return func() (int, int) {
		t.Helper()
		r := finish()
		if r.err != nil {
			t.Fatalf("sampler: %v", r.err)
		}
		return r.max, r.samples
	}
}

// waitFor polls cond until it holds or the deadline passes. For conditions
// only PostgreSQL can tell (a lock released, a backend gone), polling the
// catalog is the signal there is.
func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// logCount counts observed log entries with the given message.
func (p *pooler) logCount(msg string) int {
	return p.logs.FilterMessage(msg).Len()
}

package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/pgpoolx/pgpoolx/internal/pgcluster"
)

// railsPoolSize is the pool_size of the Rails tests: far fewer server
// connections than the app's 20 threads.
const railsPoolSize = 5

// startRailsPooler starts pgpoolx in transaction mode the way the users in
// CONTEXT.md run it in front of Rails.
func startRailsPooler(t *testing.T) *pooler {
	t.Helper()
	return startPooler(t, "", fmt.Sprintf(`pool_mode: transaction
pool_size: %d
init_query: "SET statement_timeout TO 300000"`, railsPoolSize))
}

// TestRailsActiveRecord points a Rails-configured ActiveRecord at pgpoolx
// with nothing changed in the app: 20 threads on 20 client connections
// share 5 server connections, each keeps the settings its adapter set at
// connect time, nothing pins, and none of those settings reach a client
// that did not ask for them.
func TestRailsActiveRecord(t *testing.T) {
	ruby := rubyWithRails(t)
	p := startRailsPooler(t)
	ctx := t.Context()
	direct := p.direct(t)

	stopSampling := p.sampleServerConns(t, direct)

	start := time.Now()
	out := runRuby(t, ruby, "workload.rb", 3*time.Minute, []string{"DATABASE_URL=" + p.dsn("")}, nil)
	elapsed := time.Since(start)
	maxConns, samples := stopSampling()

	var res struct {
		Threads            int      `json:"threads"`
		Ops                int      `json:"ops"`
		OK                 int      `json:"ok"`
		Inserts            int      `json:"inserts"`
		Shows              int      `json:"shows"`
		ShowsOK            int      `json:"shows_ok"`
		Connections        int      `json:"connections"`
		PreparedStatements bool     `json:"prepared_statements"`
		PreparedExecutions int      `json:"prepared_executions"`
		ErrorCount         int      `json:"error_count"`
		Errors             []string `json:"errors"`
	}
	out.decode(t, &res)
	t.Logf("%d operations from %d threads in %s; %d setting checks; %d prepared executions; %d samples, at most %d server connections",
		res.Ops, res.Threads, elapsed.Round(time.Millisecond), res.Shows, res.PreparedExecutions, samples, maxConns)

	for _, e := range res.Errors {
		t.Errorf("ruby: %s", e)
	}
	if res.ErrorCount != 0 {
		t.Errorf("the workload saw %d errors (at most 20 shown)", res.ErrorCount)
	}
	const threads, iterations = 20, 50
	if res.Threads != threads || res.Ops != threads*iterations || res.OK != res.Ops {
		t.Errorf("%d threads ran %d operations, %d correct; want %d threads, %d operations, all correct",
			res.Threads, res.Ops, res.OK, threads, threads*iterations)
	}
	if res.Connections != threads {
		t.Errorf("the threads used %d distinct connections, want %d", res.Connections, threads)
	}
	// Every 5th of 50 iterations, 6 settings per check.
	if want := threads * (iterations / 5) * 6; res.Shows != want || res.ShowsOK != res.Shows {
		t.Errorf("%d of %d SHOW checks correct, want %d of %d", res.ShowsOK, res.Shows, want, want)
	}
	if !res.PreparedStatements || res.PreparedExecutions == 0 {
		t.Errorf("prepared_statements %v with %d prepared executions: the workload did not use prepared statements as Rails does by default",
			res.PreparedStatements, res.PreparedExecutions)
	}
	if maxConns > railsPoolSize || maxConns <= 0 {
		t.Errorf("server connections peaked at %d, want 1..%d", maxConns, railsPoolSize)
	}

	var rows, inserted, distinct int
	err := direct.QueryRow(ctx, `SELECT count(*), count(worker), count(DISTINCT (worker, n)) FILTER (WHERE worker IS NOT NULL) FROM widgets`).
		Scan(&rows, &inserted, &distinct)
	if err != nil {
		t.Fatal(err)
	}
	if inserted != res.Inserts || distinct != res.Inserts || rows != 100+res.Inserts {
		t.Errorf("widgets holds %d rows, %d inserted by threads (%d distinct); the workload reported %d inserts over 100 seed rows",
			rows, inserted, distinct, res.Inserts)
	}

	if n := p.logCount("session pinned"); n != 0 {
		t.Errorf("%d session pinned lines, want none:\n%s", n, entriesString(p.logs.FilterMessage("session pinned").All()))
	}
	if warns := p.logs.Filter(func(e observer.LoggedEntry) bool { return e.Level >= zapcore.WarnLevel }); warns.Len() != 0 {
		t.Errorf("pgpoolx logged %d warnings or errors:\n%s", warns.Len(), entriesString(warns.All()))
	}

	// What the pg gem and the adapter SET at connect time stays with their
	// clients: a pgx client on every server connection sees the server's
	// defaults and the init query, all at once so no two share one.
	var serverTZ string
	if err := direct.QueryRow(ctx, "SHOW TimeZone").Scan(&serverTZ); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"client_min_messages": "notice",
		"IntervalStyle":       "postgres",
		"TimeZone":            serverTZ,
		"statement_timeout":   "5min", // the init query's
	}
	pids := map[uint32]bool{}
	for k := range railsPoolSize {
		conn := p.connect(t, "")
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatalf("client %d: begin: %v", k, err)
		}
		defer tx.Rollback(context.WithoutCancel(ctx))
		var pid uint32
		if err := tx.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
			t.Fatalf("client %d: %v", k, err)
		}
		pids[pid] = true
		for _, name := range slices.Sorted(maps.Keys(want)) {
			var got string
			if err := tx.QueryRow(ctx, "SHOW "+name).Scan(&got); err != nil {
				t.Fatalf("client %d: SHOW %s: %v", k, name, err)
			}
			if got != want[name] {
				t.Errorf("a pgx client after Rails (server pid %d) sees %s = %q, want %q", pid, name, got, want[name])
			}
		}
	}
	if len(pids) != railsPoolSize {
		t.Errorf("%d concurrent transactions ran on %d server connections", railsPoolSize, len(pids))
	}
}

// TestRailsMigrationPinsAndUnpins runs a migration as `rails db:migrate`
// does. ActiveRecord holds a session-level advisory lock on a connection of
// its own for the whole run: pgpoolx pins that client while it holds the
// lock and unpins it as soon as it unlocks, logging each once.
func TestRailsMigrationPinsAndUnpins(t *testing.T) {
	ruby := rubyWithRails(t)
	p := startRailsPooler(t)
	ctx := t.Context()
	direct := p.direct(t)

	const version = 20240101000000
	dir := t.TempDir()
	migration := `class CreateGadgets < ActiveRecord::Migration[6.1]
  def change
    create_table :gadgets do |t|
      t.string :name, null: false
      t.timestamps
    end
    add_index :gadgets, :name, unique: true
  end
end
`
	if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%d_create_gadgets.rb", version)), []byte(migration), 0o644); err != nil {
		t.Fatal(err)
	}

	// ActiveRecord's lock id: a salt times the CRC-32 of the database name.
	lockID := int64(2053462845) * int64(crc32.ChecksumIEEE([]byte(p.db)))
	lockLiteral := strconv.FormatInt(lockID, 10)

	// advisoryLocks lists the pids holding advisory locks in the database.
	advisoryLocks := func() map[int64]uint32 {
		rows, err := direct.Query(ctx, `SELECT (classid::bigint << 32) | objid::bigint, pid FROM pg_locks
			WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = $1)`, p.db)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		locks := map[int64]uint32{}
		for rows.Next() {
			var key int64
			var pid uint32
			if err := rows.Scan(&key, &pid); err != nil {
				t.Fatal(err)
			}
			locks[key] = pid
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return locks
	}

	var pinned observer.LoggedEntry
	var seen []string
	onPause := func(line string) {
		point, id, _ := strings.Cut(line, " ")
		seen = append(seen, point)
		if id != lockLiteral {
			t.Errorf("ActiveRecord used lock id %s, want %s", id, lockLiteral)
		}
		pins, unpins := p.logs.FilterMessage("session pinned").All(), p.logs.FilterMessage("session unpinned").All()
		switch point {
		case "locked":
			// The lock is held: the client is pinned to the server
			// connection that holds it.
			if len(pins) != 1 || len(unpins) != 0 {
				t.Fatalf("lock taken: %d session pinned and %d session unpinned lines, want 1 and 0:\n%s",
					len(pins), len(unpins), entriesString(append(pins, unpins...)))
			}
			pinned = pins[0]
			f := pinned.ContextMap()
			t.Logf("lock taken: session pinned %v", f)
			for _, key := range []string{"reason", "detail", "digest", "query_bytes", "client_id", "db", "user", "server_pid", "hint"} {
				if _, ok := f[key]; !ok {
					t.Errorf("session pinned has no %s field: %v", key, f)
				}
			}
			if f["reason"] != "session_advisory_lock" {
				t.Errorf("pinned for reason %v, want session_advisory_lock", f["reason"])
			}
			digest, _ := f["digest"].(string)
			if strings.Contains(digest, lockLiteral) {
				t.Errorf("the pin's digest %q holds the lock id %s; literals must be replaced", digest, lockLiteral)
			}
			if !strings.Contains(strings.ToLower(digest), "pg_try_advisory_lock") {
				t.Errorf("the pin's digest %q is not the statement that took the lock", digest)
			}
			locks := advisoryLocks()
			holder, ok := locks[lockID]
			if !ok || len(locks) != 1 {
				t.Fatalf("advisory locks held (key: pid): %v, want only %d", locks, lockID)
			}
			if fmt.Sprint(f["server_pid"]) != fmt.Sprint(holder) {
				t.Errorf("pinned to server pid %v, but pid %d holds the lock", f["server_pid"], holder)
			}
		case "unlocked":
			// The lock is gone and the lock connection is still open: the
			// client is unpinned now, not when it leaves.
			if locks := advisoryLocks(); len(locks) != 0 {
				t.Errorf("advisory locks still held after pg_advisory_unlock: %v", locks)
			}
			if len(pins) != 1 || len(unpins) != 1 {
				t.Fatalf("lock released: %d session pinned and %d session unpinned lines, want 1 and 1:\n%s",
					len(pins), len(unpins), entriesString(append(pins, unpins...)))
			}
			f := unpins[0].ContextMap()
			t.Logf("lock released: session unpinned %v", f)
			if f["reason"] != "session_advisory_lock" {
				t.Errorf("unpinned with reason %v, want session_advisory_lock", f["reason"])
			}
			if want := pinned.ContextMap()["client_id"]; f["client_id"] != want {
				t.Errorf("unpinned client %v, but pinned client %v", f["client_id"], want)
			}
			for _, key := range []string{"pinned_for", "transactions", "client_id"} {
				if _, ok := f[key]; !ok {
					t.Errorf("session unpinned has no %s field: %v", key, f)
				}
			}
		default:
			t.Fatalf("unknown pause %q", line)
		}
	}

	out := runRuby(t, ruby, "migrate.rb", 2*time.Minute,
		[]string{"DATABASE_URL=" + p.dsn(""), "MIGRATIONS_DIR=" + dir}, onPause)
	var res struct {
		Pending  []int64  `json:"pending"`
		Migrated []int64  `json:"migrated"`
		Pauses   []string `json:"pauses"`
	}
	out.decode(t, &res)
	if !slices.Equal(res.Pending, []int64{version}) || !slices.Equal(res.Migrated, []int64{version}) {
		t.Errorf("pending before %v, migrated after %v; want [%d] both", res.Pending, res.Migrated, version)
	}
	if want := []string{"locked", "unlocked"}; !slices.Equal(seen, want) || !slices.Equal(res.Pauses, want) {
		t.Errorf("paused at %v (ruby says %v), want %v: the migration did not lock and unlock once", seen, res.Pauses, want)
	}

	var table, versions string
	err := direct.QueryRow(ctx, `SELECT coalesce(to_regclass('public.gadgets')::text, ''),
		(SELECT string_agg(version, ',') FROM schema_migrations)`).Scan(&table, &versions)
	if err != nil {
		t.Fatal(err)
	}
	if table != "gadgets" || versions != strconv.Itoa(version) {
		t.Errorf("after the migration: table %q, schema_migrations %q; want gadgets and %d", table, versions, version)
	}
	if locks := advisoryLocks(); len(locks) != 0 {
		t.Errorf("advisory locks held after the migration: %v", locks)
	}
	// The lock connection has left by now: that must not log again.
	if pins, unpins := p.logCount("session pinned"), p.logCount("session unpinned"); pins != 1 || unpins != 1 {
		t.Errorf("%d session pinned and %d session unpinned lines, want 1 and 1:\n%s", pins, unpins,
			entriesString(p.logs.Filter(func(e observer.LoggedEntry) bool {
				return strings.HasPrefix(e.Message, "session ")
			}).All()))
	}
}

// TestRailsStatementCacheDeallocate checks what ActiveRecord's prepared
// statement cache relies on: SQL DEALLOCATE of a statement it prepared with
// the protocol frees it, also inside a transaction, where the cache evicts
// once a connection has run statement_limit (1000) distinct queries.
func TestRailsStatementCacheDeallocate(t *testing.T) {
	ruby := rubyWithRails(t)
	p := startRailsPooler(t)
	out := runRuby(t, ruby, "statement_cache.rb", time.Minute, []string{"DATABASE_URL=" + p.dsn("")}, nil)
	var res struct {
		Checks int      `json:"checks"`
		Errors []string `json:"errors"`
	}
	out.decode(t, &res)
	if res.Checks != 3 {
		t.Errorf("ran %d checks, want 3", res.Checks)
	}
	for _, e := range res.Errors {
		t.Errorf("ruby: %s", e)
	}
	if n := p.logCount("session pinned"); n != 0 {
		t.Errorf("%d session pinned lines, want none:\n%s", n, entriesString(p.logs.FilterMessage("session pinned").All()))
	}
}

// rubyWithRails returns the path of a ruby that can load ActiveRecord and
// the pg gem. Without one the test skips, or fails in CI.
func rubyWithRails(t *testing.T) string {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		if pgcluster.InCI() {
			t.Fatalf("%s (Debian: apt-get install ruby-activerecord ruby-pg)", msg)
		}
		t.Skipf("skipping: %s (set CI=true to make this a failure)", msg)
	}
	ruby, err := exec.LookPath("ruby")
	if err != nil {
		missing("ruby not found on PATH")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, ruby, "-e",
		`require "active_record"; require "pg"; puts "ruby #{RUBY_VERSION}, activerecord #{ActiveRecord.version}, pg #{PG::VERSION}"`).CombinedOutput()
	if err != nil {
		missing("ruby cannot load activerecord and pg: %v\n%s", err, out)
	}
	t.Log(strings.TrimSpace(string(out)))
	return ruby
}

// rubyOutput is what a script under testdata/rails printed.
type rubyOutput struct {
	stdout string
}

// decode parses the script's last line on stdout, its JSON summary.
func (o rubyOutput) decode(t *testing.T, v any) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(o.stdout), "\n")
	last := lines[len(lines)-1]
	if err := json.Unmarshal([]byte(last), v); err != nil {
		t.Fatalf("ruby's last line is not its JSON summary: %v\n%s", err, last)
	}
}

// runRuby runs testdata/rails/script with env added to the test's, and
// fails the test unless it exits 0 within timeout. Each line the script
// prints starting with "PAUSE " stops it until onPause(the rest of the
// line) returns. Its output is logged if the test fails.
func runRuby(t *testing.T, ruby, script string, timeout time.Duration, env []string, onPause func(string)) rubyOutput {
	t.Helper()
	path, err := filepath.Abs(filepath.Join("testdata", "rails", script))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, ruby, path)
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr lockedBuffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := false
	t.Cleanup(func() {
		if !waited { // a t.Fatal in onPause
			cmd.Process.Kill()
			cmd.Wait()
		}
		if t.Failed() {
			t.Logf("%s stdout:\n%s\n%s stderr:\n%s", script, stdout.String(), script, stderr.String())
		}
	})

	r := bufio.NewReader(pipe)
	for {
		line, err := r.ReadString('\n')
		stdout.Write([]byte(line))
		if rest, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), "PAUSE "); ok && err == nil {
			if onPause == nil {
				t.Fatalf("%s paused at %q with nobody to resume it", script, rest)
			}
			onPause(rest)
			if _, err := io.WriteString(stdin, "go\n"); err != nil {
				t.Fatalf("resume %s: %v", script, err)
			}
		}
		if err != nil {
			break
		}
	}
	stdin.Close()
	err = cmd.Wait()
	waited = true
	if ctx.Err() != nil {
		t.Fatalf("%s did not finish within %s: %v", script, timeout, err)
	}
	if err != nil {
		t.Fatalf("%s failed: %v", script, err)
	}
	return rubyOutput{stdout: stdout.String()}
}

// entriesString renders log entries one a line, with their fields.
func entriesString(entries []observer.LoggedEntry) string {
	var b strings.Builder
	for _, e := range entries {
		fmt.Fprintf(&b, "  %s %q %v\n", e.Level, e.Message, e.ContextMap())
	}
	return b.String()
}

package integration

import (
	"context"
	"encoding/csv"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// adminConninfo is a libpq string for the admin console of p as user.
func adminConninfo(p *pooler, user string) string {
	host, port, _ := net.SplitHostPort(p.addr)
	return fmt.Sprintf("host=%s port=%s dbname=pgpoolx user=%s sslmode=disable", host, port, user)
}

// adminRows runs a SHOW command with psql on the admin console and
// returns its rows as maps from column name to value.
func adminRows(t *testing.T, p *pooler, command string) []map[string]string {
	t.Helper()
	out, err := runPsqlCmd(t, adminConninfo(p, "admin"), "--csv", "-c", command)
	if err != nil {
		t.Fatalf("psql %q: %v\n%s", command, err, out)
	}
	records, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(records) == 0 {
		t.Fatalf("psql %q printed no CSV (%v):\n%s", command, err, out)
	}
	var rows []map[string]string
	for _, rec := range records[1:] {
		row := map[string]string{}
		for i, col := range records[0] {
			row[col] = rec[i]
		}
		rows = append(rows, row)
	}
	return rows
}

// adminCommand runs a command that answers with a tag only.
func adminCommand(t *testing.T, p *pooler, command string) {
	t.Helper()
	if out, err := runPsqlCmd(t, adminConninfo(p, "admin"), "-c", command); err != nil {
		t.Fatalf("psql %q: %v\n%s", command, err, out)
	}
}

// rowWhere returns the one row whose column has value, failing otherwise.
func rowWhere(t *testing.T, rows []map[string]string, column, value string) map[string]string {
	t.Helper()
	var found []map[string]string
	for _, r := range rows {
		if r[column] == value {
			found = append(found, r)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d rows with %s = %q, want 1: %v", len(found), column, value, rows)
	}
	return found[0]
}

func wantColumns(t *testing.T, row map[string]string, want map[string]string) {
	t.Helper()
	for col, v := range want {
		if got, ok := row[col]; !ok || got != v {
			t.Errorf("column %s = %q (present %v), want %q; row %v", col, got, ok, v, row)
		}
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("not a number: %q", s)
	}
	return n
}

// TestAdminConsole runs every console command with psql, as an operator
// would, and checks what each shows or does.
func TestAdminConsole(t *testing.T) {
	p := startPooler(t, "admin_users: [admin]\n", "pool_size: 3")
	ctx := t.Context()
	direct := p.direct(t)

	a := p.connect(t, "application_name=app-a")
	for i := range 5 {
		if _, err := a.Exec(ctx, "SELECT $1::int", i); err != nil {
			t.Fatal(err)
		}
	}
	b := p.connect(t, "application_name=app-b")
	if _, err := b.Exec(ctx, "SELECT pg_advisory_lock(7)"); err != nil {
		t.Fatal(err)
	}
	var bServerPID int
	if err := b.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&bServerPID); err != nil {
		t.Fatal(err)
	}
	c := p.connect(t, "application_name=app-c")

	t.Run("SHOW POOLS", func(t *testing.T) {
		row := rowWhere(t, adminRows(t, p, "SHOW POOLS"), "database", p.db)
		wantColumns(t, row, map[string]string{
			"user": "postgres", "cl_active": "3", "cl_waiting": "0", "sv_active": "1",
			"sv_login": "0", "pool_mode": "transaction", "cl_pinned": "1", "paused": "0", "maxwait": "0",
		})
		if n := atoi(t, row["sv_idle"]); n < 0 || n > 2 {
			t.Errorf("sv_idle = %d, want 0 to 2 (pool_size 3, one pinned)", n)
		}
	})
	t.Run("SHOW STATS", func(t *testing.T) {
		row := rowWhere(t, adminRows(t, p, "SHOW STATS"), "database", p.db)
		// a's 5 statements, b's 2: each an implicit transaction.
		if n := atoi(t, row["total_xact_count"]); n < 7 {
			t.Errorf("total_xact_count = %d, want at least 7", n)
		}
		if n := atoi(t, row["total_query_count"]); n < 7 {
			t.Errorf("total_query_count = %d, want at least 7", n)
		}
		for _, col := range []string{"total_received", "total_sent", "total_xact_time", "total_query_time", "avg_xact_count"} {
			if _, err := strconv.Atoi(row[col]); err != nil {
				t.Errorf("%s = %q, not a number", col, row[col])
			}
		}
		if atoi(t, row["total_received"]) == 0 || atoi(t, row["total_sent"]) == 0 {
			t.Errorf("no bytes counted: %v", row)
		}
	})
	t.Run("SHOW CLIENTS", func(t *testing.T) {
		rows := adminRows(t, p, "SHOW CLIENTS")
		if len(rows) != 3 {
			t.Fatalf("%d clients, want 3: %v", len(rows), rows)
		}
		rb := rowWhere(t, rows, "application_name", "app-b")
		wantColumns(t, rb, map[string]string{
			"type": "C", "user": "postgres", "database": p.db, "state": "active",
			"link": strconv.Itoa(bServerPID), "pin_reason": "session_advisory_lock",
			"remote_pid": strconv.Itoa(int(b.PgConn().PID())), "addr": "127.0.0.1",
		})
		wantColumns(t, rowWhere(t, rows, "application_name", "app-a"), map[string]string{
			"state": "idle", "link": "", "pin_reason": "", "remote_pid": strconv.Itoa(int(a.PgConn().PID())),
		})
	})
	t.Run("SHOW SERVERS", func(t *testing.T) {
		rows := adminRows(t, p, "SHOW SERVERS")
		var pids []string
		for _, r := range rows {
			pids = append(pids, r["remote_pid"])
			wantColumns(t, r, map[string]string{"type": "S", "database": p.db, "user": "postgres"})
		}
		wantColumns(t, rowWhere(t, rows, "remote_pid", strconv.Itoa(bServerPID)), map[string]string{
			"state": "active", "link": strconv.Itoa(int(b.PgConn().PID())), "application_name": "app-b",
		})
		// Exactly the pooler's backends as PostgreSQL lists them.
		dbRows, err := direct.Query(ctx, `SELECT pid::text FROM pg_stat_activity
			WHERE datname = $1 AND backend_type = 'client backend' AND pid <> pg_backend_pid()`, p.db)
		if err != nil {
			t.Fatal(err)
		}
		serverPIDs, err := pgx.CollectRows(dbRows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(pids)
		slices.Sort(serverPIDs)
		if !slices.Equal(pids, serverPIDs) {
			t.Errorf("SHOW SERVERS pids %v, PostgreSQL has %v", pids, serverPIDs)
		}
	})
	t.Run("SHOW DATABASES", func(t *testing.T) {
		row := rowWhere(t, adminRows(t, p, "SHOW DATABASES"), "name", p.db)
		wantColumns(t, row, map[string]string{
			"host": p.cluster.Host(), "port": strconv.Itoa(p.cluster.Port()), "database": p.db,
			"force_user": "postgres", "pool_size": "3", "pool_mode": "transaction", "paused": "0",
		})
	})
	t.Run("SHOW CONFIG", func(t *testing.T) {
		rows := adminRows(t, p, "SHOW CONFIG")
		wantColumns(t, rowWhere(t, rows, "key", "admin_users"), map[string]string{"value": "admin", "changeable": "yes"})
		wantColumns(t, rowWhere(t, rows, "key", "listen"), map[string]string{"value": "127.0.0.1:0", "changeable": "no"})
		wantColumns(t, rowWhere(t, rows, "key", "max_client_conn"), map[string]string{"value": "10000", "default": "10000"})
	})
	t.Run("SHOW PINS", func(t *testing.T) {
		rows := adminRows(t, p, "SHOW PINS")
		if len(rows) != 1 {
			t.Fatalf("%d pins, want 1: %v", len(rows), rows)
		}
		wantColumns(t, rows[0], map[string]string{
			"database": p.db, "reason": "session_advisory_lock", "pid": strconv.Itoa(int(b.PgConn().PID())),
			"server_pid": strconv.Itoa(bServerPID), "application_name": "app-b",
		})
		// pgx's QueryRow above made two requests (describe, then execute).
		if n := atoi(t, rows[0]["transactions"]); n < 1 {
			t.Errorf("transactions while pinned = %d, want at least 1", n)
		}
		if !strings.Contains(rows[0]["digest"], "pg_advisory_lock") || strings.Contains(rows[0]["digest"], "7") {
			t.Errorf("digest %q: want the statement with its literal replaced", rows[0]["digest"])
		}
		if _, err := time.Parse("2006-01-02 15:04:05 MST", rows[0]["pinned_since"]); err != nil {
			t.Errorf("pinned_since %q: %v", rows[0]["pinned_since"], err)
		}
	})
	t.Run("SHOW VERSION and HELP", func(t *testing.T) {
		if v := adminRows(t, p, "show version;")[0]["version"]; v != "pgpoolx test" {
			t.Errorf("version %q", v)
		}
		help := adminRows(t, p, "SHOW HELP")
		for _, cmd := range []string{"SHOW POOLS", "PAUSE [db]", "RESUME [db]", "RELOAD", "KILL db", "RECONNECT [db]", "SHUTDOWN"} {
			rowWhere(t, help, "command", cmd)
		}
	})
	t.Run("errors", func(t *testing.T) {
		out, err := runPsqlCmd(t, adminConninfo(p, "admin"), "-c", "SHOW NOPE")
		if err == nil || !strings.Contains(out, "cannot SHOW NOPE") {
			t.Errorf("SHOW NOPE: %v\n%s", err, out)
		}
		out, err = runPsqlCmd(t, adminConninfo(p, "admin"), "-c", "PAUSE nosuchdb")
		if err == nil || !strings.Contains(out, `database "nosuchdb" is not configured`) {
			t.Errorf("PAUSE nosuchdb: %v\n%s", err, out)
		}
		out, err = runPsqlCmd(t, adminConninfo(p, "postgres"), "-c", "SHOW POOLS")
		if err == nil || !strings.Contains(out, `user "postgres" is not allowed to use the admin console`) {
			t.Errorf("non-admin user: %v\n%s", err, out)
		}
		// pgx's default extended protocol is refused with a clear error;
		// its simple protocol works.
		host, port, _ := net.SplitHostPort(p.addr)
		conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://admin@%s:%s/pgpoolx?sslmode=disable", host, port))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var ignored string
		err = conn.QueryRow(ctx, "SHOW VERSION").Scan(&ignored)
		assertCode(t, err, "0A000")
		var version string
		if err := conn.QueryRow(ctx, "SHOW VERSION", pgx.QueryExecModeSimpleProtocol).Scan(&version); err != nil || version != "pgpoolx test" {
			t.Errorf("simple protocol SHOW VERSION = %q, %v", version, err)
		}
	})
	t.Run("PAUSE and RESUME", func(t *testing.T) {
		adminCommand(t, p, "PAUSE "+p.db) // b is pinned but between transactions: no wait
		if row := rowWhere(t, adminRows(t, p, "SHOW DATABASES"), "name", p.db); row["paused"] != "1" {
			t.Errorf("paused = %q after PAUSE", row["paused"])
		}
		done := make(chan error, 1)
		go func() {
			_, err := a.Exec(ctx, "SELECT 2")
			done <- err
		}()
		waitFor(t, "a waiting", 10*time.Second, func() bool {
			return rowWhere(t, adminRows(t, p, "SHOW POOLS"), "database", p.db)["cl_waiting"] == "1"
		})
		select {
		case err := <-done:
			t.Fatalf("a's statement ran while paused: %v", err)
		default:
		}
		adminCommand(t, p, "RESUME "+p.db)
		if err := <-done; err != nil {
			t.Fatalf("a's statement after RESUME: %v", err)
		}
		out, err := runPsqlCmd(t, adminConninfo(p, "admin"), "-c", "RESUME "+p.db)
		if err == nil || !strings.Contains(out, "is not paused") {
			t.Errorf("second RESUME: %v\n%s", err, out)
		}
	})
	t.Run("RECONNECT", func(t *testing.T) {
		var before []string
		for _, r := range adminRows(t, p, "SHOW SERVERS") {
			before = append(before, r["remote_pid"])
		}
		adminCommand(t, p, "RECONNECT")
		// b unpins; its connection is then replaced too.
		if _, err := b.Exec(ctx, "SELECT pg_advisory_unlock(7)"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "old server connections closed", 10*time.Second, func() bool {
			var n int
			if err := direct.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE pid::text = ANY($1)", before).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n == 0
		})
		if _, err := c.Exec(ctx, "SELECT 3"); err != nil {
			t.Fatalf("query after RECONNECT: %v", err)
		}
	})
	t.Run("RELOAD", func(t *testing.T) {
		adminCommand(t, p, "RELOAD")
		if p.logCount("configuration reloaded") != 1 {
			t.Errorf("%d reload log lines, want 1", p.logCount("configuration reloaded"))
		}
	})
	t.Run("KILL", func(t *testing.T) {
		adminCommand(t, p, "KILL "+p.db)
		for name, conn := range map[string]*pgx.Conn{"a": a, "b": b, "c": c} {
			_, err := conn.Exec(ctx, "SELECT 4")
			if err == nil {
				t.Errorf("client %s still works after KILL", name)
			}
		}
		// The database stays paused: a new client waits until RESUME.
		done := make(chan error, 1)
		go func() {
			cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			conn, err := pgx.Connect(cctx, p.dsn(""))
			if err == nil {
				_, err = conn.Exec(cctx, "SELECT 5")
				conn.Close(cctx)
			}
			done <- err
		}()
		waitFor(t, "new client waiting", 10*time.Second, func() bool {
			return rowWhere(t, adminRows(t, p, "SHOW POOLS"), "database", p.db)["cl_waiting"] == "1"
		})
		adminCommand(t, p, "RESUME")
		if err := <-done; err != nil {
			t.Fatalf("client after KILL and RESUME: %v", err)
		}
	})
	t.Run("SHUTDOWN", func(t *testing.T) {
		adminCommand(t, p, "SHUTDOWN")
		waitFor(t, "pgpoolx stopped", 10*time.Second, func() bool {
			nc, err := net.DialTimeout("tcp", p.addr, time.Second)
			if err != nil {
				return true
			}
			nc.Close()
			return false
		})
	})
}

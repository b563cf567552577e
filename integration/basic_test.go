package integration

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// execModes are pgx's query modes as its connection strings spell them.
var execModes = []string{"simple_protocol", "exec", "describe_exec", "cache_describe", "cache_statement"}

func TestQueriesInEveryPgxMode(t *testing.T) {
	p := startPooler(t, "", "pool_size: 2")
	for _, mode := range execModes {
		t.Run(mode, func(t *testing.T) {
			conn := p.connect(t, "default_query_exec_mode="+mode)
			for i := range 20 {
				var n int
				var s string
				err := conn.QueryRow(t.Context(), "SELECT $1::int + 1, $2::text || 'x'", i, "v").Scan(&n, &s)
				if err != nil {
					t.Fatalf("query %d: %v", i, err)
				}
				if n != i+1 || s != "vx" {
					t.Fatalf("query %d: got %d %q", i, n, s)
				}
			}
		})
	}
}

func TestMultiStatementSimpleQuery(t *testing.T) {
	p := startPooler(t, "", "")
	conn := p.connect(t, "")
	results, err := conn.PgConn().Exec(t.Context(), "SELECT 1; SELECT 2, 3; CREATE TEMP TABLE IF NOT EXISTS x(); DROP TABLE x").ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 4 {
		t.Fatalf("got %d results, want 4", len(results))
	}
	if got := string(results[1].Rows[0][1]); got != "3" {
		t.Errorf("second result = %q, want 3", got)
	}
}

func TestInitQueryIsVisible(t *testing.T) {
	p := startPooler(t, "", `init_query: "SET statement_timeout TO 300000; SET timezone TO 'Asia/Tokyo'"`)
	conn := p.connect(t, "")
	var timeout, tz string
	if err := conn.QueryRow(t.Context(), "SELECT current_setting('statement_timeout'), current_setting('TimeZone')").Scan(&timeout, &tz); err != nil {
		t.Fatal(err)
	}
	if timeout != "5min" || tz != "Asia/Tokyo" {
		t.Errorf("statement_timeout = %q, TimeZone = %q; want 5min, Asia/Tokyo", timeout, tz)
	}
	// ParameterStatus at startup already carries the init query's TimeZone.
	if got := conn.PgConn().ParameterStatus("TimeZone"); got != "Asia/Tokyo" {
		t.Errorf("ParameterStatus TimeZone = %q", got)
	}
}

func TestFailingInitQueryIsReported(t *testing.T) {
	p := startPooler(t, "", `init_query: "SET no_such_setting_here TO 1"`)
	_, err := pgx.Connect(t.Context(), p.dsn(""))
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		t.Fatalf("connect error = %v, want a PostgreSQL error", err)
	}
	if pgErr.Code != "42704" || !contains(pgErr.Message, "init query") || !contains(pgErr.Message, "no_such_setting_here") {
		t.Errorf("got %s %q, want 42704 naming the init query and the setting", pgErr.Code, pgErr.Message)
	}
	if p.logCount("init query failed") != 1 {
		t.Errorf("init query failure logged %d times, want 1", p.logCount("init query failed"))
	}
	// A second client within the back-off gets the same error without a
	// new attempt: no retry storm.
	_, err = pgx.Connect(t.Context(), p.dsn(""))
	if !errors.As(err, &pgErr) || pgErr.Code != "42704" {
		t.Errorf("second connect error = %v", err)
	}
	if n := p.logCount("init query failed"); n != 1 {
		t.Errorf("init query failure logged %d times after a second client, want 1", n)
	}
}

func TestErrorsInAndOutOfTransactions(t *testing.T) {
	p := startPooler(t, "", "pool_size: 1")
	conn := p.connect(t, "")
	ctx := t.Context()
	_, err := conn.Exec(ctx, "SELECT 1/0")
	assertCode(t, err, "22012")
	// The session goes on.
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("after error: %v", err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = tx.Exec(ctx, "SELECT no_such_column")
	assertCode(t, err, "42703")
	_, err = tx.Exec(ctx, "SELECT 1")
	assertCode(t, err, "25P02") // in failed transaction
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		t.Fatalf("after rollback: %v", err)
	}
	// Another client shares the only server connection after all that.
	other := p.connect(t, "")
	if err := other.QueryRow(ctx, "SELECT 2").Scan(&one); err != nil || one != 2 {
		t.Fatalf("other client: %v", err)
	}
}

func TestStartupParametersTakeEffectPerClient(t *testing.T) {
	p := startPooler(t, "", "pool_size: 1")
	ctx := t.Context()
	a := p.connect(t, "application_name=rails&search_path=pg_catalog&statement_timeout=1234&client_min_messages=warning&options=-c%20lock_timeout%3D777")
	b := p.connect(t, "")
	show := func(c *pgx.Conn) (out [5]string) {
		err := c.QueryRow(ctx, `SELECT current_setting('application_name'), current_setting('search_path'),
			current_setting('statement_timeout'), current_setting('client_min_messages'), current_setting('lock_timeout')`).
			Scan(&out[0], &out[1], &out[2], &out[3], &out[4])
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	want := [5]string{"rails", "pg_catalog", "1234ms", "warning", "777ms"}
	dflt := [5]string{"", `"$user", public`, "0", "notice", "0"}
	// Alternate on the one server connection: each sees only its own.
	for range 3 {
		if got := show(a); got != want {
			t.Errorf("client a sees %q, want %q", got, want)
		}
		if got := show(b); got != dflt {
			t.Errorf("client b sees %q, want %q", got, dflt)
		}
	}
}

func TestParameterStatusUsesServerSpelling(t *testing.T) {
	p := startPooler(t, "", "")
	conn := p.connect(t, "client_encoding=utf8&DateStyle=iso")
	if got := conn.PgConn().ParameterStatus("client_encoding"); got != "UTF8" {
		t.Errorf("client_encoding = %q, want UTF8", got)
	}
	if got := conn.PgConn().ParameterStatus("DateStyle"); got != "ISO, MDY" {
		t.Errorf("DateStyle = %q, want \"ISO, MDY\"", got)
	}
	if got := conn.PgConn().ParameterStatus("server_version"); got == "" {
		t.Error("no server_version reported")
	}
}

func TestBadStartupSettingIsRejected(t *testing.T) {
	p := startPooler(t, "", "")
	_, err := pgx.Connect(t.Context(), p.dsn("statement_timeout=notanumber"))
	assertCode(t, err, "22023")
}

func TestUnknownDatabase(t *testing.T) {
	p := startPooler(t, "", "")
	cfg, err := pgx.ParseConfig(p.dsn(""))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Database = "nope"
	_, err = pgx.ConnectConfig(t.Context(), cfg)
	assertCode(t, err, "3D000")
}

func assertCode(t testing.TB, err error, code string) {
	t.Helper()
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		t.Fatalf("error = %v, want SQLSTATE %s", err, code)
	}
	if pgErr.Code != code {
		t.Fatalf("SQLSTATE %s (%s), want %s", pgErr.Code, pgErr.Message, code)
	}
}

func contains(s, sub string) bool { return len(sub) == 0 || indexOf(s, sub) >= 0 }

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

var _ = context.Background

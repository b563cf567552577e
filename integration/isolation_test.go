package integration

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestNoCrossClientLeaks: clients sharing server connections never see
// each other's settings, prepared statements, temporary tables, errors,
// notifications or cancels.
func TestNoCrossClientLeaks(t *testing.T) {
	p := startPooler(t, "", "pool_size: 2")
	ctx := t.Context()
	a := p.connect(t, "application_name=a")
	b := p.connect(t, "application_name=b")
	c := p.connect(t, "application_name=c")
	one := func(conn *pgx.Conn, sql string, args ...any) string {
		t.Helper()
		var s string
		if err := conn.QueryRow(ctx, sql, args...).Scan(&s); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return s
	}

	t.Run("settings", func(t *testing.T) {
		if _, err := a.Exec(ctx, "SET search_path = a_schema; SET app.tenant = 'a'; SET statement_timeout = '3s'"); err != nil {
			t.Fatal(err)
		}
		for range 10 { // whatever server connection each lands on
			if got := one(b, "SHOW search_path"); got != `"$user", public` {
				t.Fatalf("b sees search_path %q", got)
			}
			if got := one(b, "SELECT coalesce(current_setting('app.tenant', true), '')"); got != "" {
				t.Fatalf("b sees app.tenant %q", got)
			}
			if got := one(a, "SHOW statement_timeout"); got != "3s" {
				t.Fatalf("a lost its statement_timeout: %q", got)
			}
		}
	})
	t.Run("prepared statements", func(t *testing.T) {
		// The same name, different statements: each client gets its own.
		if _, err := a.Prepare(ctx, "s", "SELECT 'from a'"); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Prepare(ctx, "s", "SELECT 'from b'"); err != nil {
			t.Fatal(err)
		}
		for range 5 {
			if got := one(a, "s"); got != "from a" {
				t.Fatalf("a's statement s answered %q", got)
			}
			if got := one(b, "s"); got != "from b" {
				t.Fatalf("b's statement s answered %q", got)
			}
		}
		// c never prepared s.
		_, err := c.Exec(ctx, "EXECUTE s")
		assertCode(t, err, "26000")
	})
	t.Run("temporary tables", func(t *testing.T) {
		if _, err := a.Exec(ctx, "CREATE TEMP TABLE mine (n int)"); err != nil {
			t.Fatal(err)
		}
		if got := one(b, "SELECT coalesce(to_regclass('pg_temp.mine')::text, 'none')"); got != "none" {
			t.Errorf("b sees a's temporary table: %s", got)
		}
		if _, err := a.Exec(ctx, "DROP TABLE mine"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("errors", func(t *testing.T) {
		tx, err := a.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_, err = tx.Exec(ctx, "SELECT 1/0")
		assertCode(t, err, "22012")
		// a's transaction is aborted; b is not affected.
		if got := one(b, "SELECT 'fine'"); got != "fine" {
			t.Errorf("b after a's error: %q", got)
		}
		tx.Rollback(ctx)
		if got := one(a, "SELECT 'a again'"); got != "a again" {
			t.Errorf("a after rollback: %q", got)
		}
	})
	t.Run("notifications", func(t *testing.T) {
		if _, err := a.Exec(ctx, "LISTEN news"); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Exec(ctx, "NOTIFY news, 'hello'"); err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		n, err := a.WaitForNotification(wctx)
		cancel()
		if err != nil || n.Payload != "hello" {
			t.Fatalf("a's notification: %v, %v", n, err)
		}
		// c runs queries on the same server connections and hears nothing.
		one(c, "SELECT 'c'")
		wctx, cancel = context.WithTimeout(ctx, 200*time.Millisecond)
		n, err = c.WaitForNotification(wctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("c got a notification meant for a: %v, %v", n, err)
		}
		if _, err := a.Exec(ctx, "UNLISTEN news"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		// a's long query is cancelled; b's, running at the same time on the
		// other server connection, is not.
		var wg sync.WaitGroup
		var bErr error
		started := make(chan struct{})
		wg.Go(func() {
			close(started)
			_, bErr = b.Exec(ctx, "SELECT pg_sleep(1.5)")
		})
		<-started
		aDone := make(chan error, 1)
		go func() {
			_, err := a.Exec(ctx, "SELECT pg_sleep(30)")
			aDone <- err
		}()
		direct := p.direct(t)
		waitFor(t, "a's sleep running", 10*time.Second, func() bool {
			var n int
			direct.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' AND state = 'active'").Scan(&n)
			return n == 1
		})
		if err := a.PgConn().CancelRequest(ctx); err != nil {
			t.Fatal(err)
		}
		err := <-aDone
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "57014" {
			t.Errorf("a's cancelled query: %v, want 57014", err)
		}
		wg.Wait()
		if bErr != nil {
			t.Errorf("b's query was hit by a's cancel: %v", bErr)
		}
	})
}

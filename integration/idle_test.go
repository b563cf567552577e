package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
)

// waitParked waits until p reports n parked clients (idle, their buffers
// given back), which happens a second after each last went quiet.
func (p *pooler) waitParked(t *testing.T, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d parked clients", n), 10*time.Second, func() bool {
		pools := p.srv.Pools()
		return len(pools) == 1 && pools[0].ClientsParked == n
	})
}

// TestParkedClients: a client quiet for longer than pgpoolx's park delay
// gives its buffers back, and carries on as before when it speaks again,
// with its session, its prepared statements, a pipelined batch and a COPY.
func TestParkedClients(t *testing.T) {
	p := startPooler(t, "", "pool_size: 2")
	ctx := t.Context()
	conn := p.connect(t, "application_name=parked")
	if _, err := conn.Exec(ctx, "SET statement_timeout = '12s'"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := conn.QueryRow(ctx, "SELECT $1::int + 1", 1).Scan(&n); err != nil || n != 2 {
		t.Fatalf("before parking: %d, %v", n, err)
	}
	p.waitParked(t, 1)

	var timeout string
	if err := conn.QueryRow(ctx, "SHOW statement_timeout").Scan(&timeout); err != nil || timeout != "12s" {
		t.Fatalf("after parking: statement_timeout %q, %v", timeout, err)
	}
	if err := conn.QueryRow(ctx, "SELECT $1::int + 1", 41).Scan(&n); err != nil || n != 42 {
		t.Fatalf("prepared statement after parking: %d, %v", n, err)
	}
	p.waitParked(t, 1)
	batch := &pgx.Batch{}
	for i := range 50 {
		batch.Queue("SELECT $1::int", i)
	}
	br := conn.SendBatch(ctx, batch)
	for i := range 50 {
		if err := br.QueryRow().Scan(&n); err != nil || n != i {
			t.Fatalf("batch row %d: %d, %v", i, n, err)
		}
	}
	if err := br.Close(); err != nil {
		t.Fatal(err)
	}
	p.waitParked(t, 1)
	if _, err := conn.Exec(ctx, "CREATE TABLE parked (n int)"); err != nil {
		t.Fatal(err)
	}
	rows := make([][]any, 1000)
	for i := range rows {
		rows[i] = []any{i}
	}
	copied, err := conn.CopyFrom(ctx, pgx.Identifier{"parked"}, []string{"n"}, pgx.CopyFromRows(rows))
	if err != nil || copied != 1000 {
		t.Fatalf("COPY after parking: %d, %v", copied, err)
	}
	conn.Close(context.WithoutCancel(ctx))
	p.waitParked(t, 0)
}

// TestParkedClientIdleTimeout: client_idle_timeout still ends a client
// that is parked: it is told why, then its connection is closed.
func TestParkedClientIdleTimeout(t *testing.T) {
	p := startPooler(t, "client_idle_timeout: 1500ms\n", "")
	r := dialProto(t, p.addr)
	if st := r.startup(pgproto3.ProtocolVersion30, protoParams(p)); st.err != nil {
		t.Fatalf("startup: %s", st.err.Message)
	}
	r.simpleQuery("SELECT 1")
	p.waitParked(t, 1)
	e := r.expectClose()
	if e == nil || e.Code != "57P05" {
		t.Fatalf("closed with %+v, want 57P05", e)
	}
}

// TestSlowMessageAfterRelease: a client that pipelines a second query and
// sends its body slowly, while its first query's server connection goes
// back to the pool, is not cut off by the idle deadlines (parking, the
// idle timeout) armed at that moment: they apply between messages only.
func TestSlowMessageAfterRelease(t *testing.T) {
	p := startPooler(t, "client_idle_timeout: 1200ms\n", "")
	r := dialProto(t, p.addr)
	if st := r.startup(pgproto3.ProtocolVersion30, protoParams(p)); st.err != nil {
		t.Fatalf("startup: %s", st.err.Message)
	}
	second, err := (&pgproto3.Query{String: "SELECT 'second', '" + strings.Repeat("x", 1000) + "'"}).Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	first, err := (&pgproto3.Query{String: "SELECT 'first'"}).Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	// The first query and the head of the second, then the rest of the
	// second in pieces over 2.5 s: longer than parkAfter and the idle
	// timeout both.
	r.write(append(first, second[:20]...))
	rest := second[20:]
	for len(rest) > 0 {
		time.Sleep(500 * time.Millisecond)
		n := min(len(rest), 200)
		r.write(rest[:n])
		rest = rest[n:]
	}
	var got []string
	for ready := 0; ready < 2; {
		msg, err := r.receive()
		if err != nil {
			t.Fatalf("connection ended after %q: %v", got, err)
		}
		switch m := msg.(type) {
		case *pgproto3.DataRow:
			got = append(got, string(m.Values[0]))
		case *pgproto3.ErrorResponse:
			t.Fatalf("error after %q: %s %s", got, m.Code, m.Message)
		case *pgproto3.ReadyForQuery:
			ready++
		}
	}
	if strings.Join(got, ",") != "first,second" {
		t.Errorf("rows %q", got)
	}
}

// TestLoginTimeoutDuringAuthentication: a client that sends its startup
// packet but never answers the password request is told why it is cut
// off, as by PostgreSQL's authentication_timeout.
func TestLoginTimeoutDuringAuthentication(t *testing.T) {
	p := startPooler(t, "client_login_timeout: 1s\nauth:\n  type: md5\n  users:\n    postgres:\n      password: pw\n", "")
	r := dialProto(t, p.addr)
	r.send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30, Parameters: protoParams(p)})
	msg, err := r.receive()
	if _, ok := msg.(*pgproto3.AuthenticationMD5Password); !ok || err != nil {
		t.Fatalf("want a password request, got %T, %v", msg, err)
	}
	e := r.expectClose()
	if e == nil || e.Code != "57014" || !strings.Contains(e.Message, "client_login_timeout") {
		t.Fatalf("closed with %+v, want 57014 naming client_login_timeout", e)
	}
}

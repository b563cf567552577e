package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestClientCaps(t *testing.T) {
	p := startPooler(t, "max_client_conn_per_user: 2\n", "max_client_conn: 3")
	connectAs := func(user string) (*pgx.Conn, error) {
		dsn := strings.Replace(p.dsn(""), "postgres@", user+"@", 1)
		conn, err := pgx.Connect(t.Context(), dsn)
		if err == nil {
			t.Cleanup(func() { conn.Close(context.WithoutCancel(t.Context())) })
		}
		return conn, err
	}
	for range 2 {
		if _, err := connectAs("alice"); err != nil {
			t.Fatal(err)
		}
	}
	_, err := connectAs("alice")
	assertCode(t, err, "53300")
	if !strings.Contains(err.Error(), `too many connections for user "alice" (max_client_conn_per_user is 2)`) {
		t.Errorf("error %v", err)
	}
	bob, err := connectAs("bob")
	if err != nil {
		t.Fatalf("another user: %v", err)
	}
	_, err = connectAs("carol")
	assertCode(t, err, "53300")
	if !strings.Contains(err.Error(), "its max_client_conn is 3") {
		t.Errorf("error %v", err)
	}
	// A slot freed is a slot to take.
	bob.Close(t.Context())
	waitFor(t, "bob's slot freed", 5*time.Second, func() bool {
		_, err := connectAs("carol")
		return err == nil
	})
}

func TestMaxMessageBytes(t *testing.T) {
	p := startPooler(t, "max_message_bytes: 65536\n", "")
	conn := p.connect(t, "")
	big := strings.Repeat("x", 100000)
	_, err := conn.Exec(t.Context(), "SELECT '"+big+"'")
	assertCode(t, err, "54000")
	if !strings.Contains(err.Error(), "exceeds the limit of 65536") {
		t.Errorf("error %v", err)
	}
	// Below the limit all is well, on a new connection.
	conn = p.connect(t, "")
	var n int
	if err := conn.QueryRow(t.Context(), "SELECT length($1::text)", big[:60000]).Scan(&n); err != nil || n != 60000 {
		t.Fatalf("60000-byte parameter: %d, %v", n, err)
	}
}

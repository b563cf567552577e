// Tests of the event loop's hand-offs (proxy/fast.go): each scenario moves
// a client between the loop and goroutines at a point that once lost a
// server connection or a wake-up.
package integration

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestEventLoopDeallocateKeepsNoServer: a DEALLOCATE that pgpoolx answers
// itself sends nothing to the server, so the server connection the loop
// took for it goes straight back: with a pool of one, the next client
// gets it at once.
func TestEventLoopDeallocateKeepsNoServer(t *testing.T) {
	p := startPooler(t, "acquire_timeout: 3s\n", "pool_size: 1")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	a := p.connectPgconn(t)
	if _, err := a.Prepare(ctx, "s1", "SELECT 1", nil); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := a.Exec(ctx, "DEALLOCATE s1").ReadAll(); err != nil {
			t.Fatalf("DEALLOCATE: %v", err)
		}
		if _, err := a.Prepare(ctx, "s1", "SELECT 1", nil); err != nil {
			t.Fatalf("prepare again %d: %v", i, err)
		}
	}
	if _, err := a.Exec(ctx, "DEALLOCATE s1").ReadAll(); err != nil {
		t.Fatalf("DEALLOCATE: %v", err)
	}
	b := p.connectPgconn(t)
	res, err := b.Exec(ctx, "SELECT 2").ReadAll()
	if err != nil {
		t.Fatalf("second client, pool of one, after the first's DEALLOCATE: %v", err)
	}
	if got := string(res[0].Rows[0][0]); got != "2" {
		t.Fatalf("got %q", got)
	}
}

// TestEventLoopHandOffs runs clients whose transactions cross between the
// loop and goroutines over and over (a SET that needs a probe, a
// transaction block, COPY, a row larger than the loop's buffer, plain
// queries), on a pool smaller than the clients: every statement answers
// and no server connection is lost, which a lost wake-up or a leaked
// connection would stall.
func TestEventLoopHandOffs(t *testing.T) {
	p := startPooler(t, "acquire_timeout: 20s\n", "pool_size: 3")
	runHandOffs(t, p, 3)
	if n := p.serverConns(t, p.direct(t)); n > 3 {
		t.Errorf("%d server connections, want at most 3", n)
	}
}

// TestEventLoopHandOffsOverServerTLS is the same over TLS to PostgreSQL:
// the loop relays TLS server connections too, and TLS keeps decrypted
// input the socket no longer shows, which the loop must read all the same
// (the 20,000 small rows come in many TLS records).
func TestEventLoopHandOffsOverServerTLS(t *testing.T) {
	c, _ := tlsCluster(t)
	if err := c.Exec(t.Context(), "postgres", "GRANT CREATE ON SCHEMA public TO app"); err != nil {
		t.Fatal(err)
	}
	p := startPoolerYAML(t, c, "postgres", "acquire_timeout: 20s\n", "user: app\npassword: app-pw\nsslmode: require\npool_size: 3")
	if ssl, _ := serverSSL(t, p.connect(t, "")); !ssl {
		t.Fatal("the server connection does not use TLS")
	}
	runHandOffs(t, p, 3)
}

func runHandOffs(t *testing.T, p *pooler, poolSize int) {
	const clients, rounds = 12, 30
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	setup := p.connectPgconn(t)
	if _, err := setup.Exec(ctx, "CREATE TABLE handoff (n int)").ReadAll(); err != nil {
		t.Fatal(err)
	}
	if clients <= poolSize {
		t.Fatalf("%d clients on a pool of %d: nobody waits", clients, poolSize)
	}
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for k := range clients {
		conn := p.connectPgconn(t)
		wg.Go(func() {
			for i := range rounds {
				var sql string
				rows := 1
				switch (k + i) % 6 {
				case 0:
					sql = "SET application_name = 'handoff'; SELECT 1"
				case 1:
					sql = "BEGIN; INSERT INTO handoff VALUES (1); SELECT count(*) FROM handoff; COMMIT"
				case 2:
					sql = "SELECT repeat('x', 100000)" // larger than the loop's buffer
				case 3:
					sql, rows = "RESET application_name", 0
				case 4:
					sql, rows = "SELECT g FROM generate_series(1, 20000) g", 20000 // many small messages
				default:
					sql = "SELECT 42"
				}
				res, err := conn.Exec(ctx, sql).ReadAll()
				if err != nil {
					errs <- err
					return
				}
				got := 0
				for _, r := range res {
					got += len(r.Rows)
				}
				if got != rows {
					errs <- fmt.Errorf("%s: %d rows, want %d", sql, got, rows)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

package integration

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgpoolx/pgpoolx/internal/pgcluster"
)

// TestPauseResumeAcrossRestart is the operator's way to restart
// PostgreSQL under pgpoolx: PAUSE with psql, restart, RESUME. PAUSE waits
// for the transaction under way; the transactions clients start while
// paused wait in pgpoolx, and once resumed they all succeed on new server
// connections.
func TestPauseResumeAcrossRestart(t *testing.T) {
	const clients = 5
	// A cluster of the test's own, since it restarts it.
	c := ownCluster(t, pgcluster.Options{})
	db := c.NewDatabase(t)
	p := startPoolerFor(t, c, db, "admin_users: [admin]\nacquire_timeout: 60s", "pool_size: 4")
	ctx := t.Context()
	if err := c.Exec(ctx, db, txLogSQL); err != nil {
		t.Fatal(err)
	}

	// Every server pid from before the restart.
	before := map[int32]bool{}
	conns := make([]*pgx.Conn, clients)
	for k := range conns {
		conns[k] = p.connect(t, "")
		before[queryValue[int32](t, conns[k], "SELECT pg_backend_pid()")] = true
	}

	running := p.connect(t, "")
	tx, err := running.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// It logs a row before PAUSE and two while PAUSE waits for it.
	var runningPID int32
	if err := tx.QueryRow(ctx, "INSERT INTO tx_log VALUES (-1, pg_backend_pid()) RETURNING pid").Scan(&runningPID); err != nil {
		t.Fatal(err)
	}
	before[runningPID] = true

	wantColumns(t, rowWhere(t, adminRows(t, p, "SHOW POOLS"), "database", db), map[string]string{"paused": "0"})
	type psqlResult struct {
		out string
		err error
	}
	paused := make(chan psqlResult, 1)
	go func() {
		out, err := runPsqlCmd(t, adminConninfo(p, "admin"), "-c", "PAUSE")
		paused <- psqlResult{out, err}
	}()
	// "pausing" is logged once the pools hold new transactions, before
	// PAUSE waits for the running ones.
	waitFor(t, `the "pausing" log entry`, 10*time.Second, func() bool { return p.logCount("pausing") == 1 })
	pauseReturned := func() bool {
		select {
		case r := <-paused:
			paused <- r
			return true
		default:
			return false
		}
	}
	// The transaction goes on: its server connection stays with it.
	for i := range 2 {
		if _, err := tx.Exec(ctx, "INSERT INTO tx_log VALUES (-1, pg_backend_pid())"); err != nil {
			t.Fatalf("statement %d of the running transaction during PAUSE: %v", i+1, err)
		}
		if pauseReturned() {
			t.Fatalf("PAUSE returned while a transaction was running (after its statement %d during PAUSE)", i+1)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatalf("commit of the running transaction during PAUSE: %v", err)
	}
	select {
	case r := <-paused:
		if r.err != nil {
			t.Fatalf("psql PAUSE: %v\n%s", r.err, r.out)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("PAUSE did not return within 20s of the running transaction's commit")
	}
	if n := p.logCount("paused"); n != 1 {
		t.Errorf("%d \"paused\" log entries, want 1", n)
	}

	if err := c.Restart(ctx); err != nil {
		t.Fatal(err)
	}

	type txResult struct {
		client int
		pid    int32
		err    error
	}
	results := make(chan txResult, clients)
	for k, conn := range conns {
		go func() {
			pid, err := logTransaction(ctx, conn, k)
			results <- txResult{k, pid, err}
		}()
	}
	waitFor(t, strconv.Itoa(clients)+" clients waiting for a server connection", 10*time.Second, func() bool {
		for _, ps := range p.srv.Pools() {
			if ps.Database == db {
				return ps.ClientsWaiting == clients
			}
		}
		return false
	})
	// What an operator sees meanwhile.
	wantColumns(t, rowWhere(t, adminRows(t, p, "SHOW POOLS"), "database", db), map[string]string{
		"cl_waiting": strconv.Itoa(clients), "sv_active": "0", "sv_login": "0", "paused": "1",
	})
	if n := len(results); n > 0 {
		t.Fatalf("%d transactions finished while pgpoolx was paused", n)
	}

	adminCommand(t, p, "RESUME")
	timeout := time.After(30 * time.Second)
	for range clients {
		select {
		case r := <-results:
			if r.err != nil {
				t.Errorf("client %d's transaction after RESUME: %v", r.client, r.err)
			} else if before[r.pid] {
				t.Errorf("client %d's transaction after RESUME ran on server pid %d, which served before the restart", r.client, r.pid)
			}
		case <-timeout:
			t.Fatal("transactions held by the pause did not finish within 30s of RESUME")
		}
	}
	if pid := queryValue[int32](t, running, "SELECT pg_backend_pid()"); before[pid] {
		t.Errorf("the client whose transaction PAUSE waited for now runs on server pid %d, from before the restart", pid)
	}
	direct, err := pgx.Connect(ctx, c.DSN(db))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close(context.WithoutCancel(ctx))
	if n := queryValue[int](t, direct, "SELECT count(*) FROM tx_log WHERE client >= 0"); n != clients {
		t.Errorf("%d rows from the transactions held by the pause, want %d", n, clients)
	}
	if n := queryValue[int](t, direct, "SELECT count(*) FROM tx_log WHERE client = -1"); n != 3 {
		t.Errorf("%d rows from the transaction PAUSE waited for, want 3", n)
	}
}

package integration

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgpoolx/pgpoolx/internal/pgcluster"
)

// assertLostWithError checks that work in flight when PostgreSQL went
// away ended with a FATAL error naming why: PostgreSQL's own 57P01, or
// pgpoolx's 08006 when the server could not say.
func assertLostWithError(t *testing.T, what string, err error) {
	t.Helper()
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		t.Errorf("%s: %v, want FATAL 57P01 or 08006", what, err)
		return
	}
	if pgErr.Severity != "FATAL" || pgErr.Code != "57P01" && pgErr.Code != "08006" {
		t.Errorf("%s: %s %s %q, want FATAL 57P01 or 08006", what, pgErr.Severity, pgErr.Code, pgErr.Message)
	}
}

// TestPostgresRestartUnderClients restarts PostgreSQL under three clients:
// one running a query, one inside a transaction and one between
// transactions. The first two get a proper error and nothing of the
// transaction is committed; the third does not notice, and new clients
// work at once.
func TestPostgresRestartUnderClients(t *testing.T) {
	c := ownCluster(t, pgcluster.Options{})
	db := c.NewDatabase(t)
	ctx := t.Context()
	if err := c.Exec(ctx, db, "CREATE TABLE r (i int)"); err != nil {
		t.Fatal(err)
	}
	p := startPoolerFor(t, c, db, "", "pool_size: 4")
	direct := p.direct(t) // until the restart

	inTx := p.connect(t, "")
	tx, err := inTx.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO r VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	// A query that runs until the restart: it waits for a lock held here.
	if _, err := direct.Exec(ctx, "SELECT pg_advisory_lock(77)"); err != nil {
		t.Fatal(err)
	}
	running := p.connect(t, "")
	runDone := make(chan error, 1)
	go func() {
		_, err := running.Exec(ctx, "SELECT pg_advisory_xact_lock(77)")
		runDone <- err
	}()
	waitFor(t, "the query to wait for the lock", 5*time.Second, waitingOnLock(t, p, direct, "pg_advisory_xact_lock(77)"))
	between := p.connect(t, "")
	pidBefore := queryValue[int](t, between, "SELECT pg_backend_pid()")

	if err := c.Restart(ctx); err != nil {
		t.Fatal(err)
	}

	select {
	case err := <-runDone:
		assertLostWithError(t, "query running during the restart", err)
	case <-time.After(10 * time.Second):
		t.Fatal("query running during the restart has not ended 10s after it")
	}
	_, err = tx.Exec(ctx, "INSERT INTO r VALUES (2)")
	assertLostWithError(t, "transaction open during the restart", err)
	if !inTx.IsClosed() {
		t.Error("the client whose transaction was lost is still connected")
	}

	// The client between transactions runs on a new server connection,
	// and so does a new client: the pool's dead connections are replaced.
	pidAfter := queryValue[int](t, between, "SELECT pg_backend_pid()")
	if pidAfter == pidBefore {
		t.Errorf("client between transactions still on backend %d after the restart", pidBefore)
	}
	fresh := p.connect(t, "")
	err = pgx.BeginFunc(ctx, fresh, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO r VALUES (3)")
		return err
	})
	if err != nil {
		t.Fatalf("a new client's transaction after the restart: %v", err)
	}
	got := queryValue[[]int32](t, fresh, "SELECT coalesce(array_agg(i ORDER BY i), '{}') FROM r")
	if !slices.Equal(got, []int32{3}) {
		t.Errorf("table holds %v, want [3]: only the transaction after the restart committed", got)
	}
}

// TestServerRefusingConnectionsIsRetriedWithBackOff has PostgreSQL refuse
// the pool's connections for a while. A client's queries fail with the
// server's reason and its session survives; pgpoolx dials again only as
// its back-off allows (250ms, doubling, at most 5s), not at each query;
// once the server takes connections again, the next transaction succeeds.
func TestServerRefusingConnectionsIsRetriedWithBackOff(t *testing.T) {
	p := startPooler(t, "", "pool_size: 2")
	ctx := t.Context()
	client := p.connect(t, "default_query_exec_mode=simple_protocol")
	if n := queryValue[int](t, client, "SELECT 1"); n != 1 {
		t.Fatal(n)
	}
	allow := refuseConnections(t, p)

	const outage = 1500 * time.Millisecond
	queries := 0
	start := time.Now()
	for time.Since(start) < outage {
		_, err := client.Exec(ctx, "SELECT 1")
		if err := assertRefusedByServer(fmt.Sprintf("query %d", queries+1), err); err != nil {
			t.Fatal(err)
		}
		queries++
	}
	elapsed := time.Since(start)
	dials := p.logCount("server connect failed")
	// Dial n+1 waits for the n-th back-off: 250ms, 500ms, 1s ...
	allowed := 1
	for wait, next := 250*time.Millisecond, 250*time.Millisecond; wait <= elapsed; wait += next {
		allowed++
		next = min(2*next, 5*time.Second)
	}
	t.Logf("%d queries in %s of outage cost %d dials (back-off allows at most %d)",
		queries, elapsed.Round(time.Millisecond), dials, allowed)
	if dials < 1 || dials > allowed {
		t.Errorf("%d dials while the server refused connections for %s, want 1..%d", dials, elapsed, allowed)
	}

	allow()
	recovered := time.Now()
	// Nothing signals the end of the back-off; it is at most 5s.
	waitFor(t, "the client's queries to succeed again", 10*time.Second, func() bool {
		_, err := client.Exec(ctx, "SELECT 1")
		return err == nil
	})
	t.Logf("queries succeed again %s after the server took connections again", time.Since(recovered).Round(time.Millisecond))
	err := pgx.BeginFunc(ctx, client, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "CREATE TABLE after_outage (i int)")
		return err
	})
	if err != nil {
		t.Fatalf("transaction after the outage: %v", err)
	}
}

// refuseConnections has PostgreSQL refuse new connections to the
// pooler's database, and ends the pooler's server connections to it;
// allow lets connections in again.
func refuseConnections(t *testing.T, p *pooler) (allow func()) {
	t.Helper()
	ctx := t.Context()
	// From another database: the database itself is to refuse connections.
	admin, err := pgx.Connect(ctx, p.cluster.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close(context.WithoutCancel(ctx)) })
	alter := "ALTER DATABASE " + pgx.Identifier{p.db}.Sanitize() + " ALLOW_CONNECTIONS "
	if _, err := admin.Exec(ctx, alter+"false"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = $1 AND backend_type = 'client backend'`, p.db); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "pgpoolx's server connections to end", 5*time.Second, func() bool { return p.serverConns(t, admin) == 0 })
	return func() {
		t.Helper()
		if _, err := admin.Exec(ctx, alter+"true"); err != nil {
			t.Fatal(err)
		}
	}
}

// assertRefusedByServer checks that a query failed with the server's
// reason for refusing connections, as an ERROR the session survives.
func assertRefusedByServer(what string, err error) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "55000" || pgErr.Severity != "ERROR" {
		return fmt.Errorf("%s while the server refuses connections: %v, want the server's ERROR 55000", what, err)
	}
	return nil
}

// TestClientsDuringAnOutage has ten clients need a server connection at
// once while PostgreSQL refuses connections: each gets the server's
// reason, and once the server takes connections again each one's next
// query succeeds.
func TestClientsDuringAnOutage(t *testing.T) {
	const clients = 10
	p := startPooler(t, "", fmt.Sprintf("pool_size: %d", clients))
	ctx := t.Context()
	conns := make([]*pgx.Conn, clients)
	for i := range conns {
		conns[i] = p.connect(t, "default_query_exec_mode=simple_protocol")
	}
	allow := refuseConnections(t, p)
	err := forEach(clients, clients, func(i int) error {
		_, err := conns[i].Exec(ctx, "SELECT 1")
		return assertRefusedByServer(fmt.Sprintf("client %d", i), err)
	})
	if err != nil {
		t.Fatal(err)
	}
	allow()
	recovered := time.Now()
	for i, conn := range conns {
		// Nothing signals the end of the back-off; it is at most 5s.
		waitFor(t, fmt.Sprintf("client %d's queries to succeed again", i), 10*time.Second, func() bool {
			_, err := conn.Exec(ctx, "SELECT 1")
			return err == nil
		})
	}
	t.Logf("%d dials failed; queries succeed again %s after the server took connections again",
		p.logCount("server connect failed"), time.Since(recovered).Round(time.Millisecond))
}

// TestNoStatementRunsOutsideItsTransactionWhenTheServerConnectionDies
// terminates the server connections of clients inside a transaction while
// they send their next statement, as any client not yet reading the FATAL
// does. That statement must not run: least of all on another server
// connection, outside the transaction, where it would commit on its own.
// The moment each statement goes out is varied, so that some land while
// pgpoolx handles the lost connection.
func TestNoStatementRunsOutsideItsTransactionWhenTheServerConnectionDies(t *testing.T) {
	const (
		rounds  = 15
		clients = 20
	)
	p := startPooler(t, "", fmt.Sprintf("pool_size: %d", clients))
	ctx := t.Context()
	direct := p.direct(t)
	if _, err := direct.Exec(ctx, "CREATE TABLE orphans (n int)"); err != nil {
		t.Fatal(err)
	}
	for round := range rounds {
		conns := make([]net.Conn, clients)
		defer func() {
			for _, nc := range conns {
				if nc != nil {
					nc.Close()
				}
			}
		}()
		pids := make([]int32, clients)
		err := forEach(clients, clients, func(i int) error {
			nc, err := rawLogin(ctx, p.addr, p.db)
			if err != nil {
				return err
			}
			conns[i] = nc
			nc.SetDeadline(time.Now().Add(10 * time.Second))
			got, err := rawQuery(nc, "BEGIN; SELECT pg_backend_pid()")
			if err != nil {
				return err
			}
			pid, err := strconv.Atoi(got[0])
			pids[i] = int32(pid)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if n := queryValue[int](t, direct, "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM unnest($1::int[]) pid", pids); n != clients {
			t.Fatalf("terminated %d of %d backends", n, clients)
		}
		err = forEach(clients, clients, func(i int) error {
			nc := conns[i]
			fe := pgproto3.NewFrontend(nc, nc)
			if i%2 == 0 {
				fe.Receive() // the FATAL, or the close
			}
			// Timing varied on purpose: it is what the test is about.
			time.Sleep(time.Duration(i%10) * 20 * time.Microsecond)
			msg, err := (&pgproto3.Query{String: fmt.Sprintf("INSERT INTO orphans VALUES (%d)", round*clients+i)}).Encode(nil)
			if err != nil {
				return err
			}
			nc.Write(msg) // fails once pgpoolx has closed the socket, as it may
			for {
				if _, err := fe.Receive(); err != nil {
					var ne net.Error
					if errors.As(err, &ne) && ne.Timeout() {
						return fmt.Errorf("client %d still connected 10s after its server connection was terminated", i)
					}
					return nil
				}
			}
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	got := queryValue[[]int32](t, direct, "SELECT coalesce(array_agg(n ORDER BY n), '{}') FROM orphans")
	if len(got) > 0 {
		t.Errorf("%d of %d statements sent after their transaction's server connection was terminated committed on their own (%v)",
			len(got), rounds*clients, got)
	}
}

// TestSlowClientDoesNotBlockOthers has a client ask for a result far
// larger than every buffer on its way and not read it, so that PostgreSQL
// waits to send; meanwhile other clients run their transactions on the
// pool's other server connection. Then the slow client reads its whole
// result, intact.
func TestSlowClientDoesNotBlockOthers(t *testing.T) {
	const (
		rows     = 16 << 10
		rowBytes = 8000 // 128 MiB in all, past the kernel's and pgpoolx's buffers
		others   = 8
		txEach   = 25
	)
	p := startPooler(t, "", "pool_size: 2")
	ctx := t.Context()
	direct := p.direct(t)
	slow := dialProto(t, p.addr)
	slow.startup(pgproto3.ProtocolVersionNumber, protoParams(p))
	bigQuery := fmt.Sprintf("SELECT i, repeat('x', %d) FROM generate_series(1, %d) i", rowBytes, rows)
	slow.send(&pgproto3.Query{String: bigQuery})
	stalled := func() bool {
		return queryValue[int](t, direct, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = $1 AND wait_event = 'ClientWrite' AND query = $2`, p.db, bigQuery) == 1
	}
	waitFor(t, "PostgreSQL to wait for the slow client to read", 20*time.Second, stalled)

	start := time.Now()
	err := forEach(others, others, func(i int) error {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(cctx, p.dsn(""))
		if err != nil {
			return fmt.Errorf("client %d: %w", i, err)
		}
		defer conn.Close(ctx)
		for j := range txEach {
			err := pgx.BeginFunc(cctx, conn, func(tx pgx.Tx) error {
				var n int
				return tx.QueryRow(cctx, "SELECT $1::int", j).Scan(&n)
			})
			if err != nil {
				return fmt.Errorf("client %d, transaction %d: %w", i, j, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d clients ran %d transactions each in %s while the slow client read nothing",
		others, txEach, time.Since(start).Round(time.Millisecond))
	if !stalled() {
		t.Fatal("the slow client's query was no longer waiting for it: the others did not run beside a stalled client")
	}

	var n, sum int
	for {
		msg, err := slow.receive()
		if err != nil {
			t.Fatalf("slow client, after %d rows: %v", n, err)
		}
		switch m := msg.(type) {
		case *pgproto3.DataRow:
			i, err := strconv.Atoi(string(m.Values[0]))
			if err != nil || len(m.Values[1]) != rowBytes {
				t.Fatalf("row %d: %q and %d bytes", n+1, m.Values[0], len(m.Values[1]))
			}
			n++
			sum += i
			continue
		case *pgproto3.CommandComplete:
			if string(m.CommandTag) != fmt.Sprintf("SELECT %d", rows) {
				t.Errorf("command tag %q", m.CommandTag)
			}
			continue
		case *pgproto3.ReadyForQuery:
		case *pgproto3.RowDescription:
			continue
		default:
			t.Fatalf("slow client got %T", msg)
		}
		break
	}
	if n != rows || sum != rows*(rows+1)/2 {
		t.Errorf("slow client got %d rows summing to %d, want %d summing to %d", n, sum, rows, rows*(rows+1)/2)
	}
	if got := slow.simpleQuery("SELECT 'after'"); !slices.Equal(got, []string{"after"}) {
		t.Errorf("slow client's next query got %q", got)
	}
}

// TestShutdownUnderLoadLosesNothing stops pgpoolx (as SIGTERM does in
// main) while clients run transactions and some hold theirs open. New
// clients are refused; every transaction under way finishes and commits;
// clients are closed only between transactions; every commit a client saw
// is in the table and nothing else is; and pgpoolx is done well within
// shutdown_timeout.
func TestShutdownUnderLoadLosesNothing(t *testing.T) {
	const (
		holders  = 5  // hold a transaction open across the shutdown
		workers  = 15 // run short transactions until closed
		poolSize = 10
		timeout  = 20 * time.Second
	)
	s := startStoppablePooler(t, fmt.Sprintf("shutdown_timeout: %s", timeout), fmt.Sprintf("pool_size: %d", poolSize))
	ctx := t.Context()
	direct := s.direct(t)
	if _, err := direct.Exec(ctx, "CREATE TABLE sd (client int, i int, PRIMARY KEY (client, i))"); err != nil {
		t.Fatal(err)
	}

	held := make([]pgx.Tx, holders)
	heldConns := make([]*pgx.Conn, holders)
	for k := range held {
		heldConns[k] = s.connect(t, "")
		tx, err := heldConns[k].Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO sd VALUES ($1, 0)", 1000+k); err != nil {
			t.Fatal(err)
		}
		held[k] = tx
	}

	type worker struct {
		committed []int
		step      string // the statement that failed: begin, insert or commit
		err       error
	}
	results := make([]worker, workers)
	var warm, done sync.WaitGroup
	var closing sync.Once
	closed := make(chan struct{}) // a worker was closed: the shutdown is under way
	for k := range results {
		conn := s.connect(t, "")
		w := &results[k]
		warm.Add(1)
		done.Go(func() {
			defer closing.Do(func() { close(closed) })
			for i := 0; ; i++ {
				if i == 5 {
					warm.Done()
				}
				w.step = "begin"
				tx, err := conn.Begin(ctx)
				if err == nil {
					w.step = "insert"
					if _, err = tx.Exec(ctx, "INSERT INTO sd VALUES ($1, $2)", k, i); err == nil {
						w.step = "commit"
						err = tx.Commit(ctx)
					}
				}
				if err != nil {
					if i < 5 {
						warm.Done()
					}
					w.err = err
					return
				}
				w.committed = append(w.committed, i)
			}
		})
	}
	warm.Wait()

	stopped := time.Now()
	s.stop()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("no client was closed within 10s of the shutdown")
	}
	assertConnRefused(t, s.addr)

	// The held transactions run on and commit after the shutdown began.
	for k, tx := range held {
		if _, err := tx.Exec(ctx, "INSERT INTO sd VALUES ($1, 1)", 1000+k); err != nil {
			t.Errorf("held transaction %d during the shutdown: %v", k, err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Errorf("held transaction %d: COMMIT during the shutdown: %v", k, err)
		}
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := heldConns[k].PgConn().WaitForNotification(wctx)
		cancel()
		assertCode(t, err, "57P01")
	}
	done.Wait()
	s.waitServed(t, timeout)
	if took := time.Since(stopped); took > timeout/2 {
		t.Errorf("shutdown took %s with every transaction short, want well within shutdown_timeout %s", took, timeout)
	}

	want := map[[2]int]bool{}
	for k := range holders {
		want[[2]int{1000 + k, 0}] = true
		want[[2]int{1000 + k, 1}] = true
	}
	committed := 0
	for k, w := range results {
		for _, i := range w.committed {
			want[[2]int{k, i}] = true
		}
		committed += len(w.committed)
		// A client is told at a transaction boundary: its next BEGIN
		// fails, nothing after it.
		var pgErr *pgconn.PgError
		if w.step != "begin" || errors.As(w.err, &pgErr) && pgErr.Code != "57P01" {
			t.Errorf("worker %d closed at its %s: %v; want its BEGIN to fail, with 57P01 if with an error", k, w.step, w.err)
		}
	}
	rows, err := direct.Query(ctx, "SELECT client, i FROM sd")
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) ([2]int, error) {
		var r [2]int
		return r, row.Scan(&r[0], &r[1])
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range got {
		if !want[r] {
			t.Errorf("row %v is in the table, but no client saw it commit", r)
		}
		delete(want, r)
	}
	for r := range want {
		t.Errorf("row %v was committed, but is not in the table", r)
	}
	t.Logf("%d transactions committed before the shutdown closed their clients, %d held ones during it; shut down in %s",
		committed, holders, time.Since(stopped).Round(time.Millisecond))
	waitFor(t, "pgpoolx's server connections to close", 5*time.Second, func() bool { return s.serverConns(t, direct) == 0 })
}

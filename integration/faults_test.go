package integration

import (
	"context"
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgproto3"
)

// queryValue runs a one-value query and fails the test on error.
func queryValue[T any](t testing.TB, conn *pgx.Conn, sql string, args ...any) T {
	t.Helper()
	var v T
	if err := conn.QueryRow(t.Context(), sql, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return v
}

// backendGone reports whether PostgreSQL has no backend with pid any more.
func backendGone(t testing.TB, direct *pgx.Conn, pid int) func() bool {
	return func() bool {
		return queryValue[int](t, direct, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid) == 0
	}
}

// waitingOnLock returns a condition that holds once a backend of the
// database is blocked on a lock while running a query containing text.
func waitingOnLock(t testing.TB, p *pooler, direct *pgx.Conn, text string) func() bool {
	return func() bool {
		return queryValue[int](t, direct, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = $1 AND wait_event_type = 'Lock' AND position($2 in query) > 0 AND pid <> pg_backend_pid()`,
			p.db, text) == 1
	}
}

func TestClientVanishingMidTransactionReleasesItsLocks(t *testing.T) {
	p := startPooler(t, "acquire_timeout: 3s", "pool_size: 1")
	ctx := t.Context()
	direct := p.direct(t)
	if _, err := direct.Exec(ctx, "CREATE TABLE acct (id int PRIMARY KEY, n int); INSERT INTO acct VALUES (1, 0)"); err != nil {
		t.Fatal(err)
	}

	a := p.connect(t, "")
	tx, err := a.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT n FROM acct WHERE id = 1 FOR UPDATE"); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(4242)"); err != nil {
		t.Fatal(err)
	}
	var pidA int
	if err := tx.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pidA); err != nil {
		t.Fatal(err)
	}
	locks := func(kind string) int {
		return queryValue[int](t, direct, `SELECT count(*) FROM pg_locks WHERE pid = $1 AND
			CASE $2 WHEN 'advisory' THEN locktype = 'advisory' AND objid = 4242
			ELSE locktype = 'relation' AND relation = 'acct'::regclass END`, pidA, kind)
	}
	if locks("advisory") != 1 || locks("row") != 1 {
		t.Fatalf("client's locks not held before it vanished: advisory %d, acct %d", locks("advisory"), locks("row"))
	}

	// The client's socket closes with no Terminate, as when a process dies.
	if err := a.PgConn().Conn().Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the vanished client's locks to be released", 5*time.Second, func() bool {
		return queryValue[int](t, direct, "SELECT count(*) FROM pg_locks WHERE pid = $1", pidA) == 0
	})

	// The only server connection was not handed on mid-transaction: the
	// next client starts its own transaction, and gets both locks at once.
	b := p.connect(t, "")
	// In a simple query (not the extended protocol, where Bind moves
	// statement_timestamp on), now() = statement_timestamp() holds only in
	// a transaction that this very statement started.
	var fresh, noXID bool
	if err := b.QueryRow(ctx, "SELECT now() = statement_timestamp(), txid_current_if_assigned() IS NULL",
		pgx.QueryExecModeSimpleProtocol).Scan(&fresh, &noXID); err != nil {
		t.Fatal(err)
	}
	if !fresh || !noXID {
		t.Errorf("next client runs inside an earlier transaction (now() = statement_timestamp(): %v, no xid: %v)", fresh, noXID)
	}
	txb, err := b.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := txb.Exec(ctx, "SELECT n FROM acct WHERE id = 1 FOR UPDATE NOWAIT"); err != nil {
		t.Fatalf("row lock after the client vanished: %v", err)
	}
	var got bool
	if err := txb.QueryRow(ctx, "SELECT pg_try_advisory_xact_lock(4242)").Scan(&got); err != nil || !got {
		t.Fatalf("advisory lock after the client vanished: %v, %v", got, err)
	}
	if err := txb.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestServerConnectionTerminated(t *testing.T) {
	t.Run("mid-transaction: the client sees PostgreSQL's FATAL", func(t *testing.T) {
		p := startPooler(t, "", "pool_size: 2")
		ctx := t.Context()
		direct := p.direct(t)
		conn := p.connect(t, "")
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var pid int
		if err := tx.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
			t.Fatal(err)
		}
		if !queryValue[bool](t, direct, "SELECT pg_terminate_backend($1)", pid) {
			t.Fatalf("pg_terminate_backend(%d) returned false", pid)
		}
		waitFor(t, "the terminated backend to exit", 5*time.Second, backendGone(t, direct, pid))

		_, err = tx.Exec(ctx, "SELECT 1")
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) {
			t.Fatalf("statement after pg_terminate_backend: %v, want PostgreSQL's FATAL 57P01", err)
		}
		if pgErr.Severity != "FATAL" || pgErr.Code != "57P01" || pgErr.Message != "terminating connection due to administrator command" {
			t.Errorf("got %s %s %q, want PostgreSQL's FATAL 57P01 \"terminating connection due to administrator command\"",
				pgErr.Severity, pgErr.Code, pgErr.Message)
		}
		if !conn.IsClosed() {
			t.Error("client connection still open after a FATAL error")
		}

		other := p.connect(t, "")
		if n := queryValue[int](t, other, "SELECT 7"); n != 7 {
			t.Errorf("new client got %d", n)
		}
	})

	t.Run("idle in the pool: replaced without the client noticing", func(t *testing.T) {
		p := startPooler(t, "", "pool_size: 1")
		direct := p.direct(t)
		for _, mode := range []string{"simple_protocol", "exec"} {
			conn := p.connect(t, "default_query_exec_mode="+mode)
			before := queryValue[int](t, conn, "SELECT pg_backend_pid()")
			if !queryValue[bool](t, direct, "SELECT pg_terminate_backend($1)", before) {
				t.Fatalf("pg_terminate_backend(%d) returned false", before)
			}
			waitFor(t, "the terminated backend to exit", 5*time.Second, backendGone(t, direct, before))

			var after int
			if err := conn.QueryRow(t.Context(), "SELECT pg_backend_pid()").Scan(&after); err != nil {
				t.Fatalf("%s: query after its idle server connection was terminated: %v", mode, err)
			}
			if after == before {
				t.Errorf("%s: query ran on terminated backend %d", mode, before)
			}
		}
	})
}

// cancellingConfig is a pgx config whose context cancellation sends a
// CancelRequest at once, and breaks the connection only if that has not
// ended the query within 8s.
func cancellingConfig(t testing.TB, dsn string) *pgx.ConnConfig {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.BuildContextWatcherHandler = func(pc *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: pc, DeadlineDelay: 8 * time.Second}
	}
	return cfg
}

func TestCancelReachesOnlyTheCancelledQuery(t *testing.T) {
	p := startPooler(t, "", "pool_size: 2")
	ctx := t.Context()
	direct := p.direct(t)

	a, err := pgx.ConnectConfig(ctx, cancellingConfig(t, p.dsn("")))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(context.WithoutCancel(ctx))
	b := p.connect(t, "")

	// B waits on an advisory lock held here, so it is provably running,
	// on the other server connection, when A's cancel goes out.
	if _, err := direct.Exec(ctx, "SELECT pg_advisory_lock(31)"); err != nil {
		t.Fatal(err)
	}
	bDone := make(chan error, 1)
	go func() {
		_, err := b.Exec(ctx, "SELECT pg_advisory_xact_lock(31)")
		bDone <- err
	}()
	waitFor(t, "client B to wait for the lock", 5*time.Second, waitingOnLock(t, p, direct, "pg_advisory_xact_lock(31)"))

	qctx, cancel := context.WithCancel(ctx)
	defer cancel()
	aDone := make(chan error, 1)
	go func() {
		_, err := a.Exec(qctx, "SELECT pg_sleep(30)")
		aDone <- err
	}()
	waitFor(t, "client A's pg_sleep to run", 5*time.Second, func() bool {
		return queryValue[int](t, direct, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = $1 AND state = 'active' AND query = 'SELECT pg_sleep(30)'`, p.db) == 1
	})
	cancel()
	select {
	case err := <-aDone:
		// 57014 comes only from the server acting on the CancelRequest;
		// had it not arrived, pgx would have broken the connection after 8s.
		assertCode(t, err, "57014")
	case <-time.After(20 * time.Second):
		t.Fatal("cancelled query still running after 20s")
	}
	if n := queryValue[int](t, a, "SELECT 5"); n != 5 {
		t.Errorf("A after its cancel got %d", n)
	}

	select {
	case err := <-bDone:
		t.Fatalf("client B's query ended before its lock was free: %v", err)
	default:
	}
	if _, err := direct.Exec(ctx, "SELECT pg_advisory_unlock(31)"); err != nil {
		t.Fatal(err)
	}
	if err := <-bDone; err != nil {
		t.Errorf("client B's query, which nobody cancelled: %v", err)
	}
}

// sendRawCancel sends a CancelRequest to addr and waits for the connection
// to close, which pgpoolx does once it has acted on it.
func sendRawCancel(t testing.TB, addr string, pid uint32, key []byte) {
	t.Helper()
	r := dialProto(t, addr)
	r.send(&pgproto3.CancelRequest{ProcessID: pid, SecretKey: key})
	if e := r.expectClose(); e != nil {
		t.Errorf("CancelRequest answered with %s %s %q; the server closes without a reply", e.Severity, e.Code, e.Message)
	}
}

// sendRawCancelAndHangUp writes (part of) a CancelRequest and closes at once.
func sendRawCancelAndHangUp(t testing.TB, addr string, pid uint32, key []byte, partial bool) {
	t.Helper()
	msg, err := (&pgproto3.CancelRequest{ProcessID: pid, SecretKey: key}).Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	if partial {
		msg = msg[:10]
	}
	r := dialProto(t, addr)
	r.write(msg)
	r.nc.Close()
}

func TestStrayCancelRequestsCancelNothing(t *testing.T) {
	p := startPooler(t, "", "pool_size: 1")
	ctx := t.Context()
	direct := p.direct(t)
	a := p.connect(t, "")
	b := p.connect(t, "")
	pidA, keyA := a.PgConn().PID(), a.PgConn().SecretKey()
	pidB, keyB := b.PgConn().PID(), b.PgConn().SecretKey()
	wrongKey := []byte{keyB[0] ^ 0xff, keyB[1], keyB[2], keyB[3]}
	unknownPID := uint32(1)
	for unknownPID == pidA || unknownPID == pidB {
		unknownPID++
	}

	// blockB has B wait on a lock on the pool's only server connection,
	// the one A ran its last query on.
	blockB := func() chan error {
		t.Helper()
		if _, err := direct.Exec(ctx, "SELECT pg_advisory_lock(41)"); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			_, err := b.Exec(ctx, "SELECT pg_advisory_xact_lock(41)")
			done <- err
		}()
		waitFor(t, "client B to wait for the lock", 5*time.Second, waitingOnLock(t, p, direct, "pg_advisory_xact_lock(41)"))
		return done
	}
	unblock := func() {
		t.Helper()
		if _, err := direct.Exec(ctx, "SELECT pg_advisory_unlock(41)"); err != nil {
			t.Fatal(err)
		}
	}

	if n := queryValue[int](t, a, "SELECT 1"); n != 1 {
		t.Fatal(n)
	}
	bDone := blockB()
	sendRawCancel(t, p.addr, pidB, wrongKey)   // B's id with a wrong key
	sendRawCancel(t, p.addr, pidA, keyA)       // A is between transactions
	sendRawCancel(t, p.addr, unknownPID, keyA) // nobody's
	sendRawCancelAndHangUp(t, p.addr, pidB, wrongKey, false)
	sendRawCancelAndHangUp(t, p.addr, pidB, keyB, true) // not even a whole packet
	// The hung-up wrong-key request is handled when pgpoolx gets to it;
	// its log entry says it has.
	waitFor(t, "both wrong-key cancel requests to be handled", 5*time.Second, func() bool {
		return p.logCount("cancel request with a wrong key") == 2
	})
	select {
	case err := <-bDone:
		t.Fatalf("client B's query ended while its lock was still held: %v", err)
	default:
	}
	unblock()
	if err := <-bDone; err != nil {
		t.Fatalf("client B's query, which no valid cancel named: %v", err)
	}

	// The right key while B's query runs does cancel it, even from a
	// client that hangs up straight away: so the checks above could fail.
	bDone = blockB()
	sendRawCancelAndHangUp(t, p.addr, pidB, keyB, false)
	select {
	case err := <-bDone:
		assertCode(t, err, "57014")
	case <-time.After(10 * time.Second):
		t.Fatal("a valid CancelRequest did not cancel client B's query within 10s")
	}
	unblock()

	// pgpoolx goes on serving everyone.
	if n := queryValue[int](t, a, "SELECT 2"); n != 2 {
		t.Errorf("A got %d", n)
	}
	if n := queryValue[int](t, b, "SELECT 3"); n != 3 {
		t.Errorf("B got %d", n)
	}
	if n := queryValue[int](t, p.connect(t, ""), "SELECT 4"); n != 4 {
		t.Errorf("new client got %d", n)
	}
}

func TestAcquireTimeoutIsAnErrorTheSessionSurvives(t *testing.T) {
	p := startPooler(t, "acquire_timeout: 500ms", "pool_size: 1")
	ctx := t.Context()
	b := p.connect(t, "") // connects while the server connection is free
	a := p.connect(t, "")
	tx, err := a.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}

	// Both protocols: a simple query, and an extended-protocol batch.
	for _, q := range []struct {
		name string
		run  func() error
	}{
		{"simple query", func() error { _, err := b.Exec(ctx, "SELECT 1"); return err }},
		{"extended query", func() error { var n int; return b.QueryRow(ctx, "SELECT $1::int", 1).Scan(&n) }},
	} {
		start := time.Now()
		err := q.run()
		elapsed := time.Since(start)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) {
			t.Fatalf("%s while the pool is exhausted: %v, want SQLSTATE 53300", q.name, err)
		}
		if pgErr.Code != "53300" || !strings.Contains(pgErr.Message, p.db) {
			t.Errorf("%s: got %s %q, want 53300 naming database %s", q.name, pgErr.Code, pgErr.Message, p.db)
		}
		if pgErr.Severity != "ERROR" {
			t.Errorf("%s: severity %s, want ERROR: the session goes on", q.name, pgErr.Severity)
		}
		if elapsed < 500*time.Millisecond {
			t.Errorf("%s failed after %s, before acquire_timeout", q.name, elapsed)
		}
	}
	if b.IsClosed() {
		t.Fatal("client closed after an acquire timeout")
	}

	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if n := queryValue[int](t, b, "SELECT $1::int", 9); n != 9 {
		t.Errorf("B after A committed: %d", n)
	}
	if n := queryValue[int](t, b, "SELECT 10"); n != 10 {
		t.Errorf("B after A committed: %d", n)
	}
}

// stoppablePooler is a pooler whose Serve the test stops itself.
type stoppablePooler struct {
	*pooler
	stop     context.CancelFunc
	served   chan struct{} // closed when Serve has returned
	serveErr error         // Serve's result, once served is closed
}

// startStoppablePooler is startPooler with the Serve context in the
// test's hands.
func startStoppablePooler(t *testing.T, topYAML, dbYAML string) *stoppablePooler {
	t.Helper()
	c := pg.Get(t)
	p, serve := newPooler(t, c, c.NewDatabase(t), topYAML, dbYAML)
	ctx, cancel := context.WithCancel(t.Context())
	s := &stoppablePooler{
		pooler: p,
		stop:   cancel,
		served: make(chan struct{}),
	}
	go func() {
		s.serveErr = serve(ctx)
		close(s.served)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.served:
		case <-time.After(30 * time.Second):
			t.Error("Serve did not return within 30s of being stopped")
		}
	})
	return s
}

// waitServed waits for Serve to return and checks it returned nil.
func (s *stoppablePooler) waitServed(t testing.TB, within time.Duration) {
	t.Helper()
	select {
	case <-s.served:
	case <-time.After(within):
		t.Fatalf("Serve did not return within %s", within)
	}
	if s.serveErr != nil {
		t.Errorf("Serve: %v", s.serveErr)
	}
}

// assertConnRefused checks that nothing accepts connections at addr.
func assertConnRefused(t testing.TB, addr string) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err == nil {
		nc.Close()
		t.Fatalf("%s still accepts connections", addr)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial %s: %v, want connection refused", addr, err)
	}
}

func TestGracefulShutdown(t *testing.T) {
	t.Run("transactions may finish", func(t *testing.T) {
		s := startStoppablePooler(t, "shutdown_timeout: 20s", "pool_size: 2")
		ctx := t.Context()
		direct := s.direct(t)
		if _, err := direct.Exec(ctx, "CREATE TABLE shut (i int)"); err != nil {
			t.Fatal(err)
		}
		a := s.connect(t, "")
		if n := queryValue[int](t, a, "SELECT 1"); n != 1 {
			t.Fatal(n)
		}
		b := s.connect(t, "")
		tx, err := b.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO shut VALUES (1)"); err != nil {
			t.Fatal(err)
		}

		s.stop()
		// A is between transactions: told at once, and closed. Reading
		// (for a notification) is how a pgx client sees that while idle.
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = a.PgConn().WaitForNotification(wctx)
		cancel()
		assertCode(t, err, "57P01")
		assertConnRefused(t, s.addr)

		// B finishes its transaction, and is closed after it.
		if _, err := tx.Exec(ctx, "INSERT INTO shut VALUES (2)"); err != nil {
			t.Fatalf("statement in a transaction during shutdown: %v", err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatalf("COMMIT during shutdown: %v", err)
		}
		wctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		err = b.PgConn().WaitForNotification(wctx)
		cancel()
		assertCode(t, err, "57P01")

		// With the last client gone, Serve returns well before
		// shutdown_timeout.
		s.waitServed(t, 10*time.Second)
		if n := queryValue[int](t, direct, "SELECT count(*) FROM shut"); n != 2 {
			t.Errorf("%d rows committed, want 2", n)
		}
		waitFor(t, "pgpoolx's server connections to close", 5*time.Second, func() bool { return s.serverConns(t, direct) == 0 })
		assertConnRefused(t, s.addr)
	})

	t.Run("shutdown_timeout cuts off open transactions", func(t *testing.T) {
		s := startStoppablePooler(t, "shutdown_timeout: 300ms", "pool_size: 1")
		ctx := t.Context()
		direct := s.direct(t)
		if _, err := direct.Exec(ctx, "CREATE TABLE cut (i int)"); err != nil {
			t.Fatal(err)
		}
		c := s.connect(t, "")
		tx, err := c.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO cut VALUES (1)"); err != nil {
			t.Fatal(err)
		}
		var pid int
		if err := tx.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
			t.Fatal(err)
		}

		s.stop()
		s.waitServed(t, 10*time.Second)
		if n := s.logCount("shutdown timeout: closing clients still in a transaction"); n != 1 {
			t.Errorf("shutdown timeout logged %d times, want 1", n)
		}
		_, err = tx.Exec(ctx, "INSERT INTO cut VALUES (2)")
		if err == nil {
			t.Fatal("transaction still usable after shutdown_timeout")
		}
		// The client sits idle in its transaction, at a message boundary:
		// like PostgreSQL at a fast shutdown, pgpoolx should say why it
		// hangs up (FATAL 57P01) rather than just close the socket.
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "57P01" {
			t.Errorf("cut-off client got %v, want FATAL 57P01 as PostgreSQL sends at a fast shutdown", err)
		}
		waitFor(t, "the cut-off transaction's backend to exit", 5*time.Second, backendGone(t, direct, pid))
		if n := queryValue[int](t, direct, "SELECT count(*) FROM cut"); n != 0 {
			t.Errorf("%d rows of the cut-off transaction committed, want 0", n)
		}
		assertConnRefused(t, s.addr)
	})
}

func TestMaxClientConnRefusesTheNextClient(t *testing.T) {
	p := startPooler(t, "max_client_conn: 2", "")
	ctx := t.Context()
	first := p.connect(t, "")
	p.connect(t, "")
	_, err := pgx.Connect(ctx, p.dsn(""))
	assertCode(t, err, "53300")

	// A client that leaves frees its place.
	if err := first.Close(ctx); err != nil {
		t.Fatal(err)
	}
	var third *pgx.Conn
	waitFor(t, "a free client slot", 5*time.Second, func() bool {
		conn, err := pgx.Connect(ctx, p.dsn(""))
		if err == nil {
			third = conn
			return true
		}
		assertCode(t, err, "53300")
		return false
	})
	defer third.Close(context.WithoutCancel(ctx))
	if n := queryValue[int](t, third, "SELECT 3"); n != 3 {
		t.Errorf("third client got %d", n)
	}
}

func TestSessionModeResetsTheServerConnectionBetweenClients(t *testing.T) {
	p := startPooler(t, "", "pool_mode: session\npool_size: 1\ninit_query: \"SET statement_timeout TO 1111\"")
	ctx := t.Context()

	a := p.connect(t, "")
	pidA := queryValue[int](t, a, "SELECT pg_backend_pid()")
	if _, err := a.Exec(ctx, "SET statement_timeout = 4321"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Exec(ctx, "CREATE TEMP TABLE t ()"); err != nil {
		t.Fatal(err)
	}
	if got := queryValue[string](t, a, "SELECT current_setting('statement_timeout')"); got != "4321ms" {
		t.Fatalf("client A's own statement_timeout = %q", got)
	}
	if n := queryValue[int](t, a, "SELECT count(*) FROM t"); n != 0 {
		t.Fatal(n)
	}
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}

	// The pool's one server connection goes to B once A is gone.
	b := p.connect(t, "")
	if pidB := queryValue[int](t, b, "SELECT pg_backend_pid()"); pidB != pidA {
		t.Fatalf("client B got backend %d, want A's %d (reset, not replaced)", pidB, pidA)
	}
	if got := queryValue[string](t, b, "SELECT current_setting('statement_timeout')"); got != "1111ms" {
		t.Errorf("client B sees statement_timeout %q, want the init query's 1111ms", got)
	}
	_, err := b.Exec(ctx, "SELECT * FROM t")
	assertCode(t, err, "42P01")
}

// client_idle_timeout disconnects a client idle between transactions with
// 57P05, and never one inside a transaction.
func TestClientIdleTimeout(t *testing.T) {
	p := startPooler(t, "client_idle_timeout: 300ms", "pool_size: 2")
	ctx := t.Context()
	inTx := p.connect(t, "")
	tx, err := inTx.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	idle := p.connect(t, "")
	closedIdle := func() bool {
		for _, e := range p.logs.FilterMessage("client closed").All() {
			if msg, _ := e.ContextMap()["error"].(string); strings.Contains(msg, "57P05") {
				return true
			}
		}
		return false
	}
	waitFor(t, "pgpoolx to close the idle client", 10*time.Second, closedIdle)
	if _, err := idle.Exec(ctx, "SELECT 1"); err == nil {
		t.Error("the idle client can still run a query")
	}
	// The client inside a transaction was just as quiet, but is not idle.
	var one int
	if err := tx.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		t.Fatalf("client inside a transaction was cut off: %v", err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

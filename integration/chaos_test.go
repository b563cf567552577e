package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgpoolx/pgpoolx/internal/pgcluster"
)

// chaosDuration is how long the chaos lasts: 60s, PGPOOLX_CHAOS_DURATION
// (a Go duration) if set, 10s with -short.
func chaosDuration(t *testing.T) time.Duration {
	t.Helper()
	if s := os.Getenv("PGPOOLX_CHAOS_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			t.Fatalf("PGPOOLX_CHAOS_DURATION=%q: want a positive Go duration such as 90s", s)
		}
		return d
	}
	if testing.Short() {
		return 10 * time.Second
	}
	return 60 * time.Second
}

// transferOutcome is what a client knows of one transfer's fate.
type transferOutcome int

const (
	transferCommitted transferOutcome = iota // COMMIT answered with success
	transferFailed                           // an error before COMMIT, or COMMIT answered that it rolled back
	// transferUnknown: the connection broke while COMMIT was on its way or
	// its answer was, so the transaction may or may not have committed. No
	// client of any database can tell; these transfers are left out of the
	// committed and the failed checks alike, and only the balance checks
	// (which cover every row the table holds) judge them.
	transferUnknown
)

// chaosClient is one of the test's clients; its current socket is kept
// so that the chaos loop can close it under the client.
type chaosClient struct {
	mu sync.Mutex
	nc net.Conn // nil between connections

	// Written by the client's goroutine only, read after it ends.
	ids      [3][]int64 // transfer ids by transferOutcome
	errKind  map[string]int
	troubled map[int64]troubledTransfer // the failed and unknown ones
	xids     map[int64]int64            // the transaction each transfer ran in, by transfer id
}

// transfer moves amount from account src to dst; id names it.
type transfer struct {
	id               int64
	src, dst, amount int
}

// troubledTransfer is a transfer that failed or whose outcome is unknown,
// kept to explain a broken invariant.
type troubledTransfer struct {
	transfer
	err string // the step and the error the client saw
}

func (cc *chaosClient) setConn(nc net.Conn) {
	cc.mu.Lock()
	cc.nc = nc
	cc.mu.Unlock()
}

// kill closes the client's socket, as when its process dies. It reports
// whether there was one.
func (cc *chaosClient) kill() bool {
	cc.mu.Lock()
	nc := cc.nc
	cc.nc = nil
	cc.mu.Unlock()
	if nc == nil {
		return false
	}
	nc.Close()
	return true
}

// errorKind names an error for the tally: its SQLSTATE when a server or
// pgpoolx answered, else what broke.
func errorKind(err error) string {
	var pgErr *pgconn.PgError
	switch {
	case errors.Is(err, errSplitTransaction):
		return "split transaction"
	case errors.As(err, &pgErr):
		return pgErr.Severity + " " + pgErr.Code
	case errors.Is(err, pgx.ErrTxCommitRollback):
		return "commit rolled back"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	default:
		return "connection lost"
	}
}

// errSplitTransaction: the statements of one transaction ran in several.
var errSplitTransaction = errors.New("one transaction's statements ran in different transactions")

// chaosTransfer makes the transfer and records it in the transfers table,
// all in one transaction, and says what the client can know of the
// outcome. On error, step names the statement that failed. xid is the
// transaction the statements ran in, once the first one ran.
func chaosTransfer(ctx context.Context, conn *pgx.Conn, tr transfer) (_ transferOutcome, step string, xid int64, _ error) {
	src, dst, amount := tr.src, tr.dst, tr.amount
	tx, err := conn.Begin(ctx)
	if err != nil {
		return transferFailed, "begin", 0, err
	}
	// Accounts are updated in id order, so two transfers never deadlock.
	first, second := src, dst
	if first > second {
		first, second = second, first
	}
	delta := func(acct int) int {
		if acct == src {
			return -amount
		}
		return amount
	}
	// Each statement says which transaction it ran in: a pooler that ran
	// part of a transaction elsewhere shows up here first.
	var xids [3]int64
	step = "insert"
	err = tx.QueryRow(ctx, "INSERT INTO transfers (id, src, dst, amount) VALUES ($1, $2, $3, $4) RETURNING txid_current()",
		tr.id, src, dst, amount).Scan(&xids[0])
	for i, acct := range []int{first, second} {
		if err == nil {
			step = "update"
			err = tx.QueryRow(ctx, "UPDATE accounts SET balance = balance + $2 WHERE id = $1 RETURNING txid_current()",
				acct, delta(acct)).Scan(&xids[i+1])
		}
	}
	if err == nil && (xids[1] != xids[0] || xids[2] != xids[0]) {
		// Some of it may have committed already: say so, and leave it out
		// of the checks by outcome.
		tx.Rollback(ctx)
		return transferUnknown, step, xids[0], fmt.Errorf("%w: transaction ids %v", errSplitTransaction, xids)
	}
	if err != nil {
		// COMMIT was never sent: on a broken connection PostgreSQL rolls
		// the transaction back, on a live one this does.
		tx.Rollback(ctx)
		return transferFailed, step, xids[0], err
	}
	err = tx.Commit(ctx)
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		return transferCommitted, "", xids[0], nil
	case errors.Is(err, pgx.ErrTxCommitRollback):
		return transferFailed, "commit", xids[0], err
	case errors.As(err, &pgErr) && pgErr.Severity == "ERROR":
		// The server refused the COMMIT and the session goes on.
		return transferFailed, "commit", xids[0], err
	default:
		// A FATAL (the backend terminated while committing) or a broken
		// connection: the commit may have happened. (pgx reports a read
		// that failed after COMMIT went out as "conn closed", which it
		// calls safe to retry: it is not.)
		return transferUnknown, "commit", xids[0], err
	}
}

// run transfers money until stop is closed, reconnecting whenever the
// connection breaks.
func (cc *chaosClient) run(ctx context.Context, cfg *pgx.ConnConfig, k int, stop <-chan struct{}) {
	cc.errKind = map[string]int{}
	cc.troubled = map[int64]troubledTransfer{}
	cc.xids = map[int64]int64{}
	rng := rand.New(rand.NewPCG(uint64(k), 6))
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.WithoutCancel(ctx))
		}
	}()
	pace := time.NewTimer(0)
	<-pace.C
	for seq := int64(0); ; seq++ {
		select {
		case <-stop:
			return
		default:
		}
		if conn == nil {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			c, err := pgx.ConnectConfig(cctx, cfg)
			cancel()
			if err != nil {
				cc.errKind["connect: "+errorKind(err)]++
				// While PostgreSQL restarts every attempt fails at once;
				// this only keeps 200 clients from spinning.
				pace.Reset(50 * time.Millisecond)
				select {
				case <-stop:
					return
				case <-pace.C:
				}
				continue
			}
			conn = c
		}
		tr := transfer{id: int64(k)<<32 | seq, src: 1 + rng.IntN(chaosAccounts), amount: 1 + rng.IntN(100)}
		if tr.dst = 1 + rng.IntN(chaosAccounts-1); tr.dst >= tr.src {
			tr.dst++
		}
		tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		outcome, step, xid, err := chaosTransfer(tctx, conn, tr)
		cancel()
		cc.ids[outcome] = append(cc.ids[outcome], tr.id)
		if xid != 0 {
			cc.xids[tr.id] = xid
		}
		if err != nil {
			cc.errKind[step+": "+errorKind(err)]++
			cc.troubled[tr.id] = troubledTransfer{tr, step + ": " + err.Error()}
			if conn.IsClosed() {
				conn.Close(context.WithoutCancel(ctx))
				conn = nil
			}
		}
	}
}

const (
	chaosAccounts       = 1000
	chaosClients        = 200
	chaosPoolSize       = 10
	chaosInitialBalance = 1000
)

// TestChaosBankTransfers is the bank-transfer invariant under chaos: 200
// clients move money between 1,000 accounts through a pool of 10 while
// random server connections are terminated, random clients' sockets are
// closed, and PostgreSQL restarts once. Money is neither made nor lost,
// every transfer a client saw commit is there, none it saw fail is, and
// pgpoolx never holds more than pool_size server connections.
func TestChaosBankTransfers(t *testing.T) {
	duration := chaosDuration(t)
	c := ownCluster(t, pgcluster.Options{})
	db := c.NewDatabase(t)
	ctx := t.Context()
	err := c.Exec(ctx, db, fmt.Sprintf(`
		CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL);
		INSERT INTO accounts SELECT i, %d FROM generate_series(1, %d) i;
		CREATE TABLE transfers (id bigint PRIMARY KEY, src int NOT NULL, dst int NOT NULL, amount int NOT NULL)`,
		chaosInitialBalance, chaosAccounts))
	if err != nil {
		t.Fatal(err)
	}
	p := startPoolerFor(t, c, db, "", fmt.Sprintf("pool_size: %d", chaosPoolSize))

	clients := make([]*chaosClient, chaosClients)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for k := range clients {
		cc := &chaosClient{}
		clients[k] = cc
		cfg, err := pgx.ParseConfig(p.dsn(""))
		if err != nil {
			t.Fatal(err)
		}
		var d net.Dialer
		cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
			nc, err := d.DialContext(ctx, network, addr)
			if err == nil {
				cc.setConn(nc)
			}
			return nc, err
		}
		wg.Go(func() { cc.run(ctx, cfg, k, stop) })
	}
	// However the test ends, the clients stop before the pooler does.
	stopClients := sync.OnceFunc(func() { close(stop); wg.Wait() })
	t.Cleanup(stopClients)

	ch := &chaos{t: t, cluster: c, db: db, rng: rand.New(rand.NewPCG(1, 6))}
	defer ch.close()
	restarted := make(chan error, 1)
	// Early enough that the pool's back-off after failing to reach the
	// restarting server (up to 5s) has long passed when the chaos ends.
	restartAt := time.After(duration / 3)
	end := time.After(duration)
	sample := time.NewTicker(10 * time.Millisecond)
	defer sample.Stop()
	nextChaos := time.Now()
	var maxConns, samples, terminated, killed, restarts int
chaosLoop:
	for {
		select {
		case <-end:
			break chaosLoop
		case <-restartAt:
			restarts++
			go func() { restarted <- c.Restart(ctx) }()
		case <-sample.C:
		}
		if n, ok := ch.serverConns(); ok {
			maxConns = max(maxConns, n)
			samples++
		}
		if time.Now().Before(nextChaos) {
			continue
		}
		nextChaos = time.Now().Add(time.Duration(100+ch.rng.IntN(200)) * time.Millisecond)
		if ch.terminateRandomBackend() {
			terminated++
		}
		if clients[ch.rng.IntN(len(clients))].kill() {
			killed++
		}
	}
	stopClients()
	if err := <-restarted; err != nil {
		t.Fatal(err)
	}

	var ids [3][]int64
	errKinds := map[string]int{}
	troubled := map[int64]troubledTransfer{}
	byXID := map[int64]int64{} // transfer id by transaction id
	for _, cc := range clients {
		for id, xid := range cc.xids {
			if other, ok := byXID[xid]; ok {
				t.Errorf("transfers %d (client %d) and %d (client %d) ran in the same transaction %d",
					other, other>>32, id, id>>32, xid)
			}
			byXID[xid] = id
		}
		for o := range ids {
			ids[o] = append(ids[o], cc.ids[o]...)
		}
		for k, n := range cc.errKind {
			errKinds[k] += n
		}
		maps.Copy(troubled, cc.troubled)
	}
	committed, failed, unknown := ids[transferCommitted], ids[transferFailed], ids[transferUnknown]
	t.Logf("%s of chaos: %d transfers committed, %d failed, %d unknown; %d backends terminated, %d client sockets closed, %d restart",
		duration, len(committed), len(failed), len(unknown), terminated, killed, restarts)
	t.Logf("errors clients saw: %v", errKinds)
	t.Logf("at most %d server connections open in %d samples (pool_size %d)", maxConns, samples, chaosPoolSize)
	if maxConns > chaosPoolSize {
		t.Errorf("pgpoolx held %d server connections at once, more than pool_size %d", maxConns, chaosPoolSize)
	}
	// Without these the invariants below would hold trivially.
	if len(committed) == 0 || len(failed) == 0 || terminated == 0 || killed == 0 {
		t.Fatalf("the chaos did not happen: %d committed, %d failed, %d terminated, %d killed",
			len(committed), len(failed), terminated, killed)
	}
	for kind, n := range errKinds {
		if !expectedChaosError(kind) {
			t.Errorf("clients saw %d errors %q, which no fault of this test causes", n, kind)
		}
	}

	// pgpoolx recovered: a new client's transfer goes through, once the
	// pool's back-off after its last failed dial (a backend terminated
	// while it logged in, say) has passed.
	var lastErr error
	attempts := 0
	defer func() {
		if t.Failed() && lastErr != nil {
			t.Logf("a new client's last transfer failed: %v", lastErr)
		}
	}()
	waitFor(t, "a new client's transfer to succeed", 10*time.Second, func() bool {
		attempts++
		id := -int64(attempts)
		conn, err := pgx.Connect(ctx, p.dsn(""))
		if err != nil {
			lastErr = err
			return false
		}
		defer conn.Close(ctx)
		outcome, _, _, err := chaosTransfer(ctx, conn, transfer{id: id, src: 1, dst: 2, amount: 1})
		ids[outcome] = append(ids[outcome], id)
		lastErr = err
		return err == nil
	})
	if attempts > 1 {
		t.Logf("a new client's transfer succeeded at attempt %d, after %v", attempts, lastErr)
	}
	committed, failed, unknown = ids[transferCommitted], ids[transferFailed], ids[transferUnknown]

	direct := p.direct(t)
	var total int64
	var rows, missing, badAccounts int
	var failedPresent []int64
	err = direct.QueryRow(ctx, `SELECT
		(SELECT sum(balance) FROM accounts),
		(SELECT count(*) FROM transfers),
		(SELECT count(*) FROM unnest($1::bigint[]) c(id) WHERE NOT EXISTS (SELECT FROM transfers t WHERE t.id = c.id)),
		(SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM transfers WHERE id = ANY($2::bigint[])),
		(SELECT count(*) FROM accounts a WHERE balance <> $3
			+ coalesce((SELECT sum(amount) FROM transfers WHERE dst = a.id), 0)
			- coalesce((SELECT sum(amount) FROM transfers WHERE src = a.id), 0))`,
		committed, failed, chaosInitialBalance).Scan(&total, &rows, &missing, &failedPresent, &badAccounts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the table holds %d transfers: %d seen committed and %d others (of %d of unknown outcome)",
		rows, len(committed)-missing, rows-(len(committed)-missing), len(unknown))
	if want := int64(chaosAccounts * chaosInitialBalance); total != want {
		t.Errorf("total balance %d, want %d", total, want)
	}
	if missing != 0 {
		t.Errorf("%d transfers the client saw commit are not in the table", missing)
	}
	if len(failedPresent) != 0 {
		t.Errorf("%d transfers the client saw fail are in the table", len(failedPresent))
		for _, id := range failedPresent[:min(10, len(failedPresent))] {
			t.Logf("transfer %d (client %d) failed with %s", id, id>>32, troubled[id].err)
		}
	}
	if badAccounts != 0 {
		t.Errorf("%d accounts' balances differ from the initial balance plus the transfers in the table", badAccounts)
		rows, err := direct.Query(ctx, `SELECT id, off FROM (SELECT id, balance - $1
			- coalesce((SELECT sum(amount) FROM transfers WHERE dst = a.id), 0)
			+ coalesce((SELECT sum(amount) FROM transfers WHERE src = a.id), 0) AS off
			FROM accounts a) d ORDER BY abs(off) DESC, id LIMIT 10`, chaosInitialBalance)
		if err != nil {
			t.Fatal(err)
		}
		diffs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[struct{ Account, Off int }])
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("balance minus what the transfers table explains, worst first: %v", diffs)
		// A transfer whose row and updates did not commit together
		// explains such a difference.
		for id, tr := range troubled {
			for _, d := range diffs {
				if (d.Account == tr.src || d.Account == tr.dst) && (d.Off == tr.amount || d.Off == -tr.amount) {
					t.Logf("account %d is off by %d like transfer %d (%d -> %d, %d), which failed with %s",
						d.Account, d.Off, id, tr.src, tr.dst, tr.amount, tr.err)
				}
			}
		}
	}
}

// expectedChaosError reports whether an error kind (see errorKind) is one
// the chaos explains: a terminated backend or a restart (57P01, and 57P03
// or refused connections while PostgreSQL starts), pgpoolx unable to reach
// the server meanwhile (08001, 08006), or a closed socket.
func expectedChaosError(kind string) bool {
	_, kind, _ = strings.Cut(kind, ": ")
	if kind == "connection lost" {
		return true
	}
	code := kind[strings.LastIndexByte(kind, ' ')+1:]
	return slices.Contains([]string{"57P01", "57P03", "08001", "08006"}, code)
}

// chaos is the test's own line to PostgreSQL, from the chaos loop's
// goroutine alone: a superuser connection to the postgres database, made
// again whenever it breaks.
type chaos struct {
	t       *testing.T
	cluster *pgcluster.Cluster
	db      string
	rng     *rand.Rand
	conn    *pgx.Conn
	tcp     []byte // a buffer for the kernel's TCP table
}

func (ch *chaos) close() {
	if ch.conn != nil {
		ch.conn.Close(context.WithoutCancel(ch.t.Context()))
		ch.conn = nil
	}
}

// query runs a query on the chaos loop's connection, connecting first if
// need be. While PostgreSQL restarts it fails; the next round tries again.
func (ch *chaos) query(sql string, args ...any) (pgx.Rows, context.CancelFunc, error) {
	ctx, cancel := context.WithTimeout(ch.t.Context(), 5*time.Second)
	if ch.conn == nil {
		conn, err := pgx.Connect(ctx, ch.cluster.DSN("postgres"))
		if err != nil {
			cancel()
			return nil, nil, err
		}
		ch.conn = conn
	}
	rows, err := ch.conn.Query(ctx, sql, args...)
	if err != nil {
		cancel()
		ch.close()
		return nil, nil, err
	}
	return rows, cancel, nil
}

// terminateRandomBackend terminates one of the pooler's server connections
// and reports whether there was one.
func (ch *chaos) terminateRandomBackend() bool {
	rows, cancel, err := ch.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = $1 AND backend_type = 'client backend' ORDER BY random() LIMIT 1`, ch.db)
	if err != nil {
		return false
	}
	defer cancel()
	done, err := pgx.CollectRows(rows, pgx.RowTo[bool])
	if err != nil {
		ch.close()
		return false
	}
	return len(done) == 1 && done[0]
}

// serverConns counts the pooler's server connections: the database's
// backends whose socket pgpoolx still holds open. pg_stat_activity alone
// also lists backends of connections pgpoolx has already closed, until
// each notices and exits; the kernel's TCP table alone also holds the
// short connections that carry CancelRequests. ok is false when
// PostgreSQL cannot be asked.
func (ch *chaos) serverConns() (n int, ok bool) {
	rows, cancel, err := ch.query(`SELECT client_port FROM pg_stat_activity
		WHERE datname = $1 AND backend_type = 'client backend'`, ch.db)
	if err != nil {
		return 0, false
	}
	defer cancel()
	ports, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		ch.close()
		return 0, false
	}
	open := ch.openSockets()
	for _, port := range ports {
		if open[fmt.Sprintf(":%04X", port)] {
			n++
		}
	}
	return n, true
}

// openSockets returns the local ports (as the kernel's TCP table writes
// them, ":1F90") of this network's sockets to the server that their side
// has not closed: connected, connecting, or closed by the server only.
func (ch *chaos) openSockets() map[string]bool {
	ch.t.Helper()
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		ch.t.Fatalf("counting server connections needs Linux's /proc/net/tcp: %v", err)
	}
	defer f.Close()
	if ch.tcp == nil {
		ch.tcp = make([]byte, 8<<20)
	}
	// One read returns the whole table; read in pieces while sockets come
	// and go, it may repeat or skip lines.
	n, err := io.ReadFull(f, ch.tcp)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		ch.t.Fatalf("read /proc/net/tcp: %d bytes, %v", n, err)
	}
	const (
		established = "01"
		synSent     = "02"
		closeWait   = "08"
	)
	server := fmt.Sprintf(":%04X", ch.cluster.Port())
	open := map[string]bool{}
	for line := range strings.Lines(string(ch.tcp[:n])) {
		// sl local_address rem_address st ...; addresses are hex IP:port.
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasSuffix(f[2], server) {
			continue
		}
		switch f[3] {
		case established, synSent, closeWait:
			open[f[1][strings.LastIndexByte(f[1], ':'):]] = true
		}
	}
	return open
}

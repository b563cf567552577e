package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
)

// needOpenFiles skips the test unless this process may have n files open.
// Go raises the soft RLIMIT_NOFILE to the hard limit when it starts, and
// so does pgpoolx; only the hard limit can stand in the way.
func needOpenFiles(t *testing.T, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatalf("getrlimit: %v", err)
	}
	if lim.Cur < n {
		t.Skipf("skipping: needs %d open files, but the limit is %d (hard limit %d); raise the hard limit (ulimit -Hn) to run it",
			n, lim.Cur, lim.Max)
	}
}

// pgpoolxProcess is the pgpoolx binary running as a process of its own.
type pgpoolxProcess struct {
	cmd    *exec.Cmd
	addr   string        // where it listens
	stderr *lockedBuffer // its log
	exited chan error    // receives Wait's result
}

// startPgpoolxProcess runs bin with the configuration yaml, which must
// listen on port 0 and log JSON at info level or below, and returns once
// it logs the address it listens on.
func startPgpoolxProcess(t *testing.T, bin, yaml string) *pgpoolxProcess {
	t.Helper()
	cmd := exec.Command(bin, "-config", writeFile(t, "pgpoolx.yaml", yaml))
	logs, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	pp := &pgpoolxProcess{cmd: cmd, stderr: &lockedBuffer{}, exited: make(chan error, 1)}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	listening := make(chan string, 1)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(logs)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			pp.stderr.Write(append(sc.Bytes(), '\n'))
			var entry struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &entry) == nil && entry.Msg == "listening" {
				listening <- entry.Addr
			}
		}
		io.Copy(pp.stderr, logs)
	}()
	go func() {
		<-copied // Wait closes the pipe; read it all first
		pp.exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-pp.exited
		}
		if t.Failed() {
			t.Logf("pgpoolx log (last 30 lines):\n%s", tailLines(pp.stderr.String(), 30))
		}
	})
	select {
	case pp.addr = <-listening:
	case err := <-pp.exited:
		t.Fatalf("pgpoolx exited before listening: %v\n%s", err, pp.stderr.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("pgpoolx logged no \"listening\" within 20s:\n%s", pp.stderr.String())
	}
	return pp
}

// rssKiB reads the resident set size of the process from /proc.
func (pp *pgpoolxProcess) rssKiB(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pp.cmd.Process.Pid))
	if err != nil {
		t.Fatalf("measuring pgpoolx's memory needs Linux's /proc: %v", err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kib, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				t.Fatalf("VmRSS line %q: %v", line, err)
			}
			return kib
		}
	}
	t.Fatal("no VmRSS in /proc/PID/status")
	return 0
}

// stop sends SIGTERM and checks that pgpoolx exits with status 0.
func (pp *pgpoolxProcess) stop(t *testing.T, within time.Duration) {
	t.Helper()
	if err := pp.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-pp.exited:
		if err != nil {
			t.Errorf("pgpoolx after SIGTERM: %v, want exit status 0", err)
		}
	case <-time.After(within):
		t.Fatalf("pgpoolx still running %s after SIGTERM", within)
	}
}

// rawLogin opens a client connection to addr the way a driver does, up to
// the first ReadyForQuery, and returns the socket.
func rawLogin(ctx context.Context, addr, db string) (net.Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	fe := pgproto3.NewFrontend(nc, nc)
	fe.Send(&pgproto3.StartupMessage{
		ProtocolVersion: pgproto3.ProtocolVersionNumber,
		Parameters:      map[string]string{"user": "postgres", "database": db},
	})
	if err := fe.Flush(); err != nil {
		nc.Close()
		return nil, err
	}
	if _, err := readReply(fe); err != nil {
		nc.Close()
		return nil, fmt.Errorf("login: %w", err)
	}
	nc.SetDeadline(time.Time{})
	return nc, nil
}

// readReply reads messages up to ReadyForQuery and returns the first
// column of the rows among them, or the error the server answered with.
func readReply(fe *pgproto3.Frontend) ([]string, error) {
	var firsts []string
	var failed error
	for {
		msg, err := fe.Receive()
		if err != nil {
			return nil, err
		}
		switch m := msg.(type) {
		case *pgproto3.DataRow:
			firsts = append(firsts, string(m.Values[0]))
		case *pgproto3.ErrorResponse:
			if failed == nil {
				failed = fmt.Errorf("%s %s: %s", m.Severity, m.Code, m.Message)
			}
		case *pgproto3.ReadyForQuery:
			return firsts, failed
		}
	}
}

// rawQuery runs a simple query on a connection rawLogin opened; see
// readReply for what it returns.
func rawQuery(nc net.Conn, sql string) ([]string, error) {
	fe := pgproto3.NewFrontend(nc, nc)
	fe.Send(&pgproto3.Query{String: sql})
	if err := fe.Flush(); err != nil {
		return nil, err
	}
	return readReply(fe)
}

// forEach runs f for 0..n-1 on workers goroutines and returns the first
// error.
func forEach(n, workers int, f func(i int) error) error {
	next := make(chan int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				if err := f(i); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	var err error
feed:
	for i := range n {
		select {
		case next <- i:
		case err = <-errs:
			break feed
		}
	}
	close(next)
	wg.Wait()
	close(errs)
	if err == nil {
		err = <-errs
	}
	return err
}

// busyClient runs transactions in a loop and counts them.
type busyClient struct {
	conn *pgx.Conn
	mu   sync.Mutex
	done int   // transactions committed
	err  error // the first error, after which it stops
}

// run increments counter k in a transaction, again and again, until stop
// is closed or a transaction fails.
func (b *busyClient) run(ctx context.Context, k int, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		err := pgx.BeginFunc(ctx, b.conn, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, "UPDATE counters SET n = n + 1 WHERE id = $1", k)
			return err
		})
		b.mu.Lock()
		if err != nil {
			b.err = err
		} else {
			b.done++
		}
		b.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// TestLimitsIdleClientsOnSmallPool connects 10,000 idle clients to a pool
// of 10 while 20 busy clients run transactions: the busy ones never see an
// error, and the idle ones stay connected and answer. pgpoolx runs as a
// process of its own so that its memory per idle client can be measured.
func TestLimitsIdleClientsOnSmallPool(t *testing.T) {
	const (
		idle     = 10000
		busy     = 20
		poolSize = 10
	)
	needOpenFiles(t, idle+busy+500)
	bin := buildPgpoolx(t, "limits-test")
	c := pg.Get(t)
	db := c.NewDatabase(t)
	ctx := t.Context()
	if err := c.Exec(ctx, db, fmt.Sprintf(
		"CREATE TABLE counters (id int PRIMARY KEY, n int NOT NULL); INSERT INTO counters SELECT i, 0 FROM generate_series(0, %d) i", busy-1)); err != nil {
		t.Fatal(err)
	}
	pp := startPgpoolxProcess(t, bin, fmt.Sprintf(`listen: 127.0.0.1:0
max_client_conn: %d
log:
  level: info
databases:
  %s:
    host: %s
    port: %d
    user: postgres
    pool_size: %d
`, idle+busy+10, db, c.Host(), c.Port(), poolSize))
	dsn := fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable", pp.addr, db)

	clients := make([]*busyClient, busy)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for k := range clients {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.WithoutCancel(ctx))
		clients[k] = &busyClient{conn: conn}
		wg.Go(func() { clients[k].run(ctx, k, stop) })
	}
	stopBusy := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopBusy()
	// snapshot returns each busy client's count and fails on an error.
	snapshot := func() []int {
		t.Helper()
		counts := make([]int, busy)
		for k, b := range clients {
			b.mu.Lock()
			n, err := b.done, b.err
			b.mu.Unlock()
			counts[k] = n
			if err != nil {
				t.Fatalf("busy client %d failed after %d transactions: %v", k, counts[k], err)
			}
		}
		return counts
	}
	// waitAll waits until every busy client has committed more than from.
	waitAll := func(what string, from []int, more int) {
		t.Helper()
		waitFor(t, what, 60*time.Second, func() bool {
			for k, n := range snapshot() {
				if n < from[k]+more {
					return false
				}
			}
			return true
		})
	}

	waitAll("each busy client to commit 20 transactions", make([]int, busy), 20)
	rssBefore := pp.rssKiB(t)
	start := time.Now()
	idleConns := make([]net.Conn, idle)
	defer func() {
		for _, nc := range idleConns {
			if nc != nil {
				nc.Close()
			}
		}
	}()
	err := forEach(idle, 50, func(i int) error {
		nc, err := rawLogin(ctx, pp.addr, db)
		if err != nil {
			return fmt.Errorf("idle client %d: %w", i, err)
		}
		idleConns[i] = nc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	connected := time.Since(start)
	rssAfter := pp.rssKiB(t)
	perClient := float64(rssAfter-rssBefore) / idle
	t.Logf("%d idle clients logged in within %s; pgpoolx RSS %d KiB before, %d KiB after: %.1f KiB per idle client",
		idle, connected.Round(time.Millisecond), rssBefore, rssAfter, perClient)
	// The goal of issue 7: an idle client holds no goroutine and no
	// buffers (the event loop waits for it), only its session state. About
	// 4.5 KiB were measured; 17 to 19 KiB with a goroutine per client.
	if perClient > 16 {
		t.Errorf("pgpoolx uses %.1f KiB per idle client, over 16 KiB", perClient)
	}

	// The busy clients go on working with every idle client connected.
	waitAll("each busy client to commit 50 more transactions with the idle clients connected", snapshot(), 50)
	stopBusy()
	final := snapshot()

	// The idle clients are alive: each one's query is answered.
	err = forEach(idle, 50, func(i int) error {
		idleConns[i].SetDeadline(time.Now().Add(30 * time.Second))
		if got, err := rawQuery(idleConns[i], "SELECT 1"); err != nil || !slices.Equal(got, []string{"1"}) {
			return fmt.Errorf("idle client %d: got %q, %v", i, got, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	var total int
	direct, err := pgx.Connect(ctx, c.DSN(db))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close(context.WithoutCancel(ctx))
	if err := direct.QueryRow(ctx, "SELECT sum(n) FROM counters").Scan(&total); err != nil {
		t.Fatal(err)
	}
	var sum int
	for _, n := range final {
		sum += n
	}
	if total != sum {
		t.Errorf("counters sum to %d, but the busy clients committed %d transactions", total, sum)
	}
	t.Logf("the busy clients committed %d transactions, between %d and %d each", sum, slices.Min(final), slices.Max(final))

	for _, nc := range idleConns {
		nc.Close()
	}
	pp.stop(t, 20*time.Second)
}

// silentSocket is a client connection that sends nothing.
type silentSocket struct {
	nc net.Conn
	// pgpoolx accepted the socket, and started its login timer, between
	// dialing and dialed.
	dialing, dialed time.Time
	// Set by the reader before ended is closed.
	closed time.Time // when pgpoolx closed it
	got    []byte    // what pgpoolx sent before closing, if anything
	err    error     // what ended the read
	ended  chan struct{}
}

// silentFlood opens n sockets to addr that send nothing, and reads each
// until it ends or until 30s after it connected. The sockets are closed
// when the test ends.
func silentFlood(t *testing.T, addr string, n int) []*silentSocket {
	t.Helper()
	sockets := make([]*silentSocket, n)
	t.Cleanup(func() {
		for _, s := range sockets {
			if s != nil {
				s.nc.Close()
			}
		}
	})
	err := forEach(n, 200, func(i int) error {
		dialing := time.Now()
		nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			return fmt.Errorf("silent socket %d: %w", i, err)
		}
		sockets[i] = &silentSocket{nc: nc, dialing: dialing, dialed: time.Now(), ended: make(chan struct{})}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sockets {
		go func() {
			defer close(s.ended)
			s.nc.SetReadDeadline(s.dialed.Add(30 * time.Second))
			buf := make([]byte, 512)
			for {
				n, err := s.nc.Read(buf)
				s.got = append(s.got, buf[:n]...)
				if err != nil {
					s.closed, s.err = time.Now(), err
					return
				}
			}
		}()
	}
	return sockets
}

// TestFloodOfSilentSockets opens 2,000 sockets that send nothing: real
// clients connect and work among them, and pgpoolx closes every one once
// client_login_timeout has passed, not before. Each on a pooler of its
// own: with a long timeout the flood surely lasts while the real clients
// work, however slow the machine.
func TestFloodOfSilentSockets(t *testing.T) {
	const flood = 2000
	// Both ends of each socket are in this process.
	needOpenFiles(t, 2*flood+500)

	t.Run("real clients work during the flood", func(t *testing.T) {
		const realClients = 10
		p := startPooler(t, "client_login_timeout: 1h", "pool_size: 4")
		ctx := t.Context()
		sockets := silentFlood(t, p.addr, flood)
		start := time.Now()
		err := forEach(realClients, realClients, func(i int) error {
			conn, err := pgx.Connect(ctx, p.dsn(""))
			if err != nil {
				return fmt.Errorf("real client %d: %w", i, err)
			}
			defer conn.Close(ctx)
			for q := range 10 {
				var n int
				if err := conn.QueryRow(ctx, "SELECT $1::int", q).Scan(&n); err != nil || n != q {
					return fmt.Errorf("real client %d, query %d: got %d, %v", i, q, n, err)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%d real clients logged in and ran 10 queries each in %s among %d silent sockets",
			realClients, time.Since(start).Round(time.Millisecond), flood)
		for i, s := range sockets {
			select {
			case <-s.ended:
				// Only the reader's own deadline may have ended it.
				if ne := net.Error(nil); !errors.As(s.err, &ne) || !ne.Timeout() {
					t.Fatalf("silent socket %d closed while the real clients worked: %v", i, s.err)
				}
			default:
			}
		}
	})

	t.Run("the flood is closed after client_login_timeout", func(t *testing.T) {
		const loginTimeout = 2 * time.Second
		p := startPooler(t, fmt.Sprintf("client_login_timeout: %s", loginTimeout), "pool_size: 4")
		sockets := silentFlood(t, p.addr, flood)
		var lifetimes []time.Duration
		answered := 0
		for i, s := range sockets {
			<-s.ended
			life := s.closed.Sub(s.dialed)
			lifetimes = append(lifetimes, life)
			var ne net.Error
			switch {
			case errors.As(s.err, &ne) && ne.Timeout():
				t.Fatalf("silent socket %d still open %s after it connected", i, life.Round(time.Millisecond))
			case !errors.Is(s.err, io.EOF) && !errors.Is(s.err, syscall.ECONNRESET):
				t.Errorf("silent socket %d: read ended with %v, want EOF or a reset", i, s.err)
			}
			if early := s.closed.Sub(s.dialing); early < loginTimeout {
				t.Errorf("silent socket %d closed %s after it started to connect, before client_login_timeout (%s)", i, early, loginTimeout)
			}
			if len(s.got) > 0 {
				answered++
				if s.got[0] != 'E' {
					t.Errorf("silent socket %d got %q before the close, which is not an ErrorResponse", i, s.got)
				}
			}
		}
		slices.Sort(lifetimes)
		t.Logf("%d silent sockets closed after %s (fastest), %s (median), %s (slowest) with client_login_timeout %s; %d got an ErrorResponse first",
			flood, lifetimes[0].Round(time.Millisecond), lifetimes[flood/2].Round(time.Millisecond),
			lifetimes[flood-1].Round(time.Millisecond), loginTimeout, answered)
		for _, s := range sockets {
			if len(s.got) > 0 {
				t.Logf("for example: %q", s.got)
				break
			}
		}
	})
}

// Package pool keeps server connections for one (database, user) pair:
// dialed on demand up to a size, handed out LIFO, waited for FIFO, and
// destroyed rather than reused whenever they are not clean and idle.
// It knows nothing of clients.
package pool

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/zap"

	"github.com/pgpoolx/pgpoolx/initquery"
	"github.com/pgpoolx/pgpoolx/wire"
)

// Options say where the server is and how the pool behaves.
type Options struct {
	Host     string
	Port     int
	DBName   string
	User     string
	Password string // empty: none (or from the environment's passfile)

	Size           int
	InitQuery      string
	ConnectTimeout time.Duration // dial, authenticate and run the init query
	AcquireTimeout time.Duration // how long Acquire waits for a free connection
	IdleTimeout    time.Duration // close connections idle longer (0: never)
	Lifetime       time.Duration // close connections older, once idle (0: never)
	// StatementCacheSize bounds the statements prepared per connection.
	StatementCacheSize int
}

// ErrAcquireTimeout is returned when no connection became free in time.
var ErrAcquireTimeout = errors.New("timed out waiting for a server connection")

// ErrWouldWait is returned by TryAcquire when no connection is free now.
var ErrWouldWait = errors.New("no server connection free now")

// ErrClosed is returned by a pool that has been closed.
var ErrClosed = errors.New("pool is closed")

// DialError is a failure to open a new server connection. Err may wrap a
// *pgconn.PgError with the server's own SQLSTATE.
type DialError struct {
	Err     error
	InInit  bool // the connection opened but the init query failed
	Retried bool // this error is a recent failure repeated, not a new attempt
}

func (e *DialError) Error() string {
	if e.InInit {
		return "init query failed: " + e.Err.Error()
	}
	return "cannot connect to the server: " + e.Err.Error()
}

func (e *DialError) Unwrap() error { return e.Err }

// Stat is a snapshot of a pool's counters.
type Stat struct {
	Total   int // open connections plus those being dialed
	Idle    int
	Waiting int
	// PreparedStatements counts the statements prepared on the pool's
	// connections, each bounded by the statement cache size.
	PreparedStatements int
}

type waiter struct {
	ready chan struct{} // closed when conn or retry is set
	conn  *Conn
	err   error
}

// Pool is the set of server connections for one (database, user) pair.
type Pool struct {
	opts Options
	log  *zap.Logger

	// prepared counts the statements prepared on all its connections.
	prepared atomic.Int64

	mu      sync.Mutex
	idle    []*Conn // LIFO: the warmest connection is used first
	total   int
	waiters []*waiter // FIFO
	closed  bool
	// After a failed dial, new dials wait until retryAt and fail fast with
	// lastErr meanwhile, so a broken server or init query is not hammered.
	params   map[string]string // reported parameters of the newest connection, at baseline
	baseline map[string]string // its settings after the init query
	lastErr  *DialError
	retryAt  time.Time
	backoff  time.Duration
}

// New returns an empty pool; connections are dialed on demand.
func New(opts Options, log *zap.Logger) *Pool {
	return &Pool{opts: opts, log: log}
}

// Options returns the options the pool was made with.
func (p *Pool) Options() Options { return p.opts }

// Acquire returns an idle connection, dials a new one while the pool is
// below its size, or waits (first come, first served) for one to be
// released, up to the acquire timeout.
func (p *Pool) Acquire(ctx context.Context) (*Conn, error) { return p.acquire(ctx, true) }

// TryAcquire is Acquire without the waiting: it returns ErrWouldWait when
// every connection is in use and the pool is full.
func (p *Pool) TryAcquire(ctx context.Context) (*Conn, error) { return p.acquire(ctx, false) }

func (p *Pool) acquire(ctx context.Context, wait bool) (*Conn, error) {
	var timeout <-chan time.Time
	if wait && p.opts.AcquireTimeout > 0 {
		t := time.NewTimer(p.opts.AcquireTimeout)
		defer t.Stop()
		timeout = t.C
	}
	timedOut := false
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, ErrClosed
		}
		if n := len(p.idle); n > 0 {
			c := p.idle[n-1]
			p.idle = p.idle[:n-1]
			p.mu.Unlock()
			if reason := p.unusable(c); reason != "" {
				p.destroy(c, reason)
				continue
			}
			return c, nil
		}
		if p.total < p.opts.Size {
			if p.lastErr != nil && time.Now().Before(p.retryAt) {
				err := *p.lastErr
				err.Retried = true
				p.mu.Unlock()
				return nil, &err
			}
			p.total++
			p.mu.Unlock()
			return p.dial(ctx)
		}
		if !wait || timedOut {
			// timedOut: a free slot came just as time ran out, and a
			// newcomer took it; the timer will not fire again.
			p.mu.Unlock()
			if timedOut {
				return nil, ErrAcquireTimeout
			}
			return nil, ErrWouldWait
		}
		w := &waiter{ready: make(chan struct{})}
		p.waiters = append(p.waiters, w)
		p.mu.Unlock()

		select {
		case <-w.ready:
		case <-ctx.Done():
			if p.abandon(w) {
				return nil, ctx.Err()
			}
			<-w.ready
			switch {
			case w.conn != nil:
				p.Release(w.conn)
			case w.err == nil:
				// A free slot was meant for this waiter: pass it on.
				p.mu.Lock()
				p.wakeLocked(nil, nil)
				p.mu.Unlock()
			}
			return nil, ctx.Err()
		case <-timeout:
			if p.abandon(w) {
				return nil, ErrAcquireTimeout
			}
			<-w.ready // handed something just now: take it
			timedOut = true
		}
		if w.conn != nil || w.err != nil {
			return w.conn, w.err
		}
		// A slot opened up: go round and dial.
	}
}

// abandon takes w out of the queue; false if it was already served.
func (p *Pool) abandon(w *waiter) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if i := slices.Index(p.waiters, w); i >= 0 {
		p.waiters = slices.Delete(p.waiters, i, i+1)
		return true
	}
	return false
}

// wakeLocked serves the first waiter with c, err, or a free slot (both nil).
func (p *Pool) wakeLocked(c *Conn, err error) bool {
	if len(p.waiters) == 0 {
		return false
	}
	w := p.waiters[0]
	p.waiters = slices.Delete(p.waiters, 0, 1)
	w.conn, w.err = c, err
	close(w.ready)
	return true
}

// Release gives back a connection that is idle, outside any transaction
// and clean of client state. Anything else must go through Destroy.
func (p *Pool) Release(c *Conn) {
	c.lastUsed = time.Now()
	if p.opts.Lifetime > 0 && c.lastUsed.Sub(c.created) > p.opts.Lifetime {
		p.destroy(c, "lifetime")
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.destroy(c, "pool closed")
		return
	}
	if !p.wakeLocked(c, nil) {
		p.idle = append(p.idle, c)
	}
	p.mu.Unlock()
}

// Destroy closes a connection that must not be reused and frees its slot.
func (p *Pool) Destroy(c *Conn, reason string) { p.destroy(c, reason) }

func (p *Pool) destroy(c *Conn, reason string) {
	c.netConn.Close()
	c.Prepared.Clear()
	p.log.Debug("server connection closed", zap.Uint32("server_pid", c.PID), zap.String("reason", reason))
	p.mu.Lock()
	p.total--
	p.wakeLocked(nil, nil)
	p.mu.Unlock()
}

// unusable says why an idle connection must not be handed out, or "".
func (p *Pool) unusable(c *Conn) string {
	if p.opts.Lifetime > 0 && time.Since(c.created) > p.opts.Lifetime {
		return "lifetime"
	}
	// An idle server says nothing. Bytes or EOF waiting on the socket mean
	// it was terminated (pg_terminate_backend, restart) while it sat here.
	if c.R.Buffered() > 0 || !socketQuiet(c.netConn) {
		return "server closed the connection while idle"
	}
	return ""
}

// CloseIdle closes idle connections unused for longer than the idle
// timeout and returns how many it closed.
func (p *Pool) CloseIdle(now time.Time) int {
	if p.opts.IdleTimeout <= 0 {
		return 0
	}
	p.mu.Lock()
	var old []*Conn
	kept := p.idle[:0]
	for _, c := range p.idle {
		if now.Sub(c.lastUsed) > p.opts.IdleTimeout {
			old = append(old, c)
		} else {
			kept = append(kept, c)
		}
	}
	clear(p.idle[len(kept):])
	p.idle = kept
	p.mu.Unlock()
	for _, c := range old {
		p.destroy(c, "idle timeout")
	}
	return len(old)
}

// Close closes idle connections, fails waiters, and makes every later
// Release close its connection.
func (p *Pool) Close() {
	p.mu.Lock()
	p.closed = true
	idle := p.idle
	p.idle = nil
	for p.wakeLocked(nil, ErrClosed) {
	}
	p.mu.Unlock()
	for _, c := range idle {
		p.destroy(c, "pool closed")
	}
}

// Baseline returns the settings and reported parameters of the newest
// connection right after its init query, or nils before the first one.
// The maps must not be modified.
func (p *Pool) Baseline() (settings, params map[string]string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.baseline, p.params
}

// Stat returns the pool's counters.
func (p *Pool) Stat() Stat {
	p.mu.Lock()
	defer p.mu.Unlock()
	return Stat{Total: p.total, Idle: len(p.idle), Waiting: len(p.waiters), PreparedStatements: int(p.prepared.Load())}
}

// dial opens a connection in a slot already counted in total.
func (p *Pool) dial(ctx context.Context) (*Conn, error) {
	start := time.Now()
	c, err := p.connect(ctx)
	if err != nil {
		var derr *DialError
		if !errors.As(err, &derr) {
			derr = &DialError{Err: err}
		}
		p.mu.Lock()
		p.total--
		p.lastErr = derr
		p.backoff = min(max(2*p.backoff, 250*time.Millisecond), 5*time.Second)
		p.retryAt = time.Now().Add(p.backoff)
		// Everyone queued now would fail the same way: tell them.
		for p.wakeLocked(nil, derr) {
		}
		p.mu.Unlock()
		if derr.InInit {
			p.log.Error("init query failed", zap.Error(derr.Err), zap.Duration("retry_in", p.backoff))
		} else {
			p.log.Warn("server connect failed", zap.Error(derr.Err), zap.Duration("retry_in", p.backoff))
		}
		return nil, derr
	}
	p.mu.Lock()
	p.lastErr, p.backoff = nil, 0
	p.params = maps.Clone(c.Params)
	p.baseline = c.Baseline
	p.mu.Unlock()
	p.log.Debug("server connection opened", zap.Uint32("server_pid", c.PID), zap.Duration("duration", time.Since(start)))
	return c, nil
}

func (p *Pool) connect(ctx context.Context) (*Conn, error) {
	if p.opts.ConnectTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.opts.ConnectTimeout)
		defer cancel()
	}
	cfg, err := pgconn.ParseConfig(connString(p.opts))
	if err != nil {
		return nil, err
	}
	if p.opts.Password != "" {
		cfg.Password = p.opts.Password
	}
	pc, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	baseline, err := initquery.Run(ctx, pc, p.opts.InitQuery)
	if err != nil {
		pc.Close(ctx)
		return nil, &DialError{Err: err, InInit: true}
	}
	if err := pc.SyncConn(ctx); err != nil {
		pc.Close(ctx)
		return nil, err
	}
	hc, err := pc.Hijack()
	if err != nil {
		pc.Close(ctx)
		return nil, err
	}
	now := time.Now()
	br := bufio.NewReaderSize(hc.Conn, 16<<10)
	return &Conn{
		netConn: hc.Conn,

		R:         wire.NewReader(br, 0),
		W:         bufio.NewWriterSize(hc.Conn, 16<<10),
		PID:       hc.PID,
		SecretKey: hc.SecretKey,
		Params:    hc.ParameterStatuses,
		Current:   baseline,
		Prepared:  NewStatements(p.opts.StatementCacheSize, &p.prepared),
		Baseline:  baseline,
		pool:      p,
		created:   now,
		lastUsed:  now,
	}, nil
}

// connString builds a keyword/value connection string with quoted values.
func connString(o Options) string {
	kv := []string{
		"host", o.Host,
		"port", strconv.Itoa(o.Port),
		"dbname", o.DBName,
		"user", o.User,
		"sslmode", "prefer",
	}
	var b strings.Builder
	for i := 0; i < len(kv); i += 2 {
		v := strings.ReplaceAll(strings.ReplaceAll(kv[i+1], `\`, `\\`), `'`, `\'`)
		fmt.Fprintf(&b, "%s='%s' ", kv[i], v)
	}
	return b.String()
}

// DialCancel sends a CancelRequest for (pid, key) to the server at addr and
// waits until the server has taken it (it closes the connection).
func DialCancel(ctx context.Context, addr net.Addr, pid uint32, key []byte) error {
	var d net.Dialer
	nc, err := d.DialContext(ctx, addr.Network(), addr.String())
	if err != nil {
		return err
	}
	defer nc.Close()
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	}
	buf := make([]byte, 0, 12+len(key))
	buf = append(buf, 0, 0, 0, byte(12+len(key)))
	buf = append(buf, 0x04, 0xd2, 0x16, 0x2e) // 80877102
	buf = append(buf, byte(pid>>24), byte(pid>>16), byte(pid>>8), byte(pid))
	buf = append(buf, key...)
	if _, err := nc.Write(buf); err != nil {
		return err
	}
	// The postmaster signals the backend, then closes: wait for that, so
	// the server connection is not handed on while the signal is in flight.
	var one [1]byte
	nc.Read(one[:])
	return nil
}

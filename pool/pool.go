// Package pool keeps server connections for one (database, user) pair:
// dialed on demand up to a size, handed out LIFO, waited for FIFO, and
// destroyed rather than reused whenever they are not clean and idle.
// It knows nothing of clients.
package pool

import (
	"bufio"
	"context"
	"errors"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgpassfile"
	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/zap"

	"github.com/pgpoolx/pgpoolx/initquery"
	"github.com/pgpoolx/pgpoolx/pgdial"
	"github.com/pgpoolx/pgpoolx/wire"
)

// Options say where the server is and how the pool behaves.
type Options struct {
	Host     string
	Port     int
	DBName   string
	User     string
	Password string // empty: credentials learned at run time, or the passfile
	// SSLMode and SSLRootCert are libpq's sslmode and sslrootcert.
	SSLMode     string
	SSLRootCert string

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
	Dialing int // being dialed or running the init query
	Waiting int
	// MaxWait is how long the longest-waiting Acquire has waited.
	MaxWait time.Duration
	// PreparedStatements counts the statements prepared on the pool's
	// connections, each bounded by the statement cache size.
	PreparedStatements int
	// InitFailures counts new connections whose init query failed.
	InitFailures uint64
	Paused       bool
}

type waiter struct {
	// notify, when set, is called (under the pool's lock) instead of the
	// waiter waiting on ready, which is nil: the waiter of an event loop
	// (Wait), which learns the outcome from conn and err.
	notify   func()
	since    time.Time
	fromIdle bool          // conn was handed over from the idle list (Resume), not by Release
	ready    chan struct{} // closed when conn or retry is set
	conn     *Conn
	err      error
}

// Pool is the set of server connections for one (database, user) pair.
type Pool struct {
	log *zap.Logger
	// Adopt, if set before first use, may replace each new TCP connection
	// with its own (an event loop's) as soon as it is made, before TLS and
	// the startup; nil keeps it.
	Adopt func(net.Conn) net.Conn

	// prepared counts the statements prepared on all its connections.
	prepared     atomic.Int64
	initFailures atomic.Uint64

	mu      sync.Mutex
	opts    Options
	idle    []*Conn // LIFO: the warmest connection is used first
	total   int
	dialing int
	waiters waitQueue
	closed  bool
	// paused: connections are neither handed out nor dialed; Acquire waits.
	paused bool
	creds  *pgdial.Credentials // see SetCredentials
	// gen is the generation of the options; a connection of an older one
	// is closed instead of reused.
	gen uint64
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

// Options returns the pool's options.
func (p *Pool) Options() Options {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.opts
}

// SetOptions changes the pool's options. When what a connection is (its
// server, user, password or init query) changes, the connections opened
// before are closed: the idle ones now, the others when released. A larger
// size serves waiters at once; a smaller one takes effect as connections
// are released.
func (p *Pool) SetOptions(opts Options) {
	p.mu.Lock()
	old := p.opts
	p.opts = opts
	var retired []*Conn
	if connIdentity(old) != connIdentity(opts) {
		retired = p.retireLocked()
	}
	p.wakeForSlotsLocked()
	p.mu.Unlock()
	p.destroyAll(retired, "configuration changed")
}

// SetCredentials gives the pool credentials learned at run time (an
// auth.query user's md5 hash or SCRAM pass-through keys), used for new
// connections when Options has no password. Open connections are kept.
func (p *Pool) SetCredentials(c *pgdial.Credentials) {
	p.mu.Lock()
	p.creds = c
	p.mu.Unlock()
}

// Reconnect closes every connection once it is idle: the idle ones now,
// those in use when released. New ones are dialed as needed.
func (p *Pool) Reconnect() {
	p.mu.Lock()
	retired := p.retireLocked()
	p.mu.Unlock()
	p.destroyAll(retired, "reconnect")
}

// retireLocked starts a new generation and takes the idle connections out.
func (p *Pool) retireLocked() []*Conn {
	p.gen++
	idle := p.idle
	p.idle = nil
	return idle
}

func (p *Pool) destroyAll(conns []*Conn, reason string) {
	for _, c := range conns {
		p.destroy(c, reason)
	}
}

// connIdentity is what makes two connections interchangeable.
type identity struct {
	host, dbname, user, password, initQuery, sslMode, sslRootCert string
	port                                                          int
}

func connIdentity(o Options) identity {
	return identity{o.Host, o.DBName, o.User, o.Password, o.InitQuery, o.SSLMode, o.SSLRootCert, o.Port}
}

// Pause stops handing out and dialing connections: Acquire waits (within
// its timeout) until Resume. Connections in use stay with their clients.
func (p *Pool) Pause() {
	p.mu.Lock()
	p.paused = true
	p.mu.Unlock()
}

// Resume ends a pause and serves the waiters.
func (p *Pool) Resume() {
	p.mu.Lock()
	p.paused = false
	for p.waiters.len() > 0 && len(p.idle) > 0 {
		c := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		p.waiters.front().fromIdle = true // the waiter checks it is still alive
		p.wakeLocked(c, nil)
	}
	p.wakeForSlotsLocked()
	p.mu.Unlock()
}

// wakeForSlotsLocked wakes as many waiters as there are free slots; each
// goes round and dials (or finds it was taken, and waits again).
func (p *Pool) wakeForSlotsLocked() {
	for free := p.opts.Size - p.total; free > 0 && !p.paused && p.wakeLocked(nil, nil); free-- {
	}
}

// CloseAllIdle closes every idle connection now and returns how many.
func (p *Pool) CloseAllIdle() int {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	p.destroyAll(idle, "closed by admin")
	return len(idle)
}

// DialFailure returns the last failure to open a connection while new
// dials are still held back by it, or nil.
func (p *Pool) DialFailure() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lastErr != nil && time.Now().Before(p.retryAt) {
		return p.lastErr
	}
	return nil
}

// InUse counts the connections lent out (not idle, not being dialed).
func (p *Pool) InUse() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.total - len(p.idle) - p.dialing
}

// Idle returns the idle connections, for reporting only: they may be
// handed out or closed as soon as it returns.
func (p *Pool) Idle() []*Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.idle)
}

// Acquire returns an idle connection, dials a new one while the pool is
// below its size, or waits (first come, first served) for one to be
// released, up to the acquire timeout.
func (p *Pool) Acquire(ctx context.Context) (*Conn, error) { return p.acquire(ctx, true) }

// TryAcquire is Acquire without the waiting: it returns ErrWouldWait when
// every connection is in use and the pool is full.
func (p *Pool) TryAcquire(ctx context.Context) (*Conn, error) { return p.acquire(ctx, false) }

func (p *Pool) acquire(ctx context.Context, wait bool) (*Conn, error) {
	// The timer is made only when the first wait begins: most acquires
	// find an idle connection and need none.
	var timeout <-chan time.Time
	timedOut := false
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, ErrClosed
		}
		if len(p.idle) > 0 && !p.paused {
			if c := p.popIdleLocked(); c != nil {
				return c, nil
			}
			continue
		}
		if p.total < p.opts.Size && !p.paused {
			if p.lastErr != nil && time.Now().Before(p.retryAt) {
				err := *p.lastErr
				err.Retried = true
				p.mu.Unlock()
				return nil, &err
			}
			p.total++
			p.dialing++
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
		if timeout == nil && p.opts.AcquireTimeout > 0 {
			t := time.NewTimer(p.opts.AcquireTimeout)
			defer t.Stop()
			timeout = t.C
		}
		w := &waiter{since: time.Now(), ready: make(chan struct{})}
		p.waiters.push(w)
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
		if w.err != nil {
			return nil, w.err
		}
		if w.conn != nil {
			// One handed over by Release was in use a moment ago; one
			// handed over at Resume sat idle and may have died meanwhile.
			// Its slot is passed on by destroy.
			if w.fromIdle {
				if reason := p.unusable(w.conn, p.Options().Lifetime); reason != "" {
					p.destroy(w.conn, reason)
					continue
				}
			}
			return w.conn, nil
		}
		// A slot opened up: go round and dial.
	}
}

// Take is Acquire for an event loop, which must never wait: it returns an
// idle connection, or ErrWouldWait when every connection is busy, or
// ErrMustDial when a new one would have to be dialed (Acquire does that),
// or why the pool cannot serve now.
func (p *Pool) Take() (*Conn, error) {
	for {
		p.mu.Lock()
		switch {
		case p.closed:
			p.mu.Unlock()
			return nil, ErrClosed
		case p.paused:
			p.mu.Unlock()
			return nil, ErrMustDial
		}
		n := len(p.idle)
		if n == 0 || p.waiters.len() > 0 {
			full := p.total >= p.opts.Size
			p.mu.Unlock()
			if full {
				return nil, ErrWouldWait
			}
			return nil, ErrMustDial
		}
		if c := p.popIdleLocked(); c != nil {
			return c, nil
		}
	}
}

// popIdleLocked takes the warmest idle connection and unlocks p.mu. It
// returns nil when that one was found dead or too old (and destroyed).
func (p *Pool) popIdleLocked() *Conn {
	n := len(p.idle)
	c := p.idle[n-1]
	p.idle = p.idle[:n-1]
	lifetime := p.opts.Lifetime
	p.mu.Unlock()
	if reason := p.unusable(c, lifetime); reason != "" {
		p.destroy(c, reason)
		return nil
	}
	return c
}

// ErrMustDial is Take's answer when only Acquire can serve.
var ErrMustDial = errors.New("pool: a connection must be dialed or waited for in order")

// A Wait is a place in the queue for an event loop's client, which must
// not block. One Wait serves its client's waits one after the other, so
// waiting allocates nothing.
type Wait struct {
	p        *Pool
	w        waiter // w.notify is the Wait's notify
	t        *time.Timer
	armed    bool      // t will fire; guarded by p.mu
	deadline time.Time // of the wait under way; zero: none
}

// NewWait returns a Wait whose notify is called (by whichever goroutine
// releases a connection, or when acquire_timeout passes; it must not
// block) each time a wait it began ends; Result then tells the outcome.
func (p *Pool) NewWait(notify func()) *Wait {
	wt := &Wait{p: p}
	wt.w.notify = notify
	return wt
}

// Begin queues for the next connection released, like Acquire, without
// blocking; now is the time the wait starts.
func (wt *Wait) Begin(now time.Time) error {
	p := wt.p
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	wt.w = waiter{notify: wt.w.notify, since: now}
	p.waiters.push(&wt.w)
	timeout := p.opts.AcquireTimeout
	wt.deadline = time.Time{}
	if timeout > 0 {
		wt.deadline = now.Add(timeout)
	}
	// A timer still armed from an earlier wait fires before this deadline
	// and arms itself again for the rest: resetting a timer at every wait
	// costs more than that one extra firing.
	arm := timeout > 0 && !wt.armed
	wt.armed = wt.armed || arm
	p.mu.Unlock()
	if !arm {
		return nil
	}
	if wt.t == nil {
		wt.t = time.AfterFunc(timeout, wt.expire)
	} else {
		wt.t.Reset(timeout)
	}
	return nil
}

// expire ends the wait under way if its deadline has passed; a timer left
// over from an earlier wait finds it has not and arms itself again.
func (wt *Wait) expire() {
	p := wt.p
	p.mu.Lock()
	wt.armed = false
	if wt.deadline.IsZero() {
		p.mu.Unlock()
		return
	}
	if left := time.Until(wt.deadline); left > 0 {
		wt.armed = true
		p.mu.Unlock()
		wt.t.Reset(left)
		return
	}
	if !p.waiters.remove(&wt.w) {
		p.mu.Unlock() // served just now: Result tells
		return
	}
	wt.w.err = ErrAcquireTimeout
	p.mu.Unlock()
	wt.w.notify()
}

// Result returns what the wait brought once notify was called: a
// connection, an error, or neither (a free slot: dial with Acquire).
func (wt *Wait) Result() (*Conn, error) {
	p := wt.p
	p.mu.Lock()
	w := wt.w
	wt.w.conn = nil
	wt.deadline = time.Time{}
	p.mu.Unlock()
	if w.conn != nil && w.fromIdle {
		if reason := p.unusable(w.conn, p.Options().Lifetime); reason != "" {
			p.destroy(w.conn, reason)
			return nil, nil
		}
	}
	return w.conn, w.err
}

// abandon takes w out of the queue; false if it was already served.
func (p *Pool) abandon(w *waiter) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waiters.remove(w)
}

// wakeLocked serves the first waiter with c, err, or a free slot (both nil).
func (p *Pool) wakeLocked(c *Conn, err error) bool {
	w := p.waiters.pop()
	if w == nil {
		return false
	}
	w.conn, w.err = c, err
	if w.notify != nil {
		w.notify()
	} else {
		close(w.ready)
	}
	return true
}

// Release gives back a connection that is idle, outside any transaction
// and clean of client state. Anything else must go through Destroy.
func (p *Pool) Release(c *Conn) {
	c.lastUsed = time.Now()
	p.mu.Lock()
	var reason string
	switch {
	case p.closed:
		reason = "pool closed"
	case c.gen != p.gen:
		reason = "configuration changed"
	case p.total > p.opts.Size:
		reason = "pool size reduced"
	case p.opts.Lifetime > 0 && c.lastUsed.Sub(c.created) > p.opts.Lifetime:
		reason = "lifetime"
	}
	if reason != "" {
		p.mu.Unlock()
		p.destroy(c, reason)
		return
	}
	if p.paused || !p.wakeLocked(c, nil) {
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
func (p *Pool) unusable(c *Conn, lifetime time.Duration) string {
	if lifetime > 0 && time.Since(c.created) > lifetime {
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
	p.mu.Lock()
	if p.opts.IdleTimeout <= 0 {
		p.mu.Unlock()
		return 0
	}
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
	st := Stat{
		Total:              p.total,
		Idle:               len(p.idle),
		Dialing:            p.dialing,
		Waiting:            p.waiters.len(),
		PreparedStatements: int(p.prepared.Load()),
		InitFailures:       p.initFailures.Load(),
		Paused:             p.paused,
	}
	if p.waiters.len() > 0 {
		st.MaxWait = time.Since(p.waiters.front().since)
	}
	return st
}

// dial opens a connection in a slot already counted in total.
func (p *Pool) dial(ctx context.Context) (*Conn, error) {
	start := time.Now()
	p.mu.Lock()
	opts, gen, creds := p.opts, p.gen, p.creds
	p.mu.Unlock()
	c, err := p.connect(ctx, opts, creds)
	p.mu.Lock()
	p.dialing--
	p.mu.Unlock()
	if err != nil {
		var derr *DialError
		if !errors.As(err, &derr) {
			derr = &DialError{Err: err}
		}
		p.mu.Lock()
		p.total--
		p.lastErr = derr
		// Dials that fail together (a restart, say) are one failure: the
		// back-off grows once per window, not once per dial, so that a
		// short outage is not followed by seconds of refusals.
		now := time.Now()
		newWindow := !now.Before(p.retryAt)
		if newWindow {
			p.backoff = min(max(2*p.backoff, 250*time.Millisecond), 5*time.Second)
			p.retryAt = now.Add(p.backoff)
		}
		backoff := p.backoff
		// Everyone queued now would fail the same way: tell them.
		for p.wakeLocked(nil, derr) {
		}
		p.mu.Unlock()
		if derr.InInit {
			p.initFailures.Add(1)
		}
		switch {
		case !newWindow:
			// Logged with the failure that opened the window.
		case derr.InInit:
			p.log.Error("init query failed", zap.Error(derr.Err), zap.Duration("retry_in", backoff))
		default:
			p.log.Warn("server connect failed", zap.Error(derr.Err), zap.Duration("retry_in", backoff))
		}
		return nil, derr
	}
	c.gen = gen
	p.mu.Lock()
	p.lastErr, p.backoff, p.retryAt = nil, 0, time.Time{}
	p.params = maps.Clone(c.Params)
	p.baseline = c.Baseline
	p.mu.Unlock()
	p.log.Debug("server connection opened", zap.Uint32("server_pid", c.PID), zap.Duration("duration", time.Since(start)))
	return c, nil
}

func (p *Pool) connect(ctx context.Context, opts Options, creds *pgdial.Credentials) (*Conn, error) {
	dc, err := pgdial.Dial(ctx, pgdial.Config{
		Host:        opts.Host,
		Port:        opts.Port,
		Database:    opts.DBName,
		User:        opts.User,
		Credentials: credentials(opts, creds),
		SSLMode:     pgdial.SSLMode(opts.SSLMode),
		SSLRootCert: opts.SSLRootCert,
		Timeout:     opts.ConnectTimeout,
		Wrap:        p.Adopt,
	})
	if err != nil {
		return nil, err
	}
	now := time.Now()
	nc, br := dc.NetConn, dc.Reader
	c := &Conn{
		netConn:   nc,
		R:         wire.NewReader(br, 0),
		W:         bufio.NewWriterSize(nc, 16<<10),
		PID:       dc.PID,
		SecretKey: dc.SecretKey,
		Params:    dc.Params,
		pool:      p,
		created:   now,
		lastUsed:  now,
	}
	if opts.ConnectTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.ConnectTimeout)
		defer cancel()
	}
	baseline, err := initquery.Run(ctx, c, opts.InitQuery)
	if err != nil {
		c.netConn.Close()
		var se *ServerError
		if errors.As(err, &se) {
			// The server's own words and SQLSTATE, as for a failed login.
			f := se.Fields
			err = &pgconn.PgError{Severity: f.Severity, Code: f.Code, Message: f.Message, Detail: f.Detail, Hint: f.Hint}
		} else if errors.Is(err, ErrNotIdle) {
			err = initquery.ErrOpenTransaction
		}
		return nil, &DialError{Err: err, InInit: true}
	}
	c.Current, c.Baseline = baseline, baseline
	c.Prepared = NewStatements(opts.StatementCacheSize, &p.prepared)
	return c, nil
}

// credentials are what the pool logs in with: the configured password, or
// else credentials learned at run time, or else the passfile's password.
func credentials(opts Options, creds *pgdial.Credentials) pgdial.Credentials {
	switch {
	case opts.Password != "":
		return pgdial.Credentials{Password: opts.Password}
	case creds != nil:
		return *creds
	}
	return pgdial.Credentials{Password: passfilePassword(opts)}
}

// passfilePassword looks the password up in PGPASSFILE or ~/.pgpass, as
// libpq does, or returns "".
func passfilePassword(opts Options) string {
	path := os.Getenv("PGPASSFILE")
	if path == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		path = filepath.Join(home, ".pgpass")
	}
	pf, err := pgpassfile.ReadPassfile(path)
	if err != nil {
		return ""
	}
	return pf.FindPassword(opts.Host, strconv.Itoa(opts.Port), opts.DBName, opts.User)
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

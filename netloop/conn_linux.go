//go:build linux

package netloop

import (
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	closingBit   = 1 << 62
	destroyedBit = 1 << 61
)

// Conn is a socket run by a Loop. See the package comment for its modes.
type Conn struct {
	fd           int
	seq          uint32
	loop         *Loop
	laddr, raddr net.Addr

	handler atomic.Pointer[handlerRef] // nil: blocking mode
	// more is false once a read found the socket empty, until the next
	// readiness event: a loop-mode reader need not try again before that.
	more atomic.Bool
	// hup: the peer closed its side (or the socket failed). Data and the
	// close can come in one event, so reads go on until EOF.
	hup atomic.Bool

	rsig, wsig chan struct{} // readiness signals for blocking-mode waiters
	done       chan struct{} // closed by Close
	// state counts the operations using fd, with closingBit once Close was
	// called; the last one out closes fd.
	state      atomic.Int64
	rdl, wdl   atomic.Int64 // read and write deadlines, Unix nanoseconds; 0: none
	wmu        sync.Mutex   // serializes writes; guards pending
	pending    []byte       // what the socket could not take yet (loop mode)
	pendingLen atomic.Int64
	// flushWanted: a writability event came while a writer held wmu; the
	// writer flushes once it lets go (unlockWrite), as the event will
	// not come again.
	flushWanted atomic.Bool
}

type handlerRef struct{ h Handler }

func newConn(l *Loop, fd int, laddr, raddr net.Addr) *Conn {
	c := &Conn{
		fd: fd, loop: l, laddr: laddr, raddr: raddr,
		rsig: make(chan struct{}, 1),
		wsig: make(chan struct{}, 1),
		done: make(chan struct{}),
	}
	c.more.Store(true)
	return c
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Loop returns the loop the Conn belongs to.
func (c *Conn) Loop() *Loop { return c.loop }

// SetHandler puts the Conn in loop mode with h, or back in blocking mode
// with nil. Events from then on go to h on the loop's thread.
func (c *Conn) SetHandler(h Handler) {
	if h == nil {
		c.handler.Store(nil)
		return
	}
	// Blocking-mode reads may have cleared more after the last event
	// set it: the handler's first read must not be skipped.
	c.more.Store(true)
	c.handler.Store(&handlerRef{h})
}

// MayHaveMore reports whether a read might find data: false once a read
// came back short or empty, until the socket signals again.
func (c *Conn) MayHaveMore() bool { return c.more.Load() }

// Pending reports how many written bytes wait for the socket (loop mode).
func (c *Conn) Pending() int { return int(c.pendingLen.Load()) }

// Closed reports whether Close was called.
func (c *Conn) Closed() bool { return c.state.Load()&closingBit != 0 }

func (c *Conn) incref() bool {
	for {
		s := c.state.Load()
		if s&closingBit != 0 {
			return false
		}
		if c.state.CompareAndSwap(s, s+1) {
			return true
		}
	}
}

func (c *Conn) decref() {
	if c.state.Add(-1) == closingBit {
		c.destroy()
	}
}

func (c *Conn) loopMode() bool { return c.handler.Load() != nil }

// Read reads what the socket has. In loop mode it returns ErrWouldBlock
// rather than wait; in blocking mode it waits, up to the read deadline.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if !c.incref() {
		return 0, net.ErrClosed
	}
	defer c.decref()
	for {
		n, errno := rawRead(c.fd, p)
		switch {
		case n > 0:
			if n < len(p) && !c.hup.Load() {
				c.more.Store(false)
			}
			return n, nil
		case n == 0:
			return 0, io.EOF
		case errno == syscall.EINTR:
			continue
		case errno != syscall.EAGAIN:
			return 0, &net.OpError{Op: "read", Net: "tcp", Source: c.laddr, Addr: c.raddr, Err: os.NewSyscallError("read", errno)}
		}
		c.more.Store(false)
		if c.loopMode() {
			return 0, ErrWouldBlock
		}
		if err := c.wait(c.rsig, &c.rdl); err != nil {
			return 0, err
		}
	}
}

// Write writes all of p. In loop mode it never waits: what the socket
// cannot take now is kept and sent when it is writable (see Pending).
func (c *Conn) Write(p []byte) (int, error) {
	if !c.incref() {
		return 0, net.ErrClosed
	}
	defer c.decref()
	c.wmu.Lock()
	defer c.unlockWrite()
	if c.loopMode() {
		total := len(p)
		if len(c.pending) == 0 {
			n, err := c.writeNow(p)
			if err != nil {
				return n, err
			}
			p = p[n:]
		}
		if len(p) > 0 {
			c.pending = append(c.pending, p...)
			c.pendingLen.Store(int64(len(c.pending)))
		}
		return total, nil
	}
	// Blocking mode: what loop mode left goes first.
	for len(c.pending) > 0 {
		n, err := c.writeNow(c.pending)
		c.pending = c.pending[:copy(c.pending, c.pending[n:])]
		c.pendingLen.Store(int64(len(c.pending)))
		if err != nil {
			return 0, err
		}
		if len(c.pending) > 0 {
			if err := c.wait(c.wsig, &c.wdl); err != nil {
				return 0, err
			}
		}
	}
	written := 0
	for len(p) > 0 {
		n, err := c.writeNow(p)
		written += n
		p = p[n:]
		if err != nil {
			return written, err
		}
		if len(p) > 0 {
			if err := c.wait(c.wsig, &c.wdl); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

// writeNow writes what the socket takes without waiting.
func (c *Conn) writeNow(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		n, errno := rawWrite(c.fd, p)
		switch {
		case n >= 0:
			written += n
			p = p[n:]
		case errno == syscall.EINTR:
		case errno == syscall.EAGAIN:
			return written, nil
		default:
			return written, &net.OpError{Op: "write", Net: "tcp", Source: c.laddr, Addr: c.raddr, Err: os.NewSyscallError("write", errno)}
		}
	}
	return written, nil
}

// flushPending sends what loop mode kept, as far as the socket takes it.
// If a writer holds the socket, it does so when it lets go.
func (c *Conn) flushPending() {
	if c.pendingLen.Load() == 0 {
		return
	}
	c.flushWanted.Store(true)
	if !c.wmu.TryLock() {
		return
	}
	c.flushWanted.Store(false)
	if c.incref() {
		n, err := c.writeNow(c.pending)
		if err != nil {
			n = len(c.pending) // the socket is broken: the next read tells
		}
		c.pending = c.pending[:copy(c.pending, c.pending[n:])]
		c.pendingLen.Store(int64(len(c.pending)))
		c.decref()
	}
	c.unlockWrite()
}

// unlockWrite releases wmu, then flushes if an event asked meanwhile.
func (c *Conn) unlockWrite() {
	c.wmu.Unlock()
	if c.flushWanted.Load() {
		c.flushPending()
	}
}

// wait waits for a readiness signal, Close or the deadline in dl.
func (c *Conn) wait(sig chan struct{}, dl *atomic.Int64) error {
	d := dl.Load()
	if d == 0 {
		select {
		case <-sig:
			return nil
		case <-c.done:
			return net.ErrClosed
		}
	}
	left := time.Until(time.Unix(0, d))
	if left <= 0 {
		return os.ErrDeadlineExceeded
	}
	t := time.NewTimer(left)
	defer t.Stop()
	select {
	case <-sig:
		return nil
	case <-c.done:
		return net.ErrClosed
	case <-t.C:
		return os.ErrDeadlineExceeded
	}
}

// Close closes the socket. Blocked reads and writes return at once.
func (c *Conn) Close() error {
	for {
		s := c.state.Load()
		if s&closingBit != 0 {
			return net.ErrClosed
		}
		// Close holds a reference of its own until it is done with fd.
		if c.state.CompareAndSwap(s, (s|closingBit)+1) {
			break
		}
	}
	close(c.done)
	if c.wmu.TryLock() {
		// A last word still queued (a FATAL error) gets one chance.
		if len(c.pending) > 0 {
			c.writeNow(c.pending)
		}
		c.wmu.Unlock()
	}
	c.decref()
	return nil
}

func setDeadline(dl *atomic.Int64, t time.Time) {
	if t.IsZero() {
		dl.Store(0)
	} else {
		dl.Store(t.UnixNano())
	}
}

// SetDeadline sets both deadlines; waiting reads and writes look again.
func (c *Conn) SetDeadline(t time.Time) error {
	setDeadline(&c.rdl, t)
	setDeadline(&c.wdl, t)
	signal(c.rsig)
	signal(c.wsig)
	return nil
}

// SetReadDeadline sets the read deadline (blocking mode).
func (c *Conn) SetReadDeadline(t time.Time) error {
	setDeadline(&c.rdl, t)
	signal(c.rsig)
	return nil
}

// SetWriteDeadline sets the write deadline (blocking mode).
func (c *Conn) SetWriteDeadline(t time.Time) error {
	setDeadline(&c.wdl, t)
	signal(c.wsig)
	return nil
}

func (c *Conn) LocalAddr() net.Addr  { return c.laddr }
func (c *Conn) RemoteAddr() net.Addr { return c.raddr }

// SyscallConn gives access to the socket, as *net.TCPConn does.
func (c *Conn) SyscallConn() (syscall.RawConn, error) { return rawConn{c}, nil }

type rawConn struct{ c *Conn }

func (r rawConn) Control(f func(fd uintptr)) error {
	if !r.c.incref() {
		return net.ErrClosed
	}
	defer r.c.decref()
	f(uintptr(r.c.fd))
	return nil
}

func (r rawConn) Read(f func(fd uintptr) bool) error {
	return r.until(f, r.c.rsig, &r.c.rdl)
}

func (r rawConn) Write(f func(fd uintptr) bool) error {
	return r.until(f, r.c.wsig, &r.c.wdl)
}

// until calls f until it reports done, waiting for readiness (sig) in
// between, up to the deadline in dl.
func (r rawConn) until(f func(fd uintptr) bool, sig chan struct{}, dl *atomic.Int64) error {
	if !r.c.incref() {
		return net.ErrClosed
	}
	defer r.c.decref()
	for !f(uintptr(r.c.fd)) {
		if err := r.c.wait(sig, dl); err != nil {
			return err
		}
	}
	return nil
}

package proxy

import (
	"bufio"
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// An idle client costs little memory: after parkAfter without a message,
// and while it holds no server connection, its 8 KiB read and write
// buffers go back to pools, and it waits for its next byte without one.
// A busy client keeps its buffers, so this costs the hot path nothing but
// setting a read deadline when it goes idle.

const (
	clientBufSize = 8 << 10
	parkAfter     = time.Second
)

var (
	readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, clientBufSize) }}
	writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, clientBufSize) }}
)

// out returns the client's write buffer, taking one from the pool if the
// client was parked. Call with wmu held, or before the client has a relay.
func (c *client) out() *bufio.Writer {
	if c.w == nil {
		c.w = writers.Get().(*bufio.Writer)
		c.w.Reset(c.netConn)
	}
	return c.w
}

// waitForMessage returns once the client has sent something (or failed).
// Between transactions (holding no server connection) it ends the client
// after client_idle_timeout, and parks its buffers after parkAfter. The
// relay arms the read deadline when it gives the server connection back
// (idleNowLocked), since the loop is usually already waiting here by then.
// Only the client loop calls it.
func (c *client) waitForMessage(idleTimeout time.Duration) error {
	defer c.startReading()
	if err := c.loopErr; err != nil && c.br.Buffered() == 0 {
		return err
	}
	for c.br.Buffered() == 0 {
		c.mu.Lock()
		c.reading = false
		now := time.Now()
		idle, since := c.att == nil, c.idleSince
		var deadline time.Time // when to look again; zero: never
		park := false
		if idle {
			if idleTimeout > 0 {
				if !now.Before(since.Add(idleTimeout)) {
					c.mu.Unlock()
					return os.ErrDeadlineExceeded // the caller reports the idle timeout
				}
				deadline = since.Add(idleTimeout)
			}
			if c.raw != nil {
				if t := since.Add(parkAfter); now.Before(t) {
					deadline = earliest(deadline, t)
				} else {
					park = true
				}
			}
		}
		if idle && c.loopEligibleLocked() {
			c.mu.Unlock()
			return errToLoop // the event loop waits for it (fast.go)
		}
		if park {
			// Wait without a buffer until the idle timeout, if any.
			deadline = time.Time{}
			if idleTimeout > 0 {
				deadline = since.Add(idleTimeout)
			}
		}
		c.setReadDeadlineLocked(deadline)
		c.mu.Unlock()
		if park {
			return c.park()
		}
		_, err := c.br.Peek(1)
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
		// A message (the loop ends), or time to look again.
	}
	return nil
}

// earliest returns the earlier of two deadlines; zero means none.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || !b.IsZero() && b.Before(a) {
		return b
	}
	return a
}

// idleDeadline is when a client idle since since must next be looked at:
// to hand it to the event loop, park it, or end it (idle timeout),
// whichever comes first. Call with c.mu held.
func (c *client) idleDeadline(since time.Time, idleTimeout time.Duration) time.Time {
	if c.loopEligibleLocked() {
		// Now: the loop looks again, and hands the client to the event
		// loop (fast.go).
		return since
	}
	var d time.Time
	if idleTimeout > 0 {
		d = since.Add(idleTimeout)
	}
	if c.raw != nil {
		d = earliest(d, since.Add(parkAfter))
	}
	return d
}

// setReadDeadlineLocked sets the client's read deadline unless it is set
// to that already. Call with c.mu held: the relay and the loop both set it.
func (c *client) setReadDeadlineLocked(d time.Time) {
	if !d.Equal(c.readDeadline) {
		c.netConn.SetReadDeadline(d)
		c.readDeadline = d
	}
}

// idleNowLocked notes that the client gave its server connection back and
// arms the read deadline of a loop already waiting for its next message
// (not of one reading a message: a slow body must not time out). now is
// the time of the ReadyForQuery that ended the transaction. Call with
// c.mu held.
func (c *client) idleNowLocked(now time.Time) {
	c.idleSince = now
	if !c.reading {
		c.setReadDeadlineLocked(c.idleDeadline(c.idleSince, c.srv.config().ClientIdleTimeout.D()))
	}
}

// startReading notes that the loop goes on to read a message, with no
// deadline: the client has begun sending it. Only the loop writes
// c.reading, so it may read it unlocked: already reading (pipelined
// messages), nothing can have armed a deadline since.
func (c *client) startReading() {
	if c.reading {
		return
	}
	c.mu.Lock()
	c.reading = true
	c.setReadDeadlineLocked(time.Time{})
	c.mu.Unlock()
}

// park gives the client's buffers back and waits, without one, for its
// next byte, or until the read deadline (the idle timeout).
func (c *client) park() error {
	c.waitRelay() // its last write must be out first
	c.dropBuffers()
	defer c.parked.Store(false)

	var one [1]byte
	err := c.raw.Read(func(fd uintptr) bool {
		_, _, rerr := syscall.Recvfrom(int(fd), one[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return rerr != syscall.EAGAIN && rerr != syscall.EINTR
	})
	c.br = readers.Get().(*bufio.Reader)
	c.br.Reset(c.netConn)
	c.r.Reset(c.br)
	return err
}

// dropBuffers gives the idle client's buffers back to their pools (a
// write buffer only if empty) and marks it parked. Only the goroutine or
// loop that runs the client calls it.
func (c *client) dropBuffers() {
	c.wmu.Lock()
	if c.w != nil && c.w.Buffered() == 0 {
		c.w.Reset(nil)
		writers.Put(c.w)
		c.w = nil
	}
	c.wmu.Unlock()
	c.br.Reset(nil)
	readers.Put(c.br)
	c.br = nil
	c.r.Reset(nil)
	c.parked.Store(true)
}

// rawConn returns the socket of a plain TCP client for parking, or nil
// (TLS clients keep their buffers: the TLS layer has its own).
func rawConn(nc net.Conn) syscall.RawConn {
	sc, ok := nc.(interface {
		SyscallConn() (syscall.RawConn, error)
	})
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return raw
}

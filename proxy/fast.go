package proxy

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/pgpoolx/pgpoolx/config"
	"github.com/pgpoolx/pgpoolx/netloop"
	"github.com/pgpoolx/pgpoolx/pool"
	"github.com/pgpoolx/pgpoolx/session"
	"github.com/pgpoolx/pgpoolx/wire"
)

// The event loop's side of a client (package netloop).
//
// A plain TCP client in transaction mode is run by the event loop while
// it is between transactions, and for every transaction that needs
// nothing that waits: the loop reads whole messages, takes a server
// connection (or queues for one without blocking), forwards, and relays
// the replies, all on the loop's thread, with the same code the
// goroutines run (forward, relayOne). Anything that would wait (dialing a
// server, bringing its settings in line, a probe after a SET, a message
// larger than the buffer, COPY, an error to report) hands the client to
// goroutines (loop.go, relay.go), which give it back once it is idle.
//
// Ownership: c.inLoop says who runs the client. The loop's thread only
// touches a client it owns; a goroutine hands it over (enterLoop) at a
// point where it is idle, and the loop hands it back (toGoroutine) before
// doing anything that waits.

// maxLoopBacklog bounds what the loop keeps for a client that reads
// slower than its server sends; beyond it the client goes to goroutines,
// where writing to it waits.
const maxLoopBacklog = 256 << 10

// errToLoop ends the client loop when the event loop takes the client.
var errToLoop = errors.New("client handed to the event loop")

type clientEvents struct{ c *client }

func (h clientEvents) Ready() { h.c.loopStep() }

type serverEvents struct {
	c *client
	a *attachment
}

func (h serverEvents) Ready() { h.c.relayStep(h.a) }

// loopConn returns the event loop's socket behind nc, or nil.
func loopConn(nc any) *netloop.Conn {
	lc, _ := nc.(*netloop.Conn)
	return lc
}

// serverLoopConn returns the event loop's socket under a server
// connection, or nil, and whether TLS runs over it.
func serverLoopConn(srv *pool.Conn) (lc *netloop.Conn, overTLS bool) {
	nc := srv.NetConn()
	if tc, ok := nc.(*tls.Conn); ok {
		return loopConn(tc.NetConn()), true
	}
	return loopConn(nc), false
}

// loopEligibleLocked reports whether the event loop may run the client
// now that it is idle. Call with c.mu held.
func (c *client) loopEligibleLocked() bool {
	return c.lc != nil && c.mode == config.PoolModeTransaction && c.att == nil &&
		c.pin == "" && c.stopping == nil && !c.lost && !c.failing && len(c.deferred) == 0 &&
		c.loopErr == nil && !c.lc.Closed() && !c.pool.offLoop.Load()
}

// enterLoop hands the idle client to the event loop; the calling
// goroutine must not touch it afterwards.
func (c *client) enterLoop() {
	c.waitRelay()
	c.inLoop.Store(true)
	c.lc.SetHandler(clientEvents{c})
	c.lc.Loop().Post(c.loopStep)
}

// toGoroutine hands the client, and a server connection the loop relays
// for it, to goroutines. On the loop's thread only.
func (c *client) toGoroutine() {
	if c.leaveLoop() {
		go c.runGoroutine()
	}
}

// leaveLoop takes the client from the loop, with a relay it runs, which
// goes on in a goroutine; false if the loop did not hold it. On the
// loop's thread only.
func (c *client) leaveLoop() bool {
	if !c.inLoop.Load() {
		return false
	}
	c.inLoop.Store(false)
	c.lc.SetHandler(nil)
	c.unpark()
	c.mu.Lock()
	a := c.att
	c.mu.Unlock()
	if a != nil && a.stopLoopRelay() {
		a.done = make(chan struct{}) // a goroutine waits on it from now on
		c.lastRelay = a.done
		go c.relayServerToClient(c.ctx, a)
	}
	return true
}

// runGoroutine runs the client in the goroutine style until it leaves or
// the event loop takes it back.
func (c *client) runGoroutine() {
	err := c.loop(c.ctx)
	if errors.Is(err, errToLoop) {
		c.enterLoop()
		return
	}
	c.end(err)
}

// loopStep reads and handles what the client sent. On the loop's thread.
func (c *client) loopStep() {
	if !c.inLoop.Load() || c.waiting {
		// Queued for a server connection: the messages wait in the
		// socket until served runs.
		return
	}
	c.unpark()
	for {
		for {
			whole, fits := c.r.Whole()
			if !whole {
				if !fits {
					c.toGoroutine() // streamed by the client loop
					return
				}
				break
			}
			if !c.loopMessage() {
				return
			}
		}
		if !c.lc.MayHaveMore() {
			break
		}
		if err := c.r.Fill(); err != nil && !errors.Is(err, netloop.ErrWouldBlock) {
			c.loopErr = err // the client loop reports it
			c.toGoroutine()
			return
		}
	}
	c.parkInLoop()
}

// loopMessage handles the client's next message, which is whole in the
// buffer, and reports whether the loop keeps the client.
func (c *client) loopMessage() bool {
	c.mu.Lock()
	a := c.att
	c.mu.Unlock()
	switch c.r.PeekType() {
	case wire.Query, wire.Parse, wire.Bind, wire.Describe, wire.Execute, wire.Sync:
	case wire.Terminate:
		if a != nil {
			c.toGoroutine()
			return false
		}
		// Goodbye between transactions: nothing waits, so the loop ends
		// the client itself rather than start a goroutine for it (a
		// client per transaction, as with pgbench -C, pays that at every
		// connection).
		c.leaveLoop()
		c.end(nil)
		return false
	default:
		c.toGoroutine()
		return false
	}
	if a == nil {
		if c.failing || len(c.deferred) > 0 || c.r.PeekType() == wire.Parse && c.newNamedParse() {
			// A named Parse may be held back rather than wait (takeServer).
			c.toGoroutine()
			return false
		}
		if !c.takeServerInLoop() {
			return false
		}
	}
	typ, n, err := c.r.Next()
	if err == nil {
		err = c.forward(c.ctx, typ, n)
	}
	if err != nil {
		c.leaveLoop()
		go c.end(err)
		return false
	}
	if a == nil {
		c.releaseUnused()
	}
	return c.inLoop.Load()
}

// releaseUnused gives back a server connection taken for a message that
// pgpoolx answered itself (a DEALLOCATE), so nothing went to the server.
func (c *client) releaseUnused() {
	c.mu.Lock()
	a := c.att
	unused := a != nil && a.lc != nil && c.track.Idle()
	if unused {
		c.att = nil
	}
	c.mu.Unlock()
	if !unused {
		return
	}
	a.stopLoopRelay()
	c.pool.Release(a.srv)
}

// newNamedParse reports whether the buffered Parse prepares a statement
// name the client has not used yet.
func (c *client) newNamedParse() bool {
	body, err := c.r.PeekBody(256)
	if err != nil {
		return true
	}
	name, _, ok := wire.CString(body)
	if !ok {
		return true
	}
	if len(name) == 0 {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stmts[string(name)] == nil
}

// takeServerInLoop gives the client an idle server connection, or queues
// it for one (false: the loop stops reading it until served runs), or
// hands it to a goroutine (false) when getting one would block.
func (c *client) takeServerInLoop() bool {
	srv, err := c.pool.Take()
	switch {
	case err == nil:
		c.pool.stats.Waited(0)
		return c.attachInLoop(srv)
	case errors.Is(err, pool.ErrWouldWait):
		if c.wait == nil {
			// Made once: waiting allocates nothing.
			loop, served := c.lc.Loop(), c.served
			post := func() { loop.Post(served) }
			c.wait = c.pool.NewWait(post)
		}
		now := time.Now()
		if err := c.wait.Begin(now); err == nil {
			c.waiting = true
			c.waitSince.Store(now.UnixNano())
			return false
		}
	}
	c.toGoroutine()
	return false
}

// served runs when the pool answered the client's wait.
func (c *client) served() {
	if !c.waiting {
		return
	}
	c.waiting = false
	srv, err := c.wait.Result()
	if since := c.waitSince.Swap(0); since != 0 {
		c.pool.stats.Waited(time.Since(time.Unix(0, since)))
	}
	switch {
	case err != nil:
		c.pendingErr = err // the client loop reports it
	case srv != nil:
		if !c.attachInLoop(srv) {
			return
		}
		c.loopStep()
		return
	}
	c.toGoroutine()
}

// attachInLoop makes srv the client's server connection, relayed by the
// loop. A connection whose settings must first be brought in line with
// the client's goes to a goroutine with the client (false).
func (c *client) attachInLoop(srv *pool.Conn) bool {
	c.mu.Lock()
	want := c.want
	c.mu.Unlock()
	lc, overTLS := serverLoopConn(srv)
	if lc == nil || lc.Loop() != c.lc.Loop() || session.SyncSQL(want, srv.Current) != "" {
		c.taken = srv // attach uses it
		c.toGoroutine()
		return false
	}
	srv.Current = want // equal; now also the same map, which compares at once

	a := newAttachment(srv, lc, overTLS)
	c.mu.Lock()
	c.att = a
	c.mu.Unlock()
	lc.SetHandler(serverEvents{c, a})
	return true
}

// relayStep relays what the server sent for the client. On the loop's
// thread.
func (c *client) relayStep(a *attachment) {
	if a.lc == nil || !c.inLoop.Load() {
		return
	}
	for {
		for {
			whole, fits := a.srv.R.Whole()
			if !whole {
				if !fits {
					c.toGoroutine() // a large row: streamed by the relay
					return
				}
				break
			}
			if c.lc.Pending() > maxLoopBacklog ||
				a.srv.R.PeekType() == wire.ReadyForQuery && c.readyMustWait() {
				// A client slower than its server: the relay goroutine
				// waits for it, and holds the server back meanwhile.
				c.toGoroutine()
				return
			}
			if c.relayOne(c.ctx, a) {
				c.relayEnded(a)
				return
			}
		}
		// TLS may hold decrypted input the socket no longer shows: it is
		// read until it has nothing, at the cost of one empty read.
		if !a.tls && !a.lc.MayHaveMore() {
			return
		}
		switch err := a.srv.R.Fill(); {
		case errors.Is(err, netloop.ErrWouldBlock):
			return
		case err != nil:
			// relayOne meets the error again and reports the server lost.
			if c.relayOne(c.ctx, a) {
				c.relayEnded(a)
			}
			return
		}
	}
}

// readyMustWait reports whether the ReadyForQuery at hand needs work that
// waits: a probe of what the transaction changed, a cancel in flight, or
// a client to stop.
func (c *client) readyMustWait() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dirty || c.cancelling > 0 || c.stopping != nil
}

// stopLoopRelay takes the server connection's events from the loop if
// the loop relayed it, and reports whether it did.
func (a *attachment) stopLoopRelay() bool {
	if a.lc == nil {
		return false
	}
	a.lc.SetHandler(nil)
	a.lc = nil
	return true
}

// relayEnded follows a relay the loop ran to its end: the connection went
// back to the pool (relayOne left the loop mode first), or one side
// failed.
func (c *client) relayEnded(a *attachment) {
	a.stopLoopRelay()
	// Pipelined messages may be waiting.
	c.loopStep()
}

// unpark gives a client the loop parked its buffers back.
func (c *client) unpark() {
	if c.br != nil {
		return
	}
	c.br = readers.Get().(*bufio.Reader)
	c.br.Reset(c.netConn)
	c.r.Reset(c.br)
	c.parked.Store(false)
}

// parkInLoop gives the buffers of a client idle in the loop back: a
// client between transactions costs no buffer memory.
func (c *client) parkInLoop() {
	if c.br == nil || c.br.Buffered() > 0 {
		return
	}
	c.mu.Lock()
	idle := c.att == nil
	c.mu.Unlock()
	if !idle {
		return
	}
	c.dropBuffers()
}

// sweepLoopClients ends the clients the loop holds idle for longer than
// client_idle_timeout: their goroutine finds the time is up.
func (s *Server) sweepLoopClients(now time.Time) {
	timeout := s.config().ClientIdleTimeout.D()
	if timeout <= 0 {
		return
	}
	s.mu.Lock()
	var due []*client
	for _, c := range s.clients {
		if c.inLoop.Load() {
			due = append(due, c)
		}
	}
	s.mu.Unlock()
	for _, c := range due {
		c.mu.Lock()
		late := c.att == nil && !now.Before(c.idleSince.Add(timeout))
		c.mu.Unlock()
		if late {
			c.lc.Loop().Post(func() {
				c.mu.Lock()
				idle := c.att == nil
				c.mu.Unlock()
				if idle && !c.waiting {
					c.toGoroutine()
				}
			})
		}
	}
}

var (
	loopOnce   sync.Once
	sharedLoop *netloop.Loop // nil where the platform has none
)

// eventLoop returns the process's event loop, started on first use, or
// nil when it is off or unavailable.
func (s *Server) eventLoop() *netloop.Loop {
	if !netloop.Available || !s.config().EventLoopOn() {
		return nil
	}
	loopOnce.Do(func() {
		l, err := netloop.New()
		if err != nil {
			s.log.Warn("event loop unavailable; clients run on goroutines", zap.Error(err))
			return
		}
		sharedLoop = l
	})
	return sharedLoop
}

// adopt moves a plain TCP connection to the event loop, or returns nil.
func (s *Server) adopt(nc net.Conn) net.Conn {
	l := s.eventLoop()
	if l == nil {
		return nil
	}
	lc, err := l.Adopt(nc)
	if err != nil {
		return nil
	}
	return lc
}

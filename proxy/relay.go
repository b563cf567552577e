package proxy

import (
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/pgpoolx/pgpoolx/config"
	"github.com/pgpoolx/pgpoolx/netloop"
	"github.com/pgpoolx/pgpoolx/pool"
	"github.com/pgpoolx/pgpoolx/session"
	"github.com/pgpoolx/pgpoolx/wire"
)

// acquire takes a server connection from the pool; without wait it fails
// with pool.ErrWouldWait rather than queue.
func (c *client) acquire(ctx context.Context, wait bool) (*pool.Conn, error) {
	if srv, err := c.taken, c.pendingErr; srv != nil || err != nil {
		// What the event loop got for the client (fast.go).
		c.taken, c.pendingErr = nil, nil
		return srv, err
	}
	if !wait {
		return c.pool.TryAcquire(ctx)
	}
	start := time.Now()
	c.waitSince.Store(start.UnixNano())
	srv, err := c.pool.Acquire(ctx)
	c.waitSince.Store(0)
	c.pool.stats.Waited(time.Since(start))
	return srv, err
}

// prepareServer runs pgpoolx's own query on a server connection before
// the client uses it. On failure the connection goes back to the pool
// when the server refused the query (a failed statement changes nothing),
// or is destroyed when the connection itself failed.
func (c *client) prepareServer(ctx context.Context, srv *pool.Conn, sql string, onRow func([][]byte)) error {
	sctx, cancel := context.WithTimeout(ctx, c.srv.config().ConnectTimeout.D())
	defer cancel()
	err := srv.Query(sctx, sql, onRow)
	var se *pool.ServerError
	switch {
	case err == nil:
	case errors.As(err, &se):
		c.pool.Release(srv)
	default:
		c.pool.Destroy(srv, "applying client settings failed")
	}
	return err
}

// attach takes a server connection, brings its settings in line with the
// client's, makes it the client's current one and starts relaying its
// replies. Without wait, it fails with pool.ErrWouldWait rather than queue.
func (c *client) attach(ctx context.Context, wait bool) (*attachment, error) {
	srv, err := c.acquire(ctx, wait)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	want := c.want
	c.mu.Unlock()
	if sql := session.SyncSQL(want, srv.Current); sql != "" {
		if err := c.prepareServer(ctx, srv, sql, nil); err != nil {
			return nil, err
		}
		srv.Current = want
		// The client hears of any reported value that now differs from
		// what it was told (it connected while no server connection was
		// free, or a setting reads back in the server's spelling).
		c.mu.Lock()
		ps := c.reportChangesLocked(nil, srv)
		c.mu.Unlock()
		if ps != nil {
			c.wmu.Lock()
			c.out().Write(ps)
			c.wmu.Unlock()
		}
	}
	a := newAttachment(srv, nil, false)
	c.startRelay(ctx, a)
	return a, nil
}

// newAttachment lends srv to the client, relayed by the event loop
// through lc, or by a goroutine when lc is nil. The loop's relay gets its
// done channel only if a goroutine takes it over (fast.go).
func newAttachment(srv *pool.Conn, lc *netloop.Conn, overTLS bool) *attachment {
	a := &attachment{srv: srv, txStart: time.Now(), lc: lc, tls: overTLS}
	if lc == nil {
		a.done = make(chan struct{})
	}
	return a
}

func (c *client) startRelay(ctx context.Context, a *attachment) {
	c.mu.Lock()
	c.att = a
	c.mu.Unlock()
	c.lastRelay = a.done
	go c.relayServerToClient(ctx, a)
}

// waitRelay waits until the relay of the previous attachment has written
// its last reply: after it gives the server connection back it still
// sends the client that ReadyForQuery, which nothing may overtake (a new
// attachment's replies, an answer pgpoolx makes itself). Only the client
// loop calls it.
func (c *client) waitRelay() {
	if c.lastRelay != nil {
		<-c.lastRelay
		c.lastRelay = nil
	}
}

// relayServerToClient moves the server's replies to the client until the
// client may give the server connection back (transaction mode: the
// ReadyForQuery that leaves it idle with nothing in flight), or until one
// side fails.
func (c *client) relayServerToClient(ctx context.Context, a *attachment) {
	defer close(a.done)
	for !c.relayOne(ctx, a) {
	}
}

// relayOne moves one server message to the client and reports whether
// the relay is over: the connection went back to the pool, or one side
// failed. Read in blocking mode, or (event loop) with the whole message
// buffered, so that it never waits for the server.
func (c *client) relayOne(ctx context.Context, a *attachment) (end bool) {
	srv := a.srv
	typ, n, err := srv.R.Next()
	if err != nil {
		c.serverLost(a, err, a.fatal)
		return true
	}
	a.sent += uint64(n) + 5
	if typ == wire.CommandComplete || typ == wire.EmptyQueryResponse || typ == wire.ErrorResponse {
		a.queries++
	}
	var body []byte
	var status byte
	var psName, psValue string
	switch typ {
	case wire.ReadyForQuery:
		body, err = srv.R.ReadBody(c.relayBuf[:0])
		if err == nil && len(body) != 1 {
			err = errors.New("malformed ReadyForQuery from server")
		}
		if err == nil {
			status = body[0]
		}
	case wire.ParameterStatus:
		body, err = srv.R.ReadBody(c.relayBuf[:0])
		if err == nil {
			psName, psValue, err = srv.RecordParameterStatus(body)
		}
	case wire.ErrorResponse:
		body, err = srv.R.ReadBody(c.relayBuf[:0])
		a.fatal = a.fatal || isFatal(body)
	case wire.Notification:
		// A notification the session sent itself carries its server
		// pid; the client knows itself by the pid pgpoolx issued.
		body, err = srv.R.ReadBody(c.relayBuf[:0])
		if err == nil && len(body) >= 4 && binary.BigEndian.Uint32(body) == srv.PID {
			binary.BigEndian.PutUint32(body, c.keyPID)
		}
	}
	if err != nil {
		c.serverLost(a, err, a.fatal)
		return true
	}
	if body != nil {
		c.relayBuf = body[:0]
	}

	forward, release, stopNow := true, false, false
	var pending []byte // ParameterStatus messages the probe's fix-ups caused
	if tracked(typ) {
		c.mu.Lock()
		forward = c.track.ServerSent(typ, status)
		switch typ {
		case wire.ErrorResponse:
			c.forgetFailedParsesLocked(srv, c.track.FailedParses())
			if staleStatements(body) {
				// The server's statements are not what pgpoolx recorded
				// (a table changed under them, or something dropped
				// them): prepare each afresh at its next use.
				srv.Prepared.Clear()
			}
		case wire.ParameterStatus:
			c.markDirtyLocked("", 0, false) // a reported setting changed, by whatever means
			c.reported[psName] = psValue
		}
		idleNow := typ == wire.ReadyForQuery && c.track.Idle() && c.att == a &&
			c.mode == config.PoolModeTransaction
		if idleNow && c.dirty {
			for c.cancelling > 0 {
				// A cancel meant for the finished query must not hit the probe.
				c.cancelDone.Wait()
			}
			// Learn what the transaction left in the session before the
			// client hears it is over, so its next transaction, wherever
			// it runs, has it. c.mu stays held: the client loop must not
			// write to srv meanwhile.
			if pending, err = c.probeLocked(ctx, srv); err != nil {
				c.mu.Unlock()
				c.serverLost(a, err, a.fatal)
				return true
			}
		}
		if idleNow && c.pin != "" {
			c.pinTx++
		}
		var now time.Time
		if typ == wire.ReadyForQuery {
			now = time.Now()
			c.countReady(now, a, status == wire.TxIdle)
		}
		release = idleNow && c.pin == ""
		if release {
			c.att = nil
			c.idleNowLocked(now)
			for c.cancelling > 0 {
				// Hold the connection until the cancel has reached the
				// server, so it cannot hit another client's query.
				c.cancelDone.Wait()
			}
		}
		stopNow = c.stopping != nil && typ == wire.ReadyForQuery && c.track.Idle()
		c.mu.Unlock()
	}

	if typ == wire.ErrorResponse && forward {
		c.pool.stats.Error(errorField(body, 'C'))
	}

	var werr, rerr error // failures of the client and of the server
	c.wmu.Lock()
	if pending != nil {
		_, werr = c.out().Write(pending)
	}
	if forward {
		if body != nil {
			c.scratchRelay = wire.AppendHeader(c.scratchRelay[:0], typ, len(body))
			c.scratchRelay = append(c.scratchRelay, body...)
			_, werr = c.out().Write(c.scratchRelay)
		} else if err := srv.R.Forward(c.out()); err != nil {
			var we *wire.WriteError
			if errors.As(err, &we) {
				werr = err
			} else {
				rerr = err
			}
		}
	} else if body == nil {
		rerr = srv.R.Skip()
	}
	if werr == nil && rerr == nil && (release || srv.R.Buffered() == 0) {
		werr = c.out().Flush()
	}
	c.wmu.Unlock()

	switch {
	case rerr != nil:
		c.serverLost(a, rerr, a.fatal)
		return true
	case werr != nil:
		// The client is gone. Closing its socket ends the client loop,
		// which decides what becomes of a connection still held.
		c.netConn.Close()
		if !release {
			return true
		}
	}
	if release {
		// Events of a connection back in the pool are no longer this
		// client's (fast.go).
		a.stopLoopRelay()
		// Wait for the client loop's last write to srv to finish.
		srv.WriteMu.Lock()
		srv.WriteMu.Unlock() //lint:ignore SA2001 the lock is taken only to wait for the writer
		c.pool.Release(srv)
	}
	if stopNow && werr == nil {
		c.sendFatal(c.stopping)
		c.netConn.Close()
	}
	return release
}

// countReady adds a's traffic since the last ReadyForQuery to the pool's
// counters when one arrives, at now; idle says the transaction ended.
func (c *client) countReady(now time.Time, a *attachment, idle bool) {
	st := &c.pool.stats
	st.BytesOut.Add(a.sent)
	st.Queries.Add(a.queries)
	a.sent, a.queries = 0, 0
	if t := c.reqStart.Swap(0); t != 0 {
		req := time.Unix(0, t)
		st.QueryMicros.Add(uint64(now.Sub(req).Microseconds()))
		if a.txStart.IsZero() {
			a.txStart = req
		}
	}
	if idle {
		st.Xacts.Add(1)
		if !a.txStart.IsZero() {
			st.XactMicros.Add(uint64(now.Sub(a.txStart).Microseconds()))
		}
		a.txStart = time.Time{}
	}
}

// tracked reports whether a server message concerns the session's state
// (session.Tracker, statements, settings). Rows, command tags and the
// like stream past without taking the client's lock.
func tracked(typ byte) bool {
	return typ == wire.ParameterStatus || session.Tracks(typ)
}

// staleStatements reports whether an ErrorResponse says a prepared
// statement is no longer usable as recorded: "cached plan must not change
// result type" after a schema change, or one of pgpoolx's statements does
// not exist.
func staleStatements(body []byte) bool {
	code, msg := errorField(body, 'C'), errorField(body, 'M')
	return code == "0A000" && strings.Contains(msg, "cached plan") ||
		code == "26000" && strings.Contains(msg, session.ServerNamePrefix)
}

// errorField returns one field of an ErrorResponse body, or "".
func errorField(body []byte, field byte) string {
	for len(body) > 0 && body[0] != 0 {
		f := body[0]
		value, rest, ok := wire.CString(body[1:])
		if !ok {
			return ""
		}
		if f == field {
			return string(value)
		}
		body = rest
	}
	return ""
}

// isFatal reports whether an ErrorResponse body has severity FATAL or PANIC.
func isFatal(body []byte) bool {
	s := errorField(body, 'V')
	if s == "" {
		s = errorField(body, 'S')
	}
	return s == "FATAL" || s == "PANIC"
}

// serverLost handles a server connection that failed under the client:
// the client learns why (the server's own FATAL error if it sent one, else
// a pgpoolx error) and is disconnected, as it would be from PostgreSQL.
func (c *client) serverLost(a *attachment, err error, fatalSent bool) {
	c.mu.Lock()
	if c.att != a {
		// finish or shutdown took the connection away on purpose.
		c.mu.Unlock()
		return
	}
	c.att = nil
	c.lost = true
	c.mu.Unlock()
	c.pool.Destroy(a.srv, "server connection lost")
	c.log.Warn("server connection lost", zap.Uint32("server_pid", a.srv.PID), zap.Error(err))
	if fatalSent {
		c.wmu.Lock()
		c.out().Flush()
		c.wmu.Unlock()
	} else {
		c.sendFatal(fatalf(codeConnectionFailure, "server connection lost: %v", err))
	}
	c.netConn.Close()
}

// finish runs when the client loop ends: a server connection still held
// goes back clean, or is destroyed.
func (c *client) finish(ctx context.Context) {
	c.mu.Lock()
	a := c.att
	c.att = nil
	idle := c.track.Idle()
	c.mu.Unlock()
	if a == nil {
		return
	}
	srv := a.srv
	c.mu.Lock()
	if c.pin != "" {
		c.setPinLocked("", srv.PID) // the session ends, and its pin with it
	}
	loaded := c.loaded
	c.mu.Unlock()
	if !idle || loaded {
		// Mid-transaction or mid-reply: closing the connection makes the
		// server roll back and release the client's locks.
		c.pool.Destroy(srv, "client left mid-transaction")
		<-a.done
		return
	}
	// Idle but held (session mode or a pin): stop the relay without
	// closing the socket, then wipe the session before reuse.
	srv.SetDeadline(time.Now())
	<-a.done
	srv.SetDeadline(time.Time{})
	if err := c.resetServer(ctx, srv); err != nil {
		c.pool.Destroy(srv, "reset failed")
		c.log.Warn("server reset failed", zap.Uint32("server_pid", srv.PID), zap.Error(err))
		return
	}
	c.pool.Release(srv)
}

// resetServer clears everything a client left in a server's session and
// applies the init query again, so the next client finds the baseline.
func (c *client) resetServer(ctx context.Context, srv *pool.Conn) error {
	rctx, cancel := context.WithTimeout(ctx, c.srv.config().ConnectTimeout.D())
	defer cancel()
	if err := srv.Exec(rctx, "DISCARD ALL"); err != nil {
		return err
	}
	if q := c.pool.Options().InitQuery; q != "" {
		if err := srv.Exec(rctx, q); err != nil {
			return err
		}
	}
	srv.Current = srv.Baseline
	srv.Prepared.Clear()
	srv.UnnamedToken = 0
	return nil
}

// stopWhenIdle closes the client with ce: now if it is between
// transactions, else when its transaction ends.
func (c *client) stopWhenIdle(ce *clientError) {
	c.mu.Lock()
	c.stopping = ce
	now := c.att == nil || c.track.Idle()
	c.mu.Unlock()
	if now {
		c.sendFatal(ce)
		c.netConn.Close()
	}
}

// terminateIfBetweenMessages tells a client that waits for nothing from
// its server (idle, or inside a transaction between statements) that it
// is being disconnected; a client in the middle of a reply can only be cut.
func (c *client) terminateIfBetweenMessages() {
	c.mu.Lock()
	safe := c.track.Pending() == 0
	c.mu.Unlock()
	if safe {
		c.sendFatal(fatalf(codeAdminShutdown, "terminating connection because pgpoolx is shutting down (shutdown_timeout)"))
	}
}

// sendReady answers a Sync that pgpoolx skipped after its own error.
func (c *client) sendReady() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.out().Write(wire.AppendReadyForQuery(c.scratch[:0], wire.TxIdle))
	return c.out().Flush()
}

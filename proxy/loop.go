package proxy

import (
	"context"
	"errors"
	"net"
	"time"

	"go.uber.org/zap"

	"github.com/pgpoolx/pgpoolx/config"
	"github.com/pgpoolx/pgpoolx/pool"
	"github.com/pgpoolx/pgpoolx/wire"
)

// loop reads the client's messages and sends each to the server
// connection the client holds, taking one from the pool when a
// transaction or batch starts. It returns when the client leaves.
func (c *client) loop(ctx context.Context) error {
	idleTimeout := c.srv.config().ClientIdleTimeout.D()
	for {
		err := c.waitForMessage(idleTimeout)
		var typ byte
		var n int
		if err == nil {
			typ, n, err = c.r.Next()
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return fatalf(codeIdleSessionTimeout, "terminating connection due to client_idle_timeout (%s)", idleTimeout)
			}
			if errors.Is(err, wire.ErrTooLarge) {
				return fatalf(codeProgramLimitExceeded, "%v (max_message_bytes)", err)
			}
			if errors.Is(err, wire.ErrBadLength) {
				return fatalf(codeProtocolViolation, "%v", err)
			}
			return err
		}
		switch typ {
		case wire.Terminate:
			return nil
		case wire.Bind, wire.Close, wire.CopyData, wire.CopyDone, wire.CopyFail, wire.Describe,
			wire.Execute, wire.Flush, wire.FunctionCall, wire.Parse, wire.Query, wire.Sync:
		default:
			return fatalf(codeProtocolViolation, "invalid frontend message type %d", typ)
		}
		if c.failing {
			// Like the server after an error: ignore everything up to Sync.
			if err := c.r.Skip(); err != nil {
				return err
			}
			if typ == wire.Sync {
				c.failing = false
				c.waitRelay()
				if err := c.sendReady(); err != nil {
					return err
				}
			}
			continue
		}
		if err := c.forward(ctx, typ, n); err != nil {
			return err
		}
	}
}

// forward sends one client message, whose header was just read, to the
// client's server connection, taking one from the pool when a transaction
// or batch starts. In transaction mode it keeps the client's prepared
// statements valid on whatever server connection it holds (stmt.go).
func (c *client) forward(ctx context.Context, typ byte, n int) error {
	c.bytesIn += uint64(n) + 5
	if typ == wire.Query || typ == wire.Sync {
		// A request whose ReadyForQuery the relay will time (query time).
		c.reqStart.CompareAndSwap(0, time.Now().UnixNano())
		c.pool.stats.BytesIn.Add(c.bytesIn)
		c.bytesIn = 0
	}
	out := outMsg{typ: typ}
	var ref stmtRef
	if c.mode == config.PoolModeTransaction {
		var err error
		if ref, err = c.readStatementRef(typ, n, &out); err != nil {
			return err
		}
	}

	if len(ref.deallocate) > 0 {
		if answered, err := c.answerDeallocate(ref.deallocate); answered || err != nil {
			return err
		}
	}

	// Hold a server connection, and keep c.mu from the moment it is
	// checked until the message is recorded: the relay may give the
	// connection back at any ReadyForQuery (a COPY that failed while the
	// client still sends data), and nothing may reach it after that.
	var a *attachment
	for {
		c.mu.Lock()
		a = c.att
		lost := c.lost
		c.mu.Unlock()
		if lost {
			return errServerLost
		}
		if a == nil {
			c.waitRelay()
			var handled bool
			var err error
			if a, handled, err = c.takeServer(ctx, typ, ref); handled || err != nil {
				return err
			}
		}
		c.mu.Lock()
		if c.att == a {
			break
		}
		c.mu.Unlock()
	}
	srv := a.srv

	// Decide what goes ahead of the message, and record it all before
	// writing, so the relay never sees a reply it cannot place.
	pre := c.preBuf[:0]
	for _, d := range c.deferred {
		pre = c.sendParseLocked(pre, srv, d)
	}
	c.deferred = c.deferred[:0]
	pre = c.statementAheadLocked(pre, srv, typ, &ref, &out)
	c.track.ClientSent(typ, ref.parse)
	// Take the write lock before letting the relay see the message: a
	// release it decides from now on waits for this write, which then
	// lands before the connection goes back (copy data after a failed
	// COPY, which the server ignores outside COPY, starts no group).
	srv.WriteMu.Lock()
	c.mu.Unlock()
	c.preBuf = pre[:0]

	err := c.writeToServer(srv, out, pre)
	srv.WriteMu.Unlock()
	var we *wire.WriteError
	if errors.As(err, &we) {
		// The server side broke: closing it makes the relay report it.
		srv.Close()
		return nil
	}
	return err
}

// takeServer gets the client a server connection for a message that
// finds it holding none. handled means the message needed none after all
// (it was skipped, held back or answered) or failed and was answered.
func (c *client) takeServer(ctx context.Context, typ byte, ref stmtRef) (a *attachment, handled bool, err error) {
	switch {
	case typ == wire.CopyData || typ == wire.CopyDone || typ == wire.CopyFail || typ == wire.Flush && len(c.deferred) == 0:
		// Outside a COPY the server ignores these; with no server
		// connection held there is nothing to flush.
		return nil, true, c.r.Skip()
	case typ == wire.Sync && len(c.deferred) > 0:
		// A batch of named Parses alone: answer it here. Each statement
		// is prepared on a server connection when first used.
		return nil, true, c.answerDeferred()
	case ref.newStmt && len(c.deferred) > 0:
		c.deferred = append(c.deferred, ref)
		return nil, true, nil
	}
	a, err = c.attach(ctx, !ref.newStmt)
	if errors.Is(err, pool.ErrWouldWait) {
		// Waiting for a server here could deadlock a client that drives
		// many connections from one thread (pgbench): PQprepare blocks it
		// while its other connections hold every server connection.
		c.deferred = append(c.deferred, ref)
		return nil, true, nil
	}
	if err == nil {
		return a, false, nil
	}
	// The batch fails here: the Parses in it never happened.
	c.mu.Lock()
	for _, d := range append(c.deferred, ref) {
		if d.newStmt && c.stmts[d.parse.Client] == d.stmt {
			delete(c.stmts, d.parse.Client)
		}
	}
	c.mu.Unlock()
	c.deferred = c.deferred[:0]
	if err := c.r.Skip(); err != nil {
		return nil, true, err
	}
	ce := serverErrorFor(err, sevError, c.db)
	c.log.Warn("no server connection for client", zap.String("sqlstate", ce.code), zap.Error(err))
	switch typ {
	case wire.Query, wire.FunctionCall, wire.Sync:
		return nil, true, c.sendError(ce, true)
	}
	c.failing = true
	return nil, true, c.sendError(ce, false)
}

// writeToServer writes what pgpoolx puts first (a Close, a Parse), then the
// message, and flushes at protocol boundaries or when the client has
// nothing more buffered, so a pipeline goes out in one write. Server-side
// failures come back as *wire.WriteError.
func (c *client) writeToServer(srv *pool.Conn, out outMsg, pre []byte) error {
	b := append(c.scratch[:0], pre...)
	switch {
	case out.body != nil:
		b = wire.AppendHeader(b, out.typ, len(out.body))
		b = append(b, out.body...)
	case out.prefix != nil:
		n := len(out.portal) + 1 + len(out.stmtName) + 1
		b = wire.AppendHeader(b, out.typ, n+c.r.Remaining()-len(out.prefix))
		b = append(append(b, out.portal...), 0)
		b = append(append(b, out.stmtName...), 0)
		if err := c.r.Consume(len(out.prefix)); err != nil {
			return err
		}
	}
	c.scratch = b[:0]
	if len(b) > 0 {
		if _, err := srv.W.Write(b); err != nil {
			return &wire.WriteError{Err: err}
		}
	}
	switch {
	case out.body != nil:
	case out.prefix != nil:
		if err := c.r.CopyRest(srv.W); err != nil {
			return err
		}
	default:
		if err := c.r.Forward(srv.W); err != nil {
			return err
		}
	}
	flush := c.r.Buffered() == 0
	switch out.typ {
	case wire.Sync, wire.Query, wire.Flush, wire.FunctionCall, wire.CopyDone, wire.CopyFail:
		flush = true
	}
	if flush {
		if err := srv.W.Flush(); err != nil {
			return &wire.WriteError{Err: err}
		}
	}
	return nil
}

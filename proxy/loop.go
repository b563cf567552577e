package proxy

import (
	"context"
	"errors"
	"net"
	"time"

	"go.uber.org/zap"

	"github.com/pgpoolx/pgpoolx/config"
	"github.com/pgpoolx/pgpoolx/pool"
	"github.com/pgpoolx/pgpoolx/session"
	"github.com/pgpoolx/pgpoolx/wire"
)

// loop reads the client's messages and sends each to the server
// connection the client holds, taking one from the pool when a
// transaction or batch starts. It returns when the client leaves.
func (c *client) loop(ctx context.Context) error {
	idleTimeout := c.srv.cfg.ClientIdleTimeout.D()
	for {
		if idleTimeout > 0 {
			c.mu.Lock()
			attached := c.att != nil
			c.mu.Unlock()
			if attached {
				c.netConn.SetReadDeadline(time.Time{})
			} else {
				c.netConn.SetReadDeadline(time.Now().Add(idleTimeout))
			}
		}
		typ, n, err := c.r.Next()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return fatalf(codeIdleSessionTimeout, "terminating connection due to client_idle_timeout (%s)", idleTimeout)
			}
			if errors.Is(err, wire.ErrTooLarge) || errors.Is(err, wire.ErrBadLength) {
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

// outMsg is what forward sends to the server for one client message:
// a body read whole (and maybe rewritten), or a Bind whose statement name
// is replaced while the rest streams, or (neither set) the message as it
// came.
type outMsg struct {
	typ      byte
	body     []byte // the whole body to send instead of streaming
	prefix   []byte // Bind: the client's portal and statement names
	portal   []byte // Bind: the portal name, kept
	stmtName string // Bind: the server-side statement name to send
}

// forward sends one client message, whose header was just read, to the
// client's server connection. In transaction mode it keeps the client's
// prepared statements valid on whatever server connection it holds:
// named statements are renamed to shared server-side names and prepared
// there first when missing; the unnamed statement is prepared again when
// the server connection lost it.
func (c *client) forward(ctx context.Context, typ byte, n int) error {
	out := outMsg{typ: typ}
	var (
		stmt       *session.Statement // the client's named statement involved
		newStmt    bool               // Parse of a named statement
		unnamedRef bool               // message uses the unnamed statement
		unnamedNew bool               // Parse of the unnamed statement
	)
	if c.mode == config.PoolModeTransaction {
		var err error
		if stmt, newStmt, unnamedRef, unnamedNew, err = c.readStatementRef(typ, n, &out); err != nil {
			return err
		}
	}

	c.mu.Lock()
	a := c.att
	c.mu.Unlock()
	if a == nil {
		switch {
		case typ == wire.CopyData || typ == wire.CopyDone || typ == wire.CopyFail || typ == wire.Flush && len(c.deferred) == 0:
			// Outside a COPY the server ignores these; with no server
			// connection held there is nothing to flush.
			return c.r.Skip()
		case typ == wire.Sync && len(c.deferred) > 0:
			// A batch of named Parses alone: answer it here. Each statement
			// is prepared on a server connection when first used.
			return c.answerDeferred()
		case newStmt && len(c.deferred) > 0:
			c.deferred = append(c.deferred, stmt)
			return nil
		}
		var err error
		a, err = c.attach(ctx, true, !newStmt)
		if errors.Is(err, pool.ErrWouldWait) {
			// Waiting for a server here could deadlock a client that drives
			// many connections from one thread (pgbench): PQprepare blocks
			// it while its other connections hold every server connection.
			c.deferred = append(c.deferred, stmt)
			return nil
		}
		if err != nil {
			c.deferred = c.deferred[:0]
			if err := c.r.Skip(); err != nil {
				return err
			}
			ce := serverErrorFor(err, sevError, c.db)
			c.log.Warn("no server connection for client", zap.String("sqlstate", ce.code), zap.Error(err))
			switch typ {
			case wire.Query, wire.FunctionCall, wire.Sync:
				return c.sendError(ce, true)
			}
			c.failing = true
			return c.sendError(ce, false)
		}
	}
	srv := a.srv

	// Decide what goes ahead of the message, and record it all before
	// writing, so the relay never sees a reply it cannot place.
	pre := c.preBuf[:0]
	c.mu.Lock()
	for _, d := range c.deferred {
		pre = c.prepareAhead(pre, srv, d, false)
	}
	c.deferred = c.deferred[:0]
	switch {
	case unnamedNew:
		c.unnamedToken = c.srv.unnamedTokens.Add(1)
		srv.UnnamedToken = c.unnamedToken
	case unnamedRef && c.unnamedToken != 0 && srv.UnnamedToken != c.unnamedToken:
		pre = appendMsg(pre, wire.Parse, c.unnamedParse)
		c.track.InjectedParse("")
		srv.UnnamedToken = c.unnamedToken
	case newStmt:
		if _, ok := srv.Prepared[stmt.ServerName]; ok {
			// Prepare it afresh under its name.
			pre = appendCloseStatement(pre, stmt.ServerName)
			c.track.InjectedClose()
		}
		srv.Prepared[stmt.ServerName] = struct{}{}
	case stmt != nil:
		if _, ok := srv.Prepared[stmt.ServerName]; !ok {
			pre = c.prepareAhead(pre, srv, stmt, true)
		}
	case typ == wire.Query:
		srv.UnnamedToken = 0 // a simple query drops the unnamed statement
	}
	parsed := ""
	if newStmt {
		parsed = stmt.ServerName
	}
	c.track.ClientSent(typ, parsed)
	c.mu.Unlock()
	c.preBuf = pre[:0]

	srv.WriteMu.Lock()
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

// prepareAhead appends a Parse of st for srv, preceded by a Close when srv
// has it already (a client's own Parse must really run). With injected,
// the ParseComplete is pgpoolx's; otherwise it is the client's (a Parse it
// sent earlier and pgpoolx held back). Call with c.mu held.
func (c *client) prepareAhead(pre []byte, srv *pool.Conn, st *session.Statement, injected bool) []byte {
	if _, ok := srv.Prepared[st.ServerName]; ok && !injected {
		pre = appendCloseStatement(pre, st.ServerName)
		c.track.InjectedClose()
	}
	pre = appendMsg(pre, wire.Parse, st.Parse)
	if injected {
		c.track.InjectedParse(st.ServerName)
	} else {
		c.track.ClientSent(wire.Parse, st.ServerName)
	}
	srv.Prepared[st.ServerName] = struct{}{}
	return pre
}

// answerDeferred answers a Sync that ends a batch of held-back Parses.
func (c *client) answerDeferred() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	for range c.deferred {
		c.w.Write([]byte{wire.ParseComplete, 0, 0, 0, 4})
	}
	c.deferred = c.deferred[:0]
	c.w.Write([]byte{wire.ReadyForQuery, 0, 0, 0, 5, wire.TxIdle})
	return c.w.Flush()
}

// appendCloseStatement appends a Close message for a prepared statement.
func appendCloseStatement(dst []byte, name string) []byte {
	dst = wire.AppendHeader(dst, wire.Close, len(name)+2)
	return append(append(append(dst, 'S'), name...), 0)
}

// appendMsg appends a whole message.
func appendMsg(dst []byte, typ byte, body []byte) []byte {
	return append(wire.AppendHeader(dst, typ, len(body)), body...)
}

// readStatementRef looks at the statement a Parse, Bind, Describe or Close
// names and fills out with what to send instead of the client's bytes.
func (c *client) readStatementRef(typ byte, n int, out *outMsg) (stmt *session.Statement, newStmt, unnamedRef, unnamedNew bool, err error) {
	switch typ {
	case wire.Parse:
		body, err := c.r.ReadBody(c.msgBuf[:0])
		if err != nil {
			return nil, false, false, false, err
		}
		c.msgBuf = body[:0]
		name, rest, err := session.SplitParse(body)
		if err != nil {
			return nil, false, false, false, fatalf(codeProtocolViolation, "%v", err)
		}
		if len(name) == 0 {
			c.unnamedParse = append(c.unnamedParse[:0], body...)
			out.body = c.unnamedParse
			return nil, false, false, true, nil
		}
		stmt = session.NewStatement(rest)
		c.stmts[string(name)] = stmt
		out.body = stmt.Parse
		return stmt, true, false, false, nil
	case wire.Bind:
		head, err := c.r.Peek(512)
		if err != nil {
			return nil, false, false, false, err
		}
		portal, rest, ok := wire.CString(head)
		if !ok {
			return nil, false, false, false, nil
		}
		name, _, ok := wire.CString(rest)
		switch {
		case !ok:
		case len(name) == 0:
			unnamedRef = true
		default:
			if stmt = c.stmts[string(name)]; stmt != nil {
				out.prefix = head[:len(portal)+1+len(name)+1]
				out.portal = portal
				out.stmtName = stmt.ServerName
			}
		}
		return stmt, false, unnamedRef, false, nil
	case wire.Describe, wire.Close:
		if n > 1024 {
			return nil, false, false, false, nil // no name pgpoolx knows: pass it on
		}
		body, err := c.r.ReadBody(c.msgBuf[:0])
		if err != nil {
			return nil, false, false, false, err
		}
		c.msgBuf = body[:0]
		out.body = body
		if len(body) < 2 || body[0] != 'S' {
			return nil, false, false, false, nil // a portal: nothing to rewrite
		}
		name, _, ok := wire.CString(body[1:])
		switch {
		case !ok:
		case len(name) == 0 && typ == wire.Describe:
			unnamedRef = true
		case len(name) == 0: // Close of the unnamed statement
			c.unnamedToken = 0
		case typ == wire.Describe:
			if stmt = c.stmts[string(name)]; stmt != nil {
				out.body = appendStmtRef(c.refBuf[:0], 'S', stmt.ServerName)
				c.refBuf = out.body[:0]
			}
		default:
			// The server-side statement may be shared: forget only the
			// client's name, but let the server answer in order.
			delete(c.stmts, string(name))
			out.body = appendStmtRef(c.refBuf[:0], 'S', session.ClosedName)
			c.refBuf = out.body[:0]
		}
		return stmt, false, unnamedRef, false, nil
	}
	return nil, false, false, false, nil
}

// appendStmtRef appends a Describe/Close body naming a statement or portal.
func appendStmtRef(dst []byte, kind byte, name string) []byte {
	return append(append(append(dst, kind), name...), 0)
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

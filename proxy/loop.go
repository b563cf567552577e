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

// Pin reasons pgpoolx logs (the reason code of a pin).
const (
	pinPreparedStatement = "prepared_statement"
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

// forward sends one client message, whose header was just read, to the
// client's server connection.
func (c *client) forward(ctx context.Context, typ byte, n int) error {
	var body []byte // set when the body was read whole
	refersUnnamed := false
	pin := ""
	switch typ {
	case wire.Parse:
		head, err := c.r.Peek(256)
		if err != nil {
			return err
		}
		if name, _, ok := wire.CString(head); ok && len(name) == 0 {
			if body, err = c.r.ReadBody(c.unnamedParse[:0]); err != nil {
				return err
			}
			c.unnamedParse = body
		} else if c.mode == config.PoolModeTransaction {
			pin = pinPreparedStatement
		}
	case wire.Bind:
		head, err := c.r.Peek(512)
		if err != nil {
			return err
		}
		if _, rest, ok := wire.CString(head); ok {
			stmt, _, ok := wire.CString(rest)
			refersUnnamed = ok && len(stmt) == 0
		}
	case wire.Describe:
		head, err := c.r.Peek(2)
		if err != nil {
			return err
		}
		refersUnnamed = n == 2 && head[0] == 'S' && head[1] == 0
	}

	c.mu.Lock()
	a := c.att
	c.mu.Unlock()
	if a == nil {
		switch typ {
		case wire.CopyData, wire.CopyDone, wire.CopyFail, wire.Flush:
			// Outside a COPY the server ignores these; with no server
			// connection held there is nothing to flush.
			return c.r.Skip()
		}
		var err error
		if a, err = c.attach(ctx, true); err != nil {
			if body == nil {
				if err := c.r.Skip(); err != nil {
					return err
				}
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

	c.mu.Lock()
	inject := refersUnnamed && c.unnamedToken != 0 && srv.UnnamedToken != c.unnamedToken && c.track.StartsGroup()
	if inject {
		c.track.InjectedParse()
	}
	c.track.ClientSent(typ)
	newPin := pin != "" && c.pin == ""
	if newPin {
		c.pin = pin
	}
	c.mu.Unlock()
	if newPin {
		c.log.Info("client pinned", zap.String("reason", pin), zap.Uint32("server_pid", srv.PID))
	}

	switch {
	case typ == wire.Parse && body != nil:
		c.unnamedToken = c.srv.unnamedTokens.Add(1)
		srv.UnnamedToken = c.unnamedToken
	case inject:
		srv.UnnamedToken = c.unnamedToken
	case typ == wire.Query:
		srv.UnnamedToken = 0 // a simple query drops the unnamed statement
	}

	srv.WriteMu.Lock()
	err := c.writeToServer(srv, typ, body, inject)
	srv.WriteMu.Unlock()
	var we *wire.WriteError
	if errors.As(err, &we) {
		// The server side broke: closing it makes the relay report it.
		srv.Close()
		return nil
	}
	return err
}

// writeToServer writes the message (after the client's unnamed Parse when
// inject is set) and flushes at protocol boundaries or when the client has
// nothing more buffered, so a pipeline goes out in one write. Server-side
// failures come back as *wire.WriteError.
func (c *client) writeToServer(srv *pool.Conn, typ byte, body []byte, inject bool) error {
	if inject {
		c.scratch = wire.AppendHeader(c.scratch[:0], wire.Parse, len(c.unnamedParse))
		c.scratch = append(c.scratch, c.unnamedParse...)
		if _, err := srv.W.Write(c.scratch); err != nil {
			return &wire.WriteError{Err: err}
		}
	}
	if body != nil {
		c.scratch = wire.AppendHeader(c.scratch[:0], typ, len(body))
		c.scratch = append(c.scratch, body...)
		if _, err := srv.W.Write(c.scratch); err != nil {
			return &wire.WriteError{Err: err}
		}
	} else if err := c.r.Forward(srv.W); err != nil {
		return err
	}
	flush := c.r.Buffered() == 0
	switch typ {
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

package pool

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/pgpoolx/pgpoolx/wire"
)

// Conn is one server connection. While a client holds it, the client's
// goroutine writes W (under WriteMu) and the client's relay goroutine reads
// R; while it sits in the pool, nobody touches either.
type Conn struct {
	netConn net.Conn
	R       *wire.Reader  // read by the holder's server-to-client relay
	W       *bufio.Writer // written by the holder's client loop, under WriteMu
	// WriteMu is held for every write and flush of W, so that whoever
	// releases the connection can wait for the last write to finish.
	WriteMu sync.Mutex

	PID       uint32 // the server's backend process id
	SecretKey []byte // the server's cancel key

	// Params are the values of reported parameters as the server last sent
	// them in ParameterStatus messages.
	Params map[string]string
	// Current are the settings changed in this session (pg_settings source
	// 'session'), by lowercase name. The map is replaced, never modified.
	Current map[string]string
	// Baseline is Current right after the init query.
	Baseline map[string]string
	// Prepared holds the server-side names of the statements pgpoolx has
	// prepared here (or sent a Parse for, in a group not yet answered).
	Prepared *Statements
	// UnnamedToken names the client unnamed statement that the server's
	// unnamed prepared statement holds now (0: none that pgpoolx knows).
	UnnamedToken uint64

	pool     *Pool
	gen      uint64 // the pool's options generation it was dialed with
	created  time.Time
	lastUsed time.Time
	scratch  []byte
	values   [][]byte
}

// Pool returns the pool the connection belongs to.
func (c *Conn) Pool() *Pool { return c.pool }

// Addr returns the server's network address (for cancel requests).
func (c *Conn) Addr() net.Addr { return c.netConn.RemoteAddr() }

// LocalAddr returns pgpoolx's end of the connection.
func (c *Conn) LocalAddr() net.Addr { return c.netConn.LocalAddr() }

// Created is when the connection was opened.
func (c *Conn) Created() time.Time { return c.created }

// Close closes the socket at once; any goroutine blocked on it returns.
func (c *Conn) Close() error { return c.netConn.Close() }

// SetDeadline sets the socket's read and write deadline.
func (c *Conn) SetDeadline(t time.Time) error { return c.netConn.SetDeadline(t) }

// ErrNotIdle is returned by Query when the server is left inside a
// transaction (or without a valid status); the connection must not be
// reused.
var ErrNotIdle = errors.New("server is not idle after the query")

// ServerError is an ErrorResponse the server sent for a request pgpoolx made.
type ServerError struct{ Fields pgproto3.ErrorResponse }

func (e *ServerError) Error() string {
	return fmt.Sprintf("server error %s: %s", e.Fields.Code, e.Fields.Message)
}

// Exec runs sql as a simple query on a connection that no relay is reading,
// eating every reply. It records ParameterStatus messages in Params. The
// first ErrorResponse is returned as a *ServerError after ReadyForQuery;
// the connection is then still usable. Other errors leave it broken.
func (c *Conn) Exec(ctx context.Context, sql string) error { return c.Query(ctx, sql, nil) }

// Query is Exec that also hands every row to onRow (if not nil). The
// values are valid only during the call; NULL is nil.
func (c *Conn) Query(ctx context.Context, sql string, onRow func(values [][]byte)) error {
	// Callers always give a deadline; a connection whose query was cut
	// short by it is broken and gets destroyed.
	if deadline, ok := ctx.Deadline(); ok {
		c.netConn.SetDeadline(deadline)
		defer c.netConn.SetDeadline(time.Time{})
	}
	// A simple query drops the server's unnamed statement.
	c.UnnamedToken = 0

	c.WriteMu.Lock()
	c.scratch = wire.AppendHeader(c.scratch[:0], wire.Query, len(sql)+1)
	c.scratch = append(append(c.scratch, sql...), 0)
	_, err := c.W.Write(c.scratch)
	if err == nil {
		err = c.W.Flush()
	}
	c.WriteMu.Unlock()
	if err != nil {
		return fmt.Errorf("send query: %w", err)
	}

	var serverErr *ServerError
	for {
		typ, _, err := c.R.Next()
		if err != nil {
			return fmt.Errorf("read reply: %w", err)
		}
		switch typ {
		case wire.ReadyForQuery:
			body, err := c.R.ReadBody(c.scratch)
			if err != nil {
				return fmt.Errorf("read reply: %w", err)
			}
			if len(body) != 1 || body[0] != wire.TxIdle {
				return ErrNotIdle
			}
			if serverErr != nil {
				return serverErr
			}
			return nil
		case wire.ErrorResponse:
			body, err := c.R.ReadBody(c.scratch)
			if err != nil {
				return fmt.Errorf("read reply: %w", err)
			}
			if serverErr == nil {
				serverErr = &ServerError{}
				if err := serverErr.Fields.Decode(body); err != nil {
					return fmt.Errorf("decode error response: %w", err)
				}
			}
		case wire.ParameterStatus:
			body, err := c.R.ReadBody(c.scratch)
			if err != nil {
				return fmt.Errorf("read reply: %w", err)
			}
			if _, _, err := c.RecordParameterStatus(body); err != nil {
				return err
			}
		case wire.DataRow:
			if onRow == nil {
				if err := c.R.Skip(); err != nil {
					return fmt.Errorf("read reply: %w", err)
				}
				break
			}
			body, err := c.R.ReadBody(c.scratch)
			if err != nil {
				return fmt.Errorf("read reply: %w", err)
			}
			c.scratch = body[:0]
			values, err := decodeDataRow(body, c.values[:0])
			if err != nil {
				return err
			}
			c.values = values[:0]
			onRow(values)
		default:
			if err := c.R.Skip(); err != nil {
				return fmt.Errorf("read reply: %w", err)
			}
		}
	}
}

// RecordParameterStatus records a ParameterStatus body in Params and
// returns the parameter's name and new value.
func (c *Conn) RecordParameterStatus(body []byte) (name, value string, err error) {
	n, rest, ok := wire.CString(body)
	v, _, ok2 := wire.CString(rest)
	if !ok || !ok2 {
		return "", "", errors.New("malformed ParameterStatus from server")
	}
	name, value = string(n), string(v)
	c.Params[name] = value
	return name, value, nil
}

// decodeDataRow splits a DataRow body into its values.
func decodeDataRow(body []byte, values [][]byte) ([][]byte, error) {
	bad := errors.New("malformed DataRow from server")
	if len(body) < 2 {
		return nil, bad
	}
	n := int(binary.BigEndian.Uint16(body))
	body = body[2:]
	for range n {
		if len(body) < 4 {
			return nil, bad
		}
		l := int(int32(binary.BigEndian.Uint32(body)))
		body = body[4:]
		if l < 0 {
			values = append(values, nil)
			continue
		}
		if l > len(body) {
			return nil, bad
		}
		values = append(values, body[:l])
		body = body[l:]
	}
	return values, nil
}

// NetConn returns the connection's socket.
func (c *Conn) NetConn() net.Conn { return c.netConn }

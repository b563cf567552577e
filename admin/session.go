package admin

import (
	"bufio"
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgpoolx/pgpoolx/wire"
)

// maxQueryLen bounds a console query; commands are short.
const maxQueryLen = 64 << 10

// Serve runs a console session whose startup is done: it answers simple
// queries until the client sends Terminate or fails. Each command of a
// query string runs in turn; the first that fails ends it with an error.
// The extended protocol is refused (psql does not use it here).
func Serve(ctx context.Context, r *wire.Reader, w *bufio.Writer, b Backend) error {
	var buf []byte
	var after []func() // to run once the answers are sent
	failing := false   // an extended-protocol message was refused: skip to Sync
	for {
		typ, n, err := r.Next()
		if err != nil {
			return err
		}
		switch typ {
		case wire.Terminate:
			return nil
		case wire.Query:
			if n > maxQueryLen {
				if err := r.Skip(); err != nil {
					return err
				}
				buf = appendError(buf[:0], &Error{Code: "54000", Message: fmt.Sprintf("admin console query too long (%d bytes, at most %d)", n, maxQueryLen)})
				buf = wire.AppendReadyForQuery(buf, wire.TxIdle)
				break
			}
			body, err := r.ReadBody(buf[:0])
			if err != nil {
				return err
			}
			query := string(body[:max(len(body)-1, 0)]) // without the NUL
			buf, after = runQuery(ctx, b, query, body[:0])
			buf = wire.AppendReadyForQuery(buf, wire.TxIdle)
		case wire.Sync:
			if err := r.Skip(); err != nil {
				return err
			}
			failing = false
			buf = wire.AppendReadyForQuery(buf[:0], wire.TxIdle)
		case wire.Flush:
			if err := r.Skip(); err != nil {
				return err
			}
			buf = buf[:0]
		default:
			if err := r.Skip(); err != nil {
				return err
			}
			buf = buf[:0]
			if !failing {
				failing = true
				buf = appendError(buf, &Error{Code: codeFeatureUnsupported,
					Message: "the admin console speaks only the simple query protocol"})
			}
		}
		if _, err := w.Write(buf); err != nil {
			return err
		}
		if err := w.Flush(); err != nil {
			return err
		}
		for _, f := range after {
			f()
		}
		after = nil
	}
}

// runQuery runs each command of a query string and appends the answers;
// after lists what must run once they are sent.
func runQuery(ctx context.Context, b Backend, query string, dst []byte) (_ []byte, after []func()) {
	cmds := Split(query)
	if len(cmds) == 0 {
		dst, _ = (&pgproto3.EmptyQueryResponse{}).Encode(dst)
		return dst, nil
	}
	for _, text := range cmds {
		cmd, err := Parse(text)
		var res *Result
		if err == nil {
			res, err = Run(ctx, b, cmd)
		}
		if err != nil {
			return appendError(dst, err), after
		}
		dst = res.appendTo(dst)
		if res.After != nil {
			after = append(after, res.After)
		}
	}
	return dst, after
}

func appendError(dst []byte, err error) []byte {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Code: codeObjectState, Message: err.Error()}
	}
	msg := pgproto3.ErrorResponse{Severity: "ERROR", SeverityUnlocalized: "ERROR", Code: e.Code, Message: e.Message, Hint: e.Hint}
	dst, _ = msg.Encode(dst)
	return dst
}

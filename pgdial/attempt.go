package pgdial

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/pgpoolx/pgpoolx/wire"
)

// Answers to SSLRequest, a single byte each.
const (
	sslYes byte = 'S'
	sslNo  byte = 'N'
)

// attempt makes one connection. tlsConf nil means no SSLRequest; otherwise
// it asks for TLS, and goes on without it when the server says no unless
// tlsRequired.
func attempt(ctx context.Context, cfg *Config, addr string, tlsConf *tls.Config, tlsRequired bool) (_ *Conn, err error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, ioError(ctx, "connecting", err)
	}
	if cfg.Wrap != nil {
		if wc := cfg.Wrap(nc); wc != nil {
			nc = wc
		}
	}
	// The socket's deadline bounds every read and write below; cancelling
	// ctx moves it into the past, which unblocks them.
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	defer func() {
		if !stop() && err == nil {
			// ctx ended as we finished; the deadline may be in the past.
			err = ioError(ctx, "startup", ctx.Err())
		}
		if err != nil {
			nc.Close()
		}
	}()

	var conn net.Conn = nc
	if tlsConf != nil {
		if conn, err = negotiateTLS(ctx, nc, cfg, tlsConf, tlsRequired); err != nil {
			return nil, err
		}
	}
	br := bufio.NewReaderSize(conn, ReadBufferSize)
	s := startup{r: wire.NewReader(br, maxMessageLen), w: conn, cfg: cfg, rand: rand.Reader}
	if err := s.run(ctx); err != nil {
		return nil, err
	}
	if err := conn.SetDeadline(time.Time{}); err != nil {
		return nil, ioError(ctx, "startup", err)
	}
	_, isTLS := conn.(*tls.Conn)
	return &Conn{NetConn: conn, Reader: br, PID: s.pid, SecretKey: s.secretKey, Params: s.params, TLS: isTLS}, nil
}

// negotiateTLS sends SSLRequest and, if the server agrees, does the TLS
// handshake. It returns nc itself when the server says no and TLS is not
// required.
func negotiateTLS(ctx context.Context, nc net.Conn, cfg *Config, conf *tls.Config, required bool) (net.Conn, error) {
	const step = "TLS negotiation"
	var req [8]byte
	binary.BigEndian.PutUint32(req[0:], 8)
	binary.BigEndian.PutUint32(req[4:], wire.SSLRequestCode)
	if _, err := nc.Write(req[:]); err != nil {
		return nil, ioError(ctx, step, err)
	}
	// One byte straight from the socket, not through a buffer: anything the
	// server sent after it must go to the TLS handshake (which will fail),
	// never be read later as if it had come over TLS (CVE-2021-23222).
	var answer [1]byte
	if _, err := io.ReadFull(nc, answer[:]); err != nil {
		return nil, ioError(ctx, step, err)
	}
	switch answer[0] {
	case sslYes:
		tc := tls.Client(nc, conf)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, ioError(ctx, "TLS handshake", err)
		}
		return tc, nil
	case sslNo:
		if required {
			return nil, fmt.Errorf("%w, and sslmode=%s insists on it (is ssl on in the server's postgresql.conf?)", ErrTLSRefused, cfg.SSLMode)
		}
		return nc, nil
	case wire.ErrorResponse:
		// A server that failed before it could answer (out of processes,
		// say) sends an ErrorResponse; the type byte is already read.
		r := wire.NewReader(bufio.NewReader(io.MultiReader(bytes.NewReader(answer[:]), nc)), maxMessageLen)
		s := startup{r: r, step: step}
		if _, err := s.next(); err != nil {
			return nil, ioError(ctx, step, err)
		}
		return nil, s.serverError()
	}
	return nil, fmt.Errorf("%w: it answered SSLRequest with byte %q, not S or N (is it a PostgreSQL server?)", ErrProtocol, answer[0])
}

// ioError says what an I/O error during step means: ctx ended, the server
// hung up, or something else.
func ioError(ctx context.Context, step string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("gave up during %s: %w", step, ctxErr)
	}
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		// Only ctx sets deadlines on the socket, and its own timer may not
		// have marked it done yet.
		return fmt.Errorf("gave up during %s: %w", step, context.DeadlineExceeded)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return fmt.Errorf("the server closed the connection during %s: %w", step, err)
	case errors.Is(err, wire.ErrTooLarge), errors.Is(err, wire.ErrBadLength):
		return fmt.Errorf("%w during %s: %w", ErrProtocol, step, err)
	}
	return fmt.Errorf("%s: %w", step, err)
}

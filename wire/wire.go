// Package wire frames PostgreSQL v3 protocol messages on a buffered stream.
//
// A proxy mostly moves messages without looking inside them. Reader reads
// the five-byte header of each message and then either hands the caller the
// whole body (for the few messages the proxy must understand) or streams the
// body straight to a writer in buffer-sized pieces, so a 1 GiB DataRow or
// CopyData never has to fit in memory.
package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// HeaderLen is the size of a regular message header: a type byte and a
// four-byte length that counts itself but not the type byte.
const HeaderLen = 5

// ErrTooLarge reports a message longer than the reader's limit.
var ErrTooLarge = errors.New("message too large")

// ErrBadLength reports a message length that cannot be valid.
var ErrBadLength = errors.New("invalid message length")

// Reader reads message headers and bodies from a bufio.Reader. A body must
// be consumed (ReadBody, Forward or Skip) before the next call to Next.
type Reader struct {
	r       *bufio.Reader
	hdr     [HeaderLen]byte
	typ     byte
	left    int // body bytes of the current message not yet consumed
	maxBody int
}

// NewReader returns a Reader on r that refuses messages whose body exceeds
// maxBody bytes (0 means PostgreSQL's own ceiling of 1 GiB).
func NewReader(r *bufio.Reader, maxBody int) *Reader {
	if maxBody <= 0 {
		maxBody = 1 << 30
	}
	return &Reader{r: r, maxBody: maxBody}
}

// Reset makes the reader read from r. Call it only between messages, with
// nothing of the next one read yet.
func (m *Reader) Reset(r *bufio.Reader) { m.r = r }

// Buffered reports how many bytes can be read without touching the socket.
// Callers flush their writers when it is zero, so a pipeline is answered in
// one write and a lone message is never held back.
func (m *Reader) Buffered() int { return m.r.Buffered() }

// Next reads the header of the next message and returns its type and body
// length. Any unconsumed part of the previous body is skipped first.
func (m *Reader) Next() (typ byte, bodyLen int, err error) {
	if m.left > 0 {
		if err := m.Skip(); err != nil {
			return 0, 0, err
		}
	}
	if _, err := io.ReadFull(m.r, m.hdr[:]); err != nil {
		return 0, 0, err
	}
	n := int(int32(binary.BigEndian.Uint32(m.hdr[1:]))) - 4
	if n < 0 {
		return 0, 0, fmt.Errorf("%w: %d for message type %q", ErrBadLength, n+4, m.hdr[0])
	}
	if n > m.maxBody {
		return 0, 0, fmt.Errorf("%w: %q message of %d bytes exceeds the limit of %d", ErrTooLarge, m.hdr[0], n, m.maxBody)
	}
	m.typ, m.left = m.hdr[0], n
	return m.typ, n, nil
}

// ReadBody reads the whole current body into buf (grown as needed) and
// returns it. The result aliases buf.
func (m *Reader) ReadBody(buf []byte) ([]byte, error) {
	if cap(buf) < m.left {
		buf = make([]byte, m.left)
	}
	buf = buf[:m.left]
	_, err := io.ReadFull(m.r, buf)
	m.left = 0
	return buf, err
}

// Peek returns up to n bytes of the current body without consuming them.
// It returns fewer when the body is shorter or the buffer is smaller.
func (m *Reader) Peek(n int) ([]byte, error) {
	n = min(n, m.left, m.r.Size())
	return m.r.Peek(n)
}

// WriteError wraps a failure of the destination in Forward, to tell it
// from a failure to read the source.
type WriteError struct{ Err error }

func (e *WriteError) Error() string { return "write: " + e.Err.Error() }
func (e *WriteError) Unwrap() error { return e.Err }

// Forward writes the current message (header and body) to w, streaming the
// body through the reader's buffer. Errors of w come wrapped in
// *WriteError; others are the source's.
func (m *Reader) Forward(w *bufio.Writer) error {
	if _, err := w.Write(m.hdr[:]); err != nil {
		return &WriteError{err}
	}
	return m.copyBody(w)
}

// Skip discards the rest of the current body.
func (m *Reader) Skip() error {
	_, err := m.r.Discard(m.left)
	m.left = 0
	return err
}

func (m *Reader) copyBody(w io.Writer) error {
	for m.left > 0 {
		if m.r.Buffered() == 0 {
			if _, err := m.r.Peek(1); err != nil {
				return err
			}
		}
		chunk, _ := m.r.Peek(min(m.left, m.r.Buffered()))
		if _, err := w.Write(chunk); err != nil {
			return &WriteError{err}
		}
		m.r.Discard(len(chunk))
		m.left -= len(chunk)
	}
	return nil
}

// AppendHeader appends a message header for a body of bodyLen bytes.
func AppendHeader(dst []byte, typ byte, bodyLen int) []byte {
	return binary.BigEndian.AppendUint32(append(dst, typ), uint32(bodyLen+4))
}

// CString splits the NUL-terminated string at the start of b from the rest.
func CString(b []byte) (s []byte, rest []byte, ok bool) {
	for i, c := range b {
		if c == 0 {
			return b[:i], b[i+1:], true
		}
	}
	return nil, nil, false
}

// AppendParameterStatus appends a ParameterStatus message.
func AppendParameterStatus(dst []byte, name, value string) []byte {
	dst = AppendHeader(dst, ParameterStatus, len(name)+len(value)+2)
	dst = append(append(dst, name...), 0)
	return append(append(dst, value...), 0)
}

// Consume discards the next k bytes of the current body, which the caller
// has looked at with Peek.
func (m *Reader) Consume(k int) error {
	k = min(k, m.left)
	_, err := m.r.Discard(k)
	m.left -= k
	return err
}

// CopyRest streams what is left of the current body to w. Errors of w come
// wrapped in *WriteError.
func (m *Reader) CopyRest(w *bufio.Writer) error { return m.copyBody(w) }

// Remaining reports how many bytes of the current body are not consumed.
func (m *Reader) Remaining() int { return m.left }

// AppendReadyForQuery appends a ReadyForQuery message with status.
func AppendReadyForQuery(dst []byte, status byte) []byte {
	return append(dst, ReadyForQuery, 0, 0, 0, 5, status)
}

// AppendParseComplete appends a ParseComplete message.
func AppendParseComplete(dst []byte) []byte {
	return append(dst, ParseComplete, 0, 0, 0, 4)
}

// Whole reports, between messages, whether the next message is entirely
// in the buffer, and whether it can ever be (fits: it is no larger than
// the buffer). An event loop handles whole messages only, so reading one
// never waits.
func (m *Reader) Whole() (whole, fits bool) {
	if m.left > 0 {
		return false, false
	}
	b := m.r.Buffered()
	if b < HeaderLen {
		return false, true
	}
	hdr, _ := m.r.Peek(HeaderLen)
	n := int(int32(binary.BigEndian.Uint32(hdr[1:])))
	if n < 4 {
		return true, true // Next reports the bad length
	}
	return b >= 1+n, 1+n <= m.r.Size()
}

// Fill reads once into the buffer's free space, if it has any, and
// returns the reader's error (io.EOF, or the source's would-block error).
func (m *Reader) Fill() error {
	b := m.r.Buffered()
	if b >= m.r.Size() {
		return nil
	}
	_, err := m.r.Peek(b + 1)
	return err
}

// PeekType returns the type of the next message, between messages, when
// its header is buffered (else 0).
func (m *Reader) PeekType() byte {
	if m.left > 0 || m.r.Buffered() < HeaderLen {
		return 0
	}
	hdr, _ := m.r.Peek(1)
	return hdr[0]
}

// PeekBody returns up to n bytes of the next message's body, between
// messages, without consuming anything; the message must be whole in the
// buffer (Whole).
func (m *Reader) PeekBody(n int) ([]byte, error) {
	b, err := m.r.Peek(min(m.r.Buffered(), HeaderLen+n))
	if err != nil {
		return nil, err
	}
	if len(b) < HeaderLen {
		return nil, ErrBadLength
	}
	bodyLen := int(int32(binary.BigEndian.Uint32(b[1:]))) - 4
	b = b[HeaderLen:]
	if bodyLen < len(b) {
		b = b[:max(bodyLen, 0)]
	}
	return b, nil
}

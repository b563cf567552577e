// Package netloop runs sockets on an epoll event loop: one OS thread
// waits for readiness of many sockets and reads or writes each only when
// the kernel says it can, with no goroutine per connection.
//
// A Conn is a net.Conn with two modes. In blocking mode (the default) it
// behaves like any net.Conn, for code written in the usual style: a read
// that finds no data waits for the loop to signal readiness. In loop mode
// (SetHandler) its Handler is called on the loop's thread whenever the
// socket becomes readable or writable, reads return ErrWouldBlock instead
// of waiting, and writes never wait: what the socket cannot take is kept
// and sent when it becomes writable again.
//
// Sockets are registered edge-triggered. A read that returns less than it
// asked for has emptied the socket, so the loop never makes the
// speculative read that only returns EAGAIN; most transactions cost one
// read and one write on each socket, as in PgBouncer.
package netloop

import (
	"net"
)

// ErrWouldBlock is returned by reads in loop mode when the socket has
// nothing to read; the Handler is called again when it has. It is a
// temporary net.Error, so that a crypto/tls connection over a Conn in
// loop mode keeps a partly read record and stays usable: the next read
// goes on where this one stopped.
var ErrWouldBlock error = wouldBlock{}

type wouldBlock struct{}

func (wouldBlock) Error() string   { return "netloop: read would block" }
func (wouldBlock) Timeout() bool   { return false }
func (wouldBlock) Temporary() bool { return true }

var _ net.Error = wouldBlock{}

// Handler reacts to readiness of a Conn in loop mode. It runs on the
// loop's thread and must not block.
type Handler interface {
	// Ready is called when the socket may have become readable or
	// writable, or was closed (reads then fail).
	Ready()
}

var _ net.Conn = (*Conn)(nil)

//go:build !linux

package netloop

import (
	"errors"
	"net"
)

// Available reports whether this platform has the event loop.
const Available = false

var errUnsupported = errors.New("netloop: not supported on this platform")

// Loop is not available here; New fails.
type Loop struct{}

// New fails on this platform.
func New() (*Loop, error) { return nil, errUnsupported }

// Post runs f.
func (l *Loop) Post(f func()) { go f() }

// Adopt fails on this platform.
func (l *Loop) Adopt(nc net.Conn) (*Conn, error) { return nil, errUnsupported }

// Conn is never made on this platform.
type Conn struct{ net.Conn }

func (c *Conn) Loop() *Loop          { return nil }
func (c *Conn) SetHandler(h Handler) {}
func (c *Conn) MayHaveMore() bool    { return true }
func (c *Conn) Pending() int         { return 0 }

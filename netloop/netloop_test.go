//go:build linux

package netloop_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pgpoolx/pgpoolx/netloop"
)

// timeout bounds every wait in these tests, so that a lost wakeup fails
// the test instead of hanging it.
const timeout = 30 * time.Second

// newLoop starts a loop for one test. Loop has no Close: its thread stays
// parked in epoll_wait until the test binary exits.
func newLoop(tb testing.TB) *netloop.Loop {
	tb.Helper()
	l, err := netloop.New()
	if err != nil {
		tb.Fatal(err)
	}
	return l
}

// tcpPair returns both ends of a fresh TCP connection on 127.0.0.1: the
// dialing side and the accepted side.
func tcpPair(tb testing.TB) (client, server *net.TCPConn) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	type accepted struct {
		c   net.Conn
		err error
	}
	ch := make(chan accepted, 1)
	go func() {
		c, err := ln.Accept()
		ch <- accepted{c, err}
	}()
	cc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	a := <-ch
	if a.err != nil {
		cc.Close()
		tb.Fatal(a.err)
	}
	client, server = cc.(*net.TCPConn), a.c.(*net.TCPConn)
	tb.Cleanup(func() {
		client.Close()
		server.Close()
	})
	return client, server
}

// adopt moves nc to l.
func adopt(tb testing.TB, l *netloop.Loop, nc net.Conn) *netloop.Conn {
	tb.Helper()
	c, err := l.Adopt(nc)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// adopted returns a Conn on l made from the client side of a fresh TCP
// connection, and the server side, a plain net.Conn, as its peer. The
// peer's deadline keeps a test that loses bytes from hanging.
func adopted(tb testing.TB, l *netloop.Loop) (*netloop.Conn, *net.TCPConn) {
	tb.Helper()
	client, peer := tcpPair(tb)
	peer.SetDeadline(time.Now().Add(timeout))
	return adopt(tb, l, client), peer
}

type ioResult struct {
	n   int
	err error
}

// readFullAsync fills buf from r on a goroutine of its own.
func readFullAsync(r io.Reader, buf []byte) <-chan ioResult {
	ch := make(chan ioResult, 1)
	go func() {
		n, err := io.ReadFull(r, buf)
		ch <- ioResult{n, err}
	}()
	return ch
}

// readAfterWait reads len(msg) bytes from c in blocking mode: the read
// must wait for the peer, and then get msg once the peer writes it.
func readAfterWait(tb testing.TB, c *netloop.Conn, peer net.Conn, msg, what string) {
	tb.Helper()
	buf := make([]byte, len(msg))
	read := readFullAsync(c, buf)
	waitParked(tb, inConnWait)
	if _, err := peer.Write([]byte(msg)); err != nil {
		tb.Fatal(err)
	}
	if r := recv(tb, read, what); r.err != nil || string(buf) != msg {
		tb.Fatalf("%s = %q, %v; want %q, nil", what, buf, r.err, msg)
	}
}

// writeAsync writes p to w on a goroutine of its own.
func writeAsync(w io.Writer, p []byte) <-chan ioResult {
	ch := make(chan ioResult, 1)
	go func() {
		n, err := w.Write(p)
		ch <- ioResult{n, err}
	}()
	return ch
}

// recv takes a value from ch, failing the test after timeout.
func recv[T any](tb testing.TB, ch <-chan T, what string) T {
	tb.Helper()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case v := <-ch:
		return v
	case <-t.C:
		tb.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

// waitFor polls cond until it holds. Only for states that nothing
// signals; everything else waits on a channel.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// waitParked waits until a goroutine is parked in a select or channel
// receive inside frame (a function as a stack trace names it), so that a
// test can be sure it wakes a waiter rather than racing one that has not
// started to wait. Nothing signals that, so this reads goroutine dumps.
func waitParked(tb testing.TB, frame string) {
	tb.Helper()
	buf := make([]byte, 1<<20)
	waitFor(tb, "a goroutine parked in "+frame, func() bool {
		n := runtime.Stack(buf, true)
		for g := range strings.SplitSeq(string(buf[:n]), "\n\n") {
			header, _, _ := strings.Cut(g, "\n")
			parked := strings.Contains(header, "[select") || strings.Contains(header, "[chan receive")
			if parked && strings.Contains(g, frame) {
				return true
			}
		}
		return false
	})
}

const (
	inConnWait    = "netloop.(*Conn).wait("
	inRawConnRead = "netloop.rawConn.Read("
)

// fillPattern fills b with the counting stream from offset off: each
// aligned 4-byte word holds its own index, little-endian, so that a lost,
// doubled or reordered chunk shows wherever it falls.
func fillPattern(b []byte, off int) {
	i := 0
	for ; i < len(b) && (off+i)%4 != 0; i++ {
		b[i] = patternByte(off + i)
	}
	for ; i+4 <= len(b); i += 4 {
		binary.LittleEndian.PutUint32(b[i:], uint32((off+i)/4))
	}
	for ; i < len(b); i++ {
		b[i] = patternByte(off + i)
	}
}

func patternByte(i int) byte { return byte(uint32(i/4) >> (8 * (i % 4))) }

func pattern(off, n int) []byte {
	b := make([]byte, n)
	fillPattern(b, off)
	return b
}

// patternChecker is an io.Writer that checks what it gets against the
// counting stream.
type patternChecker struct {
	off  int
	want []byte
}

func (p *patternChecker) Write(b []byte) (int, error) {
	if cap(p.want) < len(b) {
		p.want = make([]byte, len(b))
	}
	want := p.want[:len(b)]
	fillPattern(want, p.off)
	if !bytes.Equal(b, want) {
		i := 0
		for b[i] == want[i] {
			i++
		}
		return i, fmt.Errorf("byte %d of the stream is %#x, want %#x", p.off+i, b[i], want[i])
	}
	p.off += len(b)
	return len(b), nil
}

// readPattern reads n bytes of the counting stream, from offset off, from r.
func readPattern(r io.Reader, off, n int) error {
	pc := &patternChecker{off: off}
	got, err := io.CopyBuffer(pc, io.LimitReader(r, int64(n)), make([]byte, 256<<10))
	if err != nil {
		return fmt.Errorf("after %d of %d bytes: %w", got, n, err)
	}
	if got != int64(n) {
		return fmt.Errorf("got %d of %d bytes", got, n)
	}
	return nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) && errors.As(err, &ne) && ne.Timeout()
}

// nopHandler puts a Conn in loop mode without reacting to anything.
type nopHandler struct{}

func (nopHandler) Ready() {}

// forwarder is a loop-mode Handler that reads the Conn until it would
// block on every Ready and hands a copy of each read to data. Ready runs
// on the loop's thread only, so buf and ended need no lock.
type forwarder struct {
	c     *netloop.Conn
	buf   []byte
	data  chan []byte
	end   chan error // the error that ended reading: io.EOF, net.ErrClosed ...
	ended bool
	// stale counts the times MayHaveMore was still true right after a
	// read returned ErrWouldBlock.
	stale atomic.Int32
}

func newForwarder(c *netloop.Conn) *forwarder {
	return &forwarder{
		c:    c,
		buf:  make([]byte, 16<<10),
		data: make(chan []byte, 1024),
		end:  make(chan error, 1),
	}
}

func (f *forwarder) Ready() {
	if f.ended {
		return
	}
	for {
		n, err := f.c.Read(f.buf)
		if n > 0 {
			f.data <- bytes.Clone(f.buf[:n])
		}
		if errors.Is(err, netloop.ErrWouldBlock) {
			if f.c.MayHaveMore() {
				f.stale.Add(1)
			}
			return
		}
		if err != nil {
			f.ended = true
			f.end <- err
			return
		}
	}
}

// collect takes n bytes from f.data.
func (f *forwarder) collect(tb testing.TB, n int) []byte {
	tb.Helper()
	got := make([]byte, 0, n)
	for len(got) < n {
		got = append(got, recv(tb, f.data, fmt.Sprintf("byte %d of %d", len(got), n))...)
	}
	if len(got) > n {
		tb.Fatalf("got %d bytes, want %d", len(got), n)
	}
	return got
}

func TestAdopt(t *testing.T) {
	l := newLoop(t)

	t.Run("takes over the socket", func(t *testing.T) {
		client, _ := tcpPair(t)
		laddr, raddr := client.LocalAddr().String(), client.RemoteAddr().String()
		c := adopt(t, l, client)
		if got := c.LocalAddr().String(); got != laddr {
			t.Errorf("LocalAddr() = %s, want %s", got, laddr)
		}
		if got := c.RemoteAddr().String(); got != raddr {
			t.Errorf("RemoteAddr() = %s, want %s", got, raddr)
		}
		if c.Loop() != l {
			t.Error("Loop() is not the loop that adopted the Conn")
		}
		if _, err := client.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Write on the adopted net.Conn: %v, want net.ErrClosed", err)
		}
	})

	t.Run("not TCP", func(t *testing.T) {
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		if c, err := l.Adopt(a); err == nil {
			c.Close()
			t.Fatal("Adopt(net.Pipe()) succeeded")
		}
	})
}

func TestBlockingRoundTrip(t *testing.T) {
	l := newLoop(t)
	// Sizes past the socket buffers make a blocking Write wait for the
	// socket to become writable.
	for _, size := range []int{1, 64, 64 << 10, 8 << 20} {
		t.Run(strconv.Itoa(size)+" bytes", func(t *testing.T) {
			c, peer := adopted(t, l)
			want := pattern(0, size)

			wrote := writeAsync(c, want)
			got := make([]byte, size)
			if _, err := io.ReadFull(peer, got); err != nil {
				t.Fatalf("peer read: %v", err)
			}
			if r := recv(t, wrote, "Write"); r.n != size || r.err != nil {
				t.Fatalf("Write = %d, %v; want %d, nil", r.n, r.err, size)
			}
			if !bytes.Equal(got, want) {
				t.Fatal("peer got other bytes than the Conn wrote")
			}

			peerWrote := writeAsync(peer, want)
			clear(got)
			if _, err := io.ReadFull(c, got); err != nil {
				t.Fatalf("Read: %v", err)
			}
			if r := recv(t, peerWrote, "peer write"); r.err != nil {
				t.Fatalf("peer write: %v", r.err)
			}
			if !bytes.Equal(got, want) {
				t.Fatal("the Conn read other bytes than the peer wrote")
			}
		})
	}
}

func TestBlockingReadWaitsForData(t *testing.T) {
	l := newLoop(t)
	c, peer := adopted(t, l)
	for i, msg := range []string{"first", "second, after a wait", "third"} {
		buf := make([]byte, len(msg))
		read := readFullAsync(c, buf)
		waitParked(t, inConnWait)
		select {
		case r := <-read:
			t.Fatalf("message %d: Read returned %d, %v before the peer wrote", i, r.n, r.err)
		default:
		}
		if _, err := peer.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		if r := recv(t, read, "Read"); r.err != nil {
			t.Fatalf("message %d: Read: %v", i, r.err)
		}
		if string(buf) != msg {
			t.Fatalf("message %d: Read %q, want %q", i, buf, msg)
		}
	}
}

func TestReadDeadline(t *testing.T) {
	l := newLoop(t)

	for _, tt := range []struct {
		name string
		in   time.Duration
	}{
		{"in the past", -time.Second},
		{"near future", 50 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, peer := adopted(t, l)
			start := time.Now()
			c.SetReadDeadline(start.Add(tt.in))
			n, err := c.Read(make([]byte, 16))
			elapsed := time.Since(start)
			if n != 0 || !isTimeout(err) {
				t.Fatalf("Read = %d, %v; want 0 and a timeout", n, err)
			}
			// A millisecond for the wall clock the deadline is kept in to
			// drift from the monotonic one elapsed is measured with.
			if tt.in > 0 && elapsed < tt.in-time.Millisecond {
				t.Errorf("Read timed out after %v, before its deadline of %v", elapsed, tt.in)
			}

			c.SetReadDeadline(time.Time{})
			readAfterWait(t, c, peer, "again", "Read after clearing the deadline")
		})
	}
}

func TestDeadlineWakesWaitingRead(t *testing.T) {
	l := newLoop(t)
	for _, tt := range []struct {
		name    string
		initial time.Duration // the read deadline before the Read; 0: none
		set     func(c *netloop.Conn) error
	}{
		{"SetDeadline in the past", 0, func(c *netloop.Conn) error {
			return c.SetDeadline(time.Now().Add(-time.Second))
		}},
		{"SetReadDeadline in the past", 0, func(c *netloop.Conn) error {
			return c.SetReadDeadline(time.Now().Add(-time.Second))
		}},
		{"SetDeadline soon", 0, func(c *netloop.Conn) error {
			return c.SetDeadline(time.Now().Add(20 * time.Millisecond))
		}},
		{"deadline an hour away brought forward", time.Hour, func(c *netloop.Conn) error {
			return c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := adopted(t, l)
			if tt.initial != 0 {
				c.SetReadDeadline(time.Now().Add(tt.initial))
			}
			read := readFullAsync(c, make([]byte, 1))
			waitParked(t, inConnWait)
			set := make(chan error, 1)
			go func() { set <- tt.set(c) }()
			if err := recv(t, set, "the deadline to be set"); err != nil {
				t.Fatal(err)
			}
			if r := recv(t, read, "Read"); r.n != 0 || !isTimeout(r.err) {
				t.Fatalf("Read = %d, %v; want 0 and a timeout", r.n, r.err)
			}
		})
	}
}

func TestWriteDeadline(t *testing.T) {
	l := newLoop(t)
	c, peer := adopted(t, l)
	const size = 16 << 20 // far more than the socket buffers take
	p := pattern(0, size)

	// The peer does not read, so the Write fills the socket and waits.
	c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	n, err := c.Write(p)
	if !isTimeout(err) || n <= 0 || n >= size {
		t.Fatalf("Write = %d, %v; want part of %d bytes and a timeout", n, err, size)
	}

	c.SetWriteDeadline(time.Time{})
	wrote := writeAsync(c, p[n:])
	if err := readPattern(peer, 0, size); err != nil {
		t.Fatalf("peer: %v", err)
	}
	if r := recv(t, wrote, "Write"); r.n != size-n || r.err != nil {
		t.Fatalf("Write of the rest = %d, %v; want %d, nil", r.n, r.err, size-n)
	}
}

func TestClose(t *testing.T) {
	l := newLoop(t)

	t.Run("wakes a blocked Read", func(t *testing.T) {
		c, peer := adopted(t, l)
		read := readFullAsync(c, make([]byte, 1))
		waitParked(t, inConnWait)
		closed := make(chan error, 1)
		go func() { closed <- c.Close() }()
		if err := recv(t, closed, "Close"); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if r := recv(t, read, "Read"); r.n != 0 || !errors.Is(r.err, net.ErrClosed) {
			t.Fatalf("Read = %d, %v; want 0, net.ErrClosed", r.n, r.err)
		}
		// The socket is closed for real once the Read let go of it.
		if n, err := peer.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Fatalf("peer Read = %d, %v; want 0, io.EOF", n, err)
		}
	})

	t.Run("wakes a blocked Write", func(t *testing.T) {
		c, _ := adopted(t, l)
		wrote := writeAsync(c, make([]byte, 64<<20)) // the peer does not read
		waitParked(t, inConnWait)
		if err := c.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if r := recv(t, wrote, "Write"); !errors.Is(r.err, net.ErrClosed) {
			t.Fatalf("Write = %d, %v; want net.ErrClosed", r.n, r.err)
		}
	})

	t.Run("then everything fails", func(t *testing.T) {
		c, _ := adopted(t, l)
		if err := c.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		raw, err := c.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		for _, tt := range []struct {
			name string
			op   func() error
		}{
			{"Close", c.Close},
			{"Read", func() error { _, err := c.Read(make([]byte, 1)); return err }},
			{"Write", func() error { _, err := c.Write([]byte("x")); return err }},
			{"RawConn.Control", func() error { return raw.Control(func(uintptr) {}) }},
			{"RawConn.Read", func() error { return raw.Read(func(uintptr) bool { return true }) }},
			{"RawConn.Write", func() error { return raw.Write(func(uintptr) bool { return true }) }},
		} {
			if err := tt.op(); !errors.Is(err, net.ErrClosed) {
				t.Errorf("%s after Close: %v, want net.ErrClosed", tt.name, err)
			}
		}
	})

	t.Run("reaches the handler in loop mode", func(t *testing.T) {
		c, _ := adopted(t, l)
		f := newForwarder(c)
		c.SetHandler(f)
		if err := c.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := recv(t, f.end, "the handler to see the close"); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("handler's Read: %v, want net.ErrClosed", err)
		}
	})
}

func TestPeerCloseEOF(t *testing.T) {
	l := newLoop(t)
	for _, tt := range []struct {
		name string
		// run has the peer write tail and close, and checks that c reads
		// tail and then io.EOF.
		run func(t *testing.T, c *netloop.Conn, peer *net.TCPConn, tail []byte)
	}{
		{"closed before the Read", func(t *testing.T, c *netloop.Conn, peer *net.TCPConn, tail []byte) {
			peer.Write(tail)
			peer.Close()
			got, err := io.ReadAll(c) // reads to io.EOF
			if err != nil || !bytes.Equal(got, tail) {
				t.Fatalf("ReadAll = %q, %v; want %q, nil", got, err, tail)
			}
		}},
		{"closed while a Read waits", func(t *testing.T, c *netloop.Conn, peer *net.TCPConn, tail []byte) {
			got := make([]byte, len(tail)+1)
			read := readFullAsync(c, got)
			waitParked(t, inConnWait)
			peer.Write(tail)
			peer.Close()
			if r := recv(t, read, "Read"); r.err != io.ErrUnexpectedEOF || !bytes.Equal(got[:r.n], tail) {
				t.Fatalf("ReadFull = %q, %v; want %q, io.ErrUnexpectedEOF", got[:r.n], r.err, tail)
			}
		}},
		{"write side shut down", func(t *testing.T, c *netloop.Conn, peer *net.TCPConn, tail []byte) {
			peer.Write(tail)
			peer.CloseWrite()
			got, err := io.ReadAll(c)
			if err != nil || !bytes.Equal(got, tail) {
				t.Fatalf("ReadAll = %q, %v; want %q, nil", got, err, tail)
			}
			// Half closed: the other direction still works.
			if _, err := c.Write([]byte("reply")); err != nil {
				t.Fatalf("Write after the peer's CloseWrite: %v", err)
			}
			reply := make([]byte, 5)
			if _, err := io.ReadFull(peer, reply); err != nil || string(reply) != "reply" {
				t.Fatalf("peer read %q, %v; want \"reply\", nil", reply, err)
			}
		}},
		{"loop mode", func(t *testing.T, c *netloop.Conn, peer *net.TCPConn, tail []byte) {
			f := newForwarder(c)
			c.SetHandler(f)
			peer.Write(tail)
			peer.Close()
			if err := recv(t, f.end, "the handler to see EOF"); err != io.EOF {
				t.Fatalf("handler's Read: %v, want io.EOF", err)
			}
			if got := f.collect(t, len(tail)); !bytes.Equal(got, tail) {
				t.Fatalf("handler read %q, want %q", got, tail)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, peer := adopted(t, l)
			tt.run(t, c, peer, []byte("goodbye"))
			// EOF stays.
			if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
				t.Fatalf("Read after EOF = %d, %v; want 0, io.EOF", n, err)
			}
		})
	}
}

func TestLoopModeRead(t *testing.T) {
	l := newLoop(t)
	for _, tt := range []struct {
		name   string
		chunk  int
		chunks int
		// lockstep: the peer sends a chunk only once the handler has
		// forwarded the one before, so that each comes as its own event.
		lockstep bool
	}{
		{"1-byte chunks in lockstep", 1, 50, true},
		{"64-byte chunks in lockstep", 64, 50, true},
		{"100 KiB chunks in lockstep", 100 << 10, 10, true},
		{"1-byte chunks streamed", 1, 1000, false},
		{"1 MiB chunks streamed", 1 << 20, 8, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, peer := adopted(t, l)
			f := newForwarder(c)
			c.SetHandler(f)
			want := pattern(0, tt.chunk*tt.chunks)

			var got []byte
			if tt.lockstep {
				for i := range tt.chunks {
					if _, err := peer.Write(want[i*tt.chunk : (i+1)*tt.chunk]); err != nil {
						t.Fatal(err)
					}
					got = append(got, f.collect(t, tt.chunk)...)
				}
			} else {
				sent := make(chan error, 1)
				go func() {
					for i := range tt.chunks {
						if _, err := peer.Write(want[i*tt.chunk : (i+1)*tt.chunk]); err != nil {
							sent <- err
							return
						}
					}
					sent <- nil
				}()
				got = f.collect(t, len(want))
				if err := recv(t, sent, "the peer to write"); err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(got, want) {
				t.Fatal("the handler read other bytes than the peer wrote, or in another order")
			}

			peer.Close()
			if err := recv(t, f.end, "the handler to see EOF"); err != io.EOF {
				t.Fatalf("handler's Read: %v, want io.EOF", err)
			}
			if n := f.stale.Load(); n != 0 {
				t.Errorf("MayHaveMore() was true after ErrWouldBlock %d times", n)
			}
		})
	}
}

func TestLoopModeWriteNeverBlocks(t *testing.T) {
	const (
		chunk = 1 << 20
		total = 64 << 20 // far more than the socket buffers take
	)
	l := newLoop(t)
	c, peer := adopted(t, l)
	c.SetHandler(nopHandler{})

	// The peer does not read yet: every Write past the socket buffers
	// has to keep what it cannot send.
	wrote := make(chan error, 1)
	go func() {
		p := make([]byte, chunk)
		for off := 0; off < total; off += chunk {
			fillPattern(p, off)
			start := time.Now()
			n, err := c.Write(p)
			if n != len(p) || err != nil {
				wrote <- fmt.Errorf("Write at offset %d = %d, %v; want %d, nil", off, n, err, len(p))
				return
			}
			if d := time.Since(start); d > 5*time.Second {
				wrote <- fmt.Errorf("Write at offset %d took %v", off, d)
				return
			}
		}
		wrote <- nil
	}()
	if err := recv(t, wrote, "the writes (a loop-mode Write blocked?)"); err != nil {
		t.Fatal(err)
	}
	if c.Pending() <= 0 {
		t.Fatalf("Pending() = %d after writing %d bytes to a peer that does not read", c.Pending(), total)
	}

	if err := readPattern(peer, 0, total); err != nil {
		t.Fatalf("peer: %v", err)
	}
	// The loop stores the new Pending after its write returns, which may
	// be after the peer has read the last byte.
	waitFor(t, "Pending() to drop to 0", func() bool { return c.Pending() == 0 })

	// Nothing more comes than was written.
	c.Close()
	if n, err := peer.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("peer Read after all bytes = %d, %v; want 0, io.EOF", n, err)
	}
}

// stallReader reads from a TCP connection and fails once no byte came for
// stall, which is how a lost wakeup shows.
type stallReader struct {
	c     *net.TCPConn
	stall time.Duration
}

func (r stallReader) Read(p []byte) (int, error) {
	r.c.SetReadDeadline(time.Now().Add(r.stall))
	return r.c.Read(p)
}

func TestLoopModeWriteWhilePeerReads(t *testing.T) {
	// Loop-mode writes from a goroutine other than the loop's, while the
	// socket drains: an event that comes while a writer holds the socket
	// must not be lost.
	const (
		chunk = 16 << 10
		total = 32 << 20
	)
	l := newLoop(t)
	c, peer := adopted(t, l)
	c.SetHandler(nopHandler{})

	// The peer reads all along, so the loop flushes what Write keeps while
	// more Writes come, from a goroutine other than the loop's.
	read := make(chan error, 1)
	go func() { read <- readPattern(stallReader{peer, 5 * time.Second}, 0, total) }()
	p := make([]byte, chunk)
	for off := 0; off < total; off += chunk {
		fillPattern(p, off)
		if n, err := c.Write(p); n != len(p) || err != nil {
			t.Fatalf("Write at offset %d = %d, %v; want %d, nil", off, n, err, len(p))
		}
	}
	if err := recv(t, read, "the peer to read everything"); err != nil {
		t.Fatalf("peer: %v; Pending() = %d", err, c.Pending())
	}
	waitFor(t, "Pending() to drop to 0", func() bool { return c.Pending() == 0 })
}

func TestLoopToBlockingMode(t *testing.T) {
	l := newLoop(t)
	for _, tt := range []struct {
		name                     string
		loopBytes, blockingBytes int
	}{
		{"nothing pending, small write", 1 << 10, 5},
		{"16 MiB pending, small write", 16 << 20, 5},
		{"16 MiB pending, 4 MiB write", 16 << 20, 4 << 20},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, peer := adopted(t, l)
			c.SetHandler(nopHandler{})
			if n, err := c.Read(make([]byte, 1)); n != 0 || !errors.Is(err, netloop.ErrWouldBlock) {
				t.Fatalf("loop-mode Read of an empty socket = %d, %v; want 0, ErrWouldBlock", n, err)
			}
			if n, err := c.Write(pattern(0, tt.loopBytes)); n != tt.loopBytes || err != nil {
				t.Fatalf("loop-mode Write = %d, %v; want %d, nil", n, err, tt.loopBytes)
			}
			if tt.loopBytes > 8<<20 && c.Pending() == 0 {
				t.Fatalf("Pending() = 0 after a loop-mode write of %d bytes to a peer that does not read", tt.loopBytes)
			}

			c.SetHandler(nil)
			wrote := writeAsync(c, pattern(tt.loopBytes, tt.blockingBytes))
			if err := readPattern(peer, 0, tt.loopBytes+tt.blockingBytes); err != nil {
				t.Fatalf("peer: %v", err)
			}
			if r := recv(t, wrote, "blocking Write"); r.n != tt.blockingBytes || r.err != nil {
				t.Fatalf("blocking Write = %d, %v; want %d, nil", r.n, r.err, tt.blockingBytes)
			}
			if n := c.Pending(); n != 0 {
				t.Fatalf("Pending() = %d after a blocking Write returned", n)
			}

			// Reads wait again rather than return ErrWouldBlock.
			readAfterWait(t, c, peer, "ok", "blocking Read")
		})
	}
}

func TestPost(t *testing.T) {
	l := newLoop(t)

	for _, tt := range []struct {
		name    string
		posters int
		each    int
	}{
		{"one poster", 1, 1000},
		{"eight posters", 8, 1000},
	} {
		t.Run(tt.name, func(t *testing.T) {
			type call struct{ poster, i int }
			var got []call // only the loop's thread touches it until done
			done := make(chan struct{})
			var wg sync.WaitGroup
			for p := range tt.posters {
				wg.Go(func() {
					for i := range tt.each {
						l.Post(func() { got = append(got, call{p, i}) })
					}
				})
			}
			wg.Wait()
			l.Post(func() { close(done) })
			recv(t, done, "the final function")

			if len(got) != tt.posters*tt.each {
				t.Fatalf("%d functions ran, want %d", len(got), tt.posters*tt.each)
			}
			next := make([]int, tt.posters)
			for _, c := range got {
				if c.i != next[c.poster] {
					t.Fatalf("poster %d: function %d ran when %d was due", c.poster, c.i, next[c.poster])
				}
				next[c.poster]++
			}
		})
	}

	t.Run("from the loop", func(t *testing.T) {
		var got []int
		done := make(chan struct{})
		l.Post(func() {
			got = append(got, 1)
			l.Post(func() {
				got = append(got, 3)
				close(done)
			})
			got = append(got, 2) // the inner function waits its turn
		})
		recv(t, done, "the inner function")
		if fmt.Sprint(got) != "[1 2 3]" {
			t.Fatalf("ran in order %v, want [1 2 3]", got)
		}
	})
}

func TestSyscallConn(t *testing.T) {
	l := newLoop(t)
	c, peer := adopted(t, l)
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}

	var sa, pa syscall.Sockaddr
	var serr, perr error
	if err := raw.Control(func(fd uintptr) {
		sa, serr = syscall.Getsockname(int(fd))
		pa, perr = syscall.Getpeername(int(fd))
	}); err != nil {
		t.Fatal(err)
	}
	if serr != nil || perr != nil {
		t.Fatalf("getsockname: %v, getpeername: %v", serr, perr)
	}
	if got, want := sa.(*syscall.SockaddrInet4).Port, c.LocalAddr().(*net.TCPAddr).Port; got != want {
		t.Errorf("the fd's local port is %d, LocalAddr's %d", got, want)
	}
	if got, want := pa.(*syscall.SockaddrInet4).Port, c.RemoteAddr().(*net.TCPAddr).Port; got != want {
		t.Errorf("the fd's peer port is %d, RemoteAddr's %d", got, want)
	}

	// A peek that finds nothing waits for the socket, as a Read does.
	const msg = "peekaboo"
	peeked := make([]byte, 64)
	var n int
	var rerr error
	peekDone := make(chan error, 1)
	go func() {
		peekDone <- raw.Read(func(fd uintptr) bool {
			n, _, rerr = syscall.Recvfrom(int(fd), peeked, syscall.MSG_PEEK)
			return rerr != syscall.EAGAIN
		})
	}()
	waitParked(t, inRawConnRead)
	if _, err := peer.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	if err := recv(t, peekDone, "RawConn.Read"); err != nil {
		t.Fatal(err)
	}
	if rerr != nil || n <= 0 || !strings.HasPrefix(msg, string(peeked[:n])) {
		t.Fatalf("peek = %q, %v; want a prefix of %q", peeked[:max(n, 0)], rerr, msg)
	}
	// The peek left the bytes in the socket.
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != msg {
		t.Fatalf("Read after the peek = %q, %v; want %q, nil", got, err, msg)
	}

	if err := raw.Write(func(fd uintptr) bool {
		_, err := syscall.Write(int(fd), []byte(msg))
		return err != syscall.EAGAIN
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(peer, got); err != nil || string(got) != msg {
		t.Fatalf("peer read %q, %v after RawConn.Write; want %q, nil", got, err, msg)
	}
}

// echo is a loop-mode Handler that writes back what it reads.
type echo struct {
	c   *netloop.Conn
	buf []byte
	err chan error // the first unexpected error
}

func (e *echo) Ready() {
	for {
		n, err := e.c.Read(e.buf)
		if n > 0 {
			if _, werr := e.c.Write(e.buf[:n]); werr != nil {
				e.fail(werr)
				return
			}
			if !e.c.MayHaveMore() {
				return // a short read emptied the socket
			}
		}
		switch {
		case err == nil:
		case errors.Is(err, netloop.ErrWouldBlock), err == io.EOF, errors.Is(err, net.ErrClosed):
			return
		default:
			e.fail(err)
			return
		}
	}
}

func (e *echo) fail(err error) {
	select {
	case e.err <- err:
	default:
	}
}

func BenchmarkLoopEcho(b *testing.B) {
	l := newLoop(b)
	client, server := tcpPair(b)
	c := adopt(b, l, server)
	e := &echo{c: c, buf: make([]byte, 4<<10), err: make(chan error, 1)}
	c.SetHandler(e)

	msg := make([]byte, 64)
	reply := make([]byte, 64)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := client.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(client, reply); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	select {
	case err := <-e.err:
		b.Fatal(err)
	default:
	}
}

// BenchmarkGoroutineEcho is BenchmarkLoopEcho with a goroutine and a plain
// net.Conn on the echo side, for comparison.
func BenchmarkGoroutineEcho(b *testing.B) {
	client, server := tcpPair(b)
	go func() {
		buf := make([]byte, 4<<10)
		for {
			n, err := server.Read(buf)
			if err != nil {
				return
			}
			if _, err := server.Write(buf[:n]); err != nil {
				return
			}
		}
	}()

	msg := make([]byte, 64)
	reply := make([]byte, 64)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := client.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(client, reply); err != nil {
			b.Fatal(err)
		}
	}
}

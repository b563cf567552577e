//go:build linux

package netloop

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"unsafe"
)

// epollET is EPOLLET as the uint32 the event mask is (syscall has it negative).
const epollET = 1 << 31

// Available reports whether this platform has the event loop.
const Available = true

// Loop is one epoll instance and the thread that waits on it.
type Loop struct {
	epfd   int
	wakefd int // an eventfd: Post writes it to wake the loop

	mu    sync.Mutex
	tasks []func()
	// awake: the loop's thread will run the tasks before it next sleeps,
	// so Post need not wake it (under load, it never has to).
	awake bool

	regMu sync.RWMutex
	conns []*Conn // by socket number: a lookup per event, cheaper than a map's
	seq   uint32  // tells a socket's registrations apart when its number is reused
}

// New starts a loop on a thread of its own.
func New() (*Loop, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	r, _, errno := syscall.Syscall(syscall.SYS_EVENTFD2, 0, syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0)
	if errno != 0 {
		syscall.Close(epfd)
		return nil, fmt.Errorf("eventfd: %w", errno)
	}
	l := &Loop{epfd: epfd, wakefd: int(r)}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(l.wakefd)}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, l.wakefd, &ev); err != nil {
		syscall.Close(epfd)
		syscall.Close(l.wakefd)
		return nil, fmt.Errorf("epoll_ctl: %w", err)
	}
	go l.run()
	return l, nil
}

// Post runs f on the loop's thread, after the events at hand.
func (l *Loop) Post(f func()) {
	l.mu.Lock()
	l.tasks = append(l.tasks, f)
	wake := !l.awake
	l.awake = true
	l.mu.Unlock()
	if wake {
		one := uint64(1)
		rawWrite(l.wakefd, (*[8]byte)(unsafe.Pointer(&one))[:])
	}
}

func (l *Loop) run() {
	// The loop's thread is its own: it waits in epoll_wait, not in Go's
	// scheduler, and no other goroutine has to be woken to run a handler.
	runtime.LockOSThread()
	events := make([]syscall.EpollEvent, 256)
	var tasks []func()
	for {
		// Under load there is always something ready: ask without
		// blocking first, which bypasses the scheduler's system-call
		// bookkeeping; block (as a regular system call) only when idle.
		n, err := epollWaitNow(l.epfd, events)
		if err == nil && n == 0 {
			l.mu.Lock()
			if len(l.tasks) > 0 {
				l.mu.Unlock()
				tasks = l.runTasks(tasks)
				continue
			}
			l.awake = false
			l.mu.Unlock()
			// A short wait that keeps the thread's P catches the next event
			// of a lightly loaded pooler without the scheduler handing the
			// P off and taking it back (which costs more than the event).
			// With one P that would hold up every other goroutine, so not
			// then; a truly idle loop blocks as a regular system call.
			if runtime.GOMAXPROCS(0) > 1 {
				n, err = epollWaitRaw(l.epfd, events, rawWaitMillis)
			}
			if err == nil && n == 0 {
				n, err = syscall.EpollWait(l.epfd, events, -1)
			}
			l.mu.Lock()
			l.awake = true
			l.mu.Unlock()
		}
		if err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			panic(fmt.Sprintf("netloop: epoll_wait: %v", err))
		}
		for i := range n {
			ev := &events[i]
			if int(ev.Fd) == l.wakefd {
				var buf [8]byte
				rawRead(l.wakefd, buf[:])
				continue
			}
			var c *Conn
			l.regMu.RLock()
			if int(ev.Fd) < len(l.conns) {
				c = l.conns[ev.Fd]
			}
			l.regMu.RUnlock()
			if c != nil && c.seq == uint32(ev.Pad) {
				c.dispatch(ev.Events)
			}
		}
		tasks = l.runTasks(tasks)
	}
}

// runTasks runs what was posted, with buf as the spare task list.
func (l *Loop) runTasks(buf []func()) []func() {
	l.mu.Lock()
	tasks := l.tasks
	l.tasks = buf[:0]
	l.mu.Unlock()
	for j, f := range tasks {
		f()
		tasks[j] = nil
	}
	return tasks
}

// Adopt takes over a TCP connection: its socket moves to the loop, and
// nc is closed. The Conn starts in blocking mode.
func (l *Loop) Adopt(nc net.Conn) (*Conn, error) {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return nil, errors.New("netloop: not a TCP connection")
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return nil, err
	}
	fd := -1
	var derr error
	if err := raw.Control(func(s uintptr) {
		r, _, errno := syscall.Syscall(syscall.SYS_FCNTL, s, syscall.F_DUPFD_CLOEXEC, 0)
		if errno != 0 {
			derr = errno
			return
		}
		fd = int(r)
	}); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, fmt.Errorf("netloop: dup: %w", derr)
	}
	c := newConn(l, fd, nc.LocalAddr(), nc.RemoteAddr())
	l.regMu.Lock()
	l.seq++
	c.seq = l.seq
	if fd >= len(l.conns) {
		grown := slices.Grow(l.conns, fd+1-len(l.conns))
		l.conns = grown[:cap(grown)]
	}
	l.conns[fd] = c
	l.regMu.Unlock()
	ev := syscall.EpollEvent{
		Events: syscall.EPOLLIN | syscall.EPOLLOUT | syscall.EPOLLRDHUP | epollET,
		Fd:     int32(fd),
		Pad:    int32(c.seq),
	}
	if err := syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		l.forget(c)
		syscall.Close(fd)
		return nil, fmt.Errorf("netloop: epoll_ctl: %w", err)
	}
	nc.Close() // the socket lives on in fd
	return c, nil
}

func (l *Loop) forget(c *Conn) {
	l.regMu.Lock()
	if l.conns[c.fd] == c {
		l.conns[c.fd] = nil
	}
	l.regMu.Unlock()
}

// dispatch handles one readiness event of c on the loop's thread.
func (c *Conn) dispatch(ev uint32) {
	if ev&(syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) != 0 {
		c.hup.Store(true)
	}
	// Blocking-mode waiters get a signal. In loop mode there are none: a
	// blocking read always tries the socket before it waits, and the loop
	// leaves loop mode on its own thread, between events.
	h := c.handler.Load()
	if ev&(syscall.EPOLLIN|syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) != 0 {
		c.more.Store(true)
		if h == nil {
			signal(c.rsig)
		}
	}
	if ev&(syscall.EPOLLOUT|syscall.EPOLLHUP|syscall.EPOLLERR) != 0 {
		c.flushPending()
		if h == nil {
			signal(c.wsig)
		}
	}
	if h != nil {
		h.h.Ready()
	}
}

// destroy closes the socket once nothing uses it any more.
func (c *Conn) destroy() {
	if !c.state.CompareAndSwap(closingBit, closingBit|destroyedBit) {
		return
	}
	c.loop.forget(c)
	syscall.Close(c.fd) // also ends its epoll registration
	// A handler learns of the close on the loop's thread, as of any event.
	c.more.Store(true) // reads now fail at once
	c.loop.Post(func() {
		if h := c.handler.Load(); h != nil {
			h.h.Ready()
		}
	})
}

// rawWaitMillis bounds a wait that holds the thread's P: a garbage
// collection waits for it at most so long.
const rawWaitMillis = 1

func epollWaitNow(epfd int, events []syscall.EpollEvent) (int, error) {
	return epollWaitRaw(epfd, events, 0)
}

func epollWaitRaw(epfd int, events []syscall.EpollEvent, millis int) (int, error) {
	r, _, errno := syscall.RawSyscall6(syscall.SYS_EPOLL_WAIT, uintptr(epfd),
		uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), uintptr(millis), 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}

// rawRead and rawWrite are read(2) and write(2) on non-blocking sockets,
// which never block: made without the scheduler's system-call
// bookkeeping, which costs more than they do.
func rawRead(fd int, b []byte) (int, syscall.Errno) {
	r, _, errno := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if errno != 0 {
		return -1, errno
	}
	return int(r), 0
}

func rawWrite(fd int, b []byte) (int, syscall.Errno) {
	r, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if errno != 0 {
		return -1, errno
	}
	return int(r), 0
}

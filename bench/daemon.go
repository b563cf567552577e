package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	// readyTimeout bounds the wait for a pooler to accept connections.
	readyTimeout = 30 * time.Second
	// stopTimeout is how long a pooler gets to exit after SIGTERM before
	// it is killed.
	stopTimeout = 10 * time.Second
	// clockTicks is USER_HZ, the unit of the CPU times in /proc/PID/stat:
	// 100 on every Linux architecture Go runs on.
	clockTicks = 100
)

// daemon is a pooler process the harness started and must stop.
type daemon struct {
	name    string
	cmd     *exec.Cmd
	addr    string // host:port it listens on
	logPath string // its stdout and stderr
	exited  chan struct{}
	waitErr error // set before exited is closed
}

// startDaemon starts the pooler bin in a process group of its own (so
// Ctrl-C reaches only the harness, which then stops it), its output going
// to logPath, waits until it accepts TCP connections on addr, and runs a
// query through it.
func startDaemon(ctx context.Context, name, bin string, args []string, addr, logPath string) (*daemon, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("%s log: %w", name, err)
	}
	defer logFile.Close() // the child has its own copy
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	d := &daemon{name: name, cmd: cmd, addr: addr, logPath: logPath, exited: make(chan struct{})}
	go func() {
		d.waitErr = cmd.Wait()
		close(d.exited)
	}()
	if err := d.waitReady(ctx); err != nil {
		d.stop()
		return nil, err
	}
	if err := checkQuery(ctx, d); err != nil {
		d.stop()
		return nil, err
	}
	return d, nil
}

// waitReady polls until the daemon accepts connections, exits, ctx ends or
// readyTimeout passes.
func (d *daemon) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	var dialer net.Dialer
	for {
		conn, err := dialer.DialContext(ctx, "tcp", d.addr)
		if err == nil {
			conn.Close()
			return nil
		}
		select {
		case <-d.exited:
			return fmt.Errorf("%s exited at start (%v); its log:\n%s", d.name, d.waitErr, d.logTail(20))
		case <-ctx.Done():
			return fmt.Errorf("%s did not accept connections on %s within %v: %w; its log:\n%s",
				d.name, d.addr, readyTimeout, err, d.logTail(20))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// alive reports whether the daemon is still running.
func (d *daemon) alive() bool {
	select {
	case <-d.exited:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM and waits, killing the daemon after stopTimeout.
func (d *daemon) stop() {
	if !d.alive() {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(stopTimeout):
		_ = d.cmd.Process.Kill()
		<-d.exited
	}
}

// cpu is the user plus system CPU time the daemon has used so far, all
// threads together.
func (d *daemon) cpu() (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(d.cmd.Process.Pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("%s CPU time: %w", d.name, err)
	}
	return parseStatCPU(string(b))
}

// parseStatCPU reads utime and stime, fields 14 and 15 of /proc/PID/stat.
// Field 2, the command name in parentheses, may hold spaces and
// parentheses itself, so fields are counted from the last ')'.
func parseStatCPU(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("/proc stat: no command name")
	}
	f := strings.Fields(stat[i+1:]) // f[0] is field 3, the state
	if len(f) < 13 {
		return 0, errors.New("/proc stat: too few fields")
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc stat: %w", err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// logTail is the end of the daemon's output, for error messages.
func (d *daemon) logTail(n int) string {
	b, err := os.ReadFile(d.logPath)
	if err != nil {
		return fmt.Sprintf("(unreadable: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// freeAddr asks the kernel for a free loopback port. Someone else may take
// it before the pooler binds it; then the pooler fails to start, loudly.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// splitAddr splits an address freeAddr made.
func splitAddr(addr string) (host string, port int) {
	h, p, _ := net.SplitHostPort(addr)
	port, _ = strconv.Atoi(p)
	return h, port
}

package integration

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestBinary runs the built pgpoolx command as a user would.
func TestBinary(t *testing.T) {
	const version = "9.8.7-test"
	bin := buildPgpoolx(t, version)

	t.Run("serves until SIGTERM", func(t *testing.T) {
		psql := clientBinary(t, "psql")
		c := pg.Get(t)
		db := c.NewDatabase(t)
		addr := freeAddr(t)
		cfg := writeFile(t, "pgpoolx.yaml", fmt.Sprintf(`listen: %s
log:
  level: debug
databases:
  %s:
    host: %s
    port: %d
    user: postgres
    pool_size: 2
    init_query: "SET statement_timeout TO 4321"
`, addr, db, c.Host(), c.Port()))

		cmd := exec.Command(bin, "-config", cfg)
		var stdout, stderr lockedBuffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		t.Cleanup(func() {
			if cmd.ProcessState == nil {
				cmd.Process.Kill()
				<-exited
			}
		})
		defer func() {
			if t.Failed() {
				t.Logf("pgpoolx stderr:\n%s", stderr.String())
			}
		}()

		// Up when it accepts connections; a process that exits early fails
		// the test at once.
		deadline := time.Now().Add(20 * time.Second)
		for {
			conn, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				conn.Close()
				break
			}
			select {
			case err := <-exited:
				t.Fatalf("pgpoolx exited before listening: %v", err)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("pgpoolx not listening on %s after 20s: %v", addr, err)
			}
			time.Sleep(20 * time.Millisecond)
		}

		out, err := runPsql(t, psql, addr, db, "show statement_timeout")
		if err != nil {
			t.Fatalf("psql: %v\n%s", err, out)
		}
		if got := strings.TrimSpace(out); got != "4321ms" {
			t.Errorf("statement_timeout through pgpoolx = %q, want 4321ms (from init_query)", got)
		}
		out, err = runPsql(t, psql, addr, db, "SELECT 1/0")
		if err == nil || !strings.Contains(out, "division by zero") {
			t.Errorf("psql with a failing statement: %v\n%s", err, out)
		}

		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("after SIGTERM: %v, want exit status 0", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("pgpoolx still running 10s after SIGTERM")
		}
		logs := stderr.String()
		for _, want := range []string{`"msg":"listening"`, `"version":"` + version + `"`, `"msg":"stopped"`} {
			if !strings.Contains(logs, want) {
				t.Errorf("log has no %s", want)
			}
		}
		if stdout.Len() != 0 {
			t.Errorf("unexpected output on stdout: %q", stdout.String())
		}
	})

	t.Run("check reports every problem", func(t *testing.T) {
		bad := writeFile(t, "bad.yaml", `listen: 127.0.0.1:6432
colour: blue
databases:
  appdb:
    host: 127.0.0.1
    pool_size: -1
`)
		stdout, stderr, code := runCommand(t, bin, "check", "-config", bad)
		if code != 1 {
			t.Errorf("exit status %d, want 1", code)
		}
		for _, want := range []string{"colour: unknown key", "databases.appdb.pool_size: must be from 1 to"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("stderr lacks %q:\n%s", want, stderr)
			}
		}
		if stdout != "" {
			t.Errorf("stdout %q, want nothing", stdout)
		}

		good := writeFile(t, "good.yaml", "databases:\n  appdb:\n    host: 127.0.0.1\n")
		stdout, stderr, code = runCommand(t, bin, "check", "-config", good)
		if code != 0 || stdout != good+": OK\n" {
			t.Errorf("check of a good config: exit status %d, stdout %q, stderr %q", code, stdout, stderr)
		}
	})

	t.Run("version", func(t *testing.T) {
		stdout, stderr, code := runCommand(t, bin, "-version")
		if code != 0 || stdout != "pgpoolx "+version+"\n" {
			t.Errorf("exit status %d, stdout %q, stderr %q; want 0 and \"pgpoolx %s\"", code, stdout, stderr, version)
		}
	})
}

// buildPgpoolx builds ./cmd/pgpoolx into a temporary directory, with its
// version set the way a release build sets it.
func buildPgpoolx(t *testing.T, version string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is not on PATH: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "pgpoolx")
	cmd := exec.CommandContext(t.Context(), goBin, "build", "-o", bin,
		"-ldflags", "-X main.version="+version, "github.com/pgpoolx/pgpoolx/cmd/pgpoolx")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// freeAddr returns a loopback address with a port nobody listened on a
// moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// runPsql runs one command with psql through addr and returns what psql
// printed, unaligned and without headers.
func runPsql(t *testing.T, psql, addr, db, sql string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), psql, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql)
	cmd.Env = libpqEnv(t, addr, db)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// runCommand runs bin and returns its output and exit status.
func runCommand(t *testing.T, bin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), bin, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("%s %s: %v", bin, strings.Join(args, " "), err)
	}
	return o.String(), e.String(), code
}

// lockedBuffer is a bytes.Buffer a child process's output can be copied
// into while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func (b *lockedBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Len()
}

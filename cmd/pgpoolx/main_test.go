package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const goodConfig = `listen: 127.0.0.1:0
databases:
  appdb:
    host: 127.0.0.1
    pool_size: 5
`

// badConfig has three problems at once: an unknown key, a pool size out of
// range and a log level that does not exist.
const badConfig = `listen: 127.0.0.1:6432
colour: blue
log:
  level: loud
databases:
  appdb:
    host: 127.0.0.1
    pool_size: -1
`

func TestRun(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	good := write("good.yaml", goodConfig)
	bad := write("bad.yaml", badConfig)
	missing := filepath.Join(dir, "missing.yaml")
	badProblems := []string{
		"colour: unknown key",
		"log.level: must be one of debug, info, warn, error",
		"databases.appdb.pool_size: must be from 1 to 10000",
	}

	for _, tc := range []struct {
		name       string
		args       []string
		wantErr    bool
		wantStdout string   // exact
		wantStderr []string // each must appear
	}{
		{name: "version", args: []string{"-version"}, wantStdout: "pgpoolx dev\n"},
		{name: "version with double dash", args: []string{"--version"}, wantStdout: "pgpoolx dev\n"},
		{name: "check good", args: []string{"check", "-config", good}, wantStdout: good + ": OK\n"},
		{name: "check good with --config", args: []string{"check", "--config", good}, wantStdout: good + ": OK\n"},
		{name: "check good with -config=", args: []string{"check", "-config=" + good}, wantStdout: good + ": OK\n"},
		{
			name: "check bad", args: []string{"check", "-config", bad}, wantErr: true,
			wantStderr: append([]string{bad + ":"}, badProblems...),
		},
		{
			name: "check bad with --config", args: []string{"check", "--config", bad}, wantErr: true,
			wantStderr: badProblems,
		},
		{
			name: "check missing file", args: []string{"check", "-config", missing}, wantErr: true,
			wantStderr: []string{"missing.yaml", "no such file"},
		},
		{
			name: "check without -config", args: []string{"check"}, wantErr: true,
			wantStderr: []string{"usage: pgpoolx check -config FILE"},
		},
		{
			name: "check with an unknown flag", args: []string{"check", "-nope"}, wantErr: true,
			wantStderr: []string{"flag provided but not defined: -nope"},
		},
		{
			name: "run without -config", args: nil, wantErr: true,
			wantStderr: []string{"Usage:", "pgpoolx -config FILE", "-config file"},
		},
		{
			name: "run with a stray argument", args: []string{"-config", good, "extra"}, wantErr: true,
			wantStderr: []string{"Usage:"},
		},
		{
			name: "run with an unknown flag", args: []string{"-nope"}, wantErr: true,
			wantStderr: []string{"flag provided but not defined: -nope", "Usage:"},
		},
		{name: "help", args: []string{"-h"}, wantStderr: []string{"Usage:"}},
		{
			name: "run with a bad config", args: []string{"-config", bad}, wantErr: true,
			wantStderr: badProblems,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), tc.args, &stdout, &stderr)
			if tc.wantErr != (err != nil) {
				t.Fatalf("run(%q) = %v, want error: %v\nstderr:\n%s", tc.args, err, tc.wantErr, &stderr)
			}
			if err != nil && !errors.Is(err, errReported) {
				// main would print it; everything above reports its own.
				t.Errorf("run(%q) = %v, want the problem reported already", tc.args, err)
			}
			if stdout.String() != tc.wantStdout {
				t.Errorf("stdout %q, want %q", stdout.String(), tc.wantStdout)
			}
			for _, want := range tc.wantStderr {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr lacks %q:\n%s", want, &stderr)
				}
			}
			if len(tc.wantStderr) == 0 && stderr.Len() != 0 {
				t.Errorf("stderr %q, want nothing", &stderr)
			}
		})
	}
}

// running is pgpoolx's run serving a config file in the test's process.
type running struct {
	path           string // the config file
	addr           net.Addr
	stdout, stderr lockedBuffer
	done           chan error // run's result once it returns
	// stop ends run and returns its result (once; later calls repeat it).
	stop func() error
}

// startRun writes config to a file and runs pgpoolx on it until it
// listens; the test's end stops it.
func startRun(t *testing.T, config string) *running {
	t.Helper()
	r := &running{path: filepath.Join(t.TempDir(), "pgpoolx.yaml"), done: make(chan error, 1)}
	if err := os.WriteFile(r.path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	r.stop = sync.OnceValue(func() error {
		cancel()
		select {
		case err := <-r.done:
			return err
		case <-time.After(10 * time.Second):
			return errors.New("run still serving 10s after its context ended")
		}
	})
	ready := make(chan net.Addr, 1)
	go func() {
		r.done <- runWithReady(ctx, []string{"-config", r.path}, &r.stdout, &r.stderr, func(a net.Addr) { ready <- a })
	}()
	select {
	case r.addr = <-ready:
	case err := <-r.done:
		t.Fatalf("run returned before listening: %v\n%s", err, r.stderr.String())
	}
	t.Cleanup(func() { r.stop() })
	return r
}

// TestRunServesUntilCancelled: with a good config, run listens, and returns
// nil when its context ends, as it does on SIGTERM.
func TestRunServesUntilCancelled(t *testing.T) {
	r := startRun(t, goodConfig)
	conn, err := net.Dial("tcp", r.addr.String())
	if err != nil {
		t.Fatalf("dial %s: %v", r.addr, err)
	}
	conn.Close()

	if err := r.stop(); err != nil {
		t.Errorf("run = %v after cancel, want nil", err)
	}
	for _, want := range []string{`"msg":"listening"`, `"addr":"` + r.addr.String() + `"`, `"msg":"stopped"`} {
		if !strings.Contains(r.stderr.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, r.stderr.String())
		}
	}
	if r.stdout.String() != "" {
		t.Errorf("stdout %q, want nothing", r.stdout.String())
	}
}

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

// TestRunReloadsOnSIGHUPAndServesHTTP: admin_listen serves /healthz and
// /metrics, and SIGHUP re-reads the file, rejecting a broken one.
func TestRunReloadsOnSIGHUPAndServesHTTP(t *testing.T) {
	r := startRun(t, "admin_listen: 127.0.0.1:0\n"+goodConfig)
	stderr, path := &r.stderr, r.path

	m := regexp.MustCompile(`"msg":"serving /metrics, /healthz and /readyz","addr":"([^"]+)"`).FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("no admin_listen address logged:\n%s", stderr.String())
	}
	for path, want := range map[string]string{"/healthz": "ok\n", "/metrics": `pgpoolx_info{version="dev"} 1`} {
		resp, err := http.Get("http://" + m[1] + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: %d %q, want 200 with %q", path, resp.StatusCode, body, want)
		}
	}

	waitLog := func(what string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(stderr.String(), what) {
			if time.Now().After(deadline) {
				t.Fatalf("log lacks %s:\n%s", what, stderr.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if err := os.WriteFile(path, []byte(strings.Replace(goodConfig, "pool_size: 5", "pool_size: 7", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	waitLog(`"msg":"configuration reloaded","databases_added":[],"databases_removed":[],"databases_changed":["appdb"]`)
	// admin_listen left the file: that needs a restart, and says so.
	waitLog(`"msg":"setting changed in the file needs a restart to apply","key":"admin_listen"`)

	if err := os.WriteFile(path, []byte(badConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	waitLog(`"msg":"configuration reload rejected; the running configuration stays"`)
}

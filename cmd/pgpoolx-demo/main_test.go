package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/pgpoolx/pgpoolx/internal/pgcluster"
)

// fakeEnv makes the test binary play pgpoolx: "serve" listens where the
// config says until SIGTERM, "exit" fails at once.
const fakeEnv = "PGPOOLX_DEMO_FAKE"

func TestMain(m *testing.M) {
	if mode := os.Getenv(fakeEnv); mode != "" {
		os.Exit(fakePgpoolx(mode))
	}
	os.Exit(m.Run())
}

func fakePgpoolx(mode string) int {
	if mode == "exit" {
		fmt.Fprintln(os.Stderr, "fake pgpoolx: failing on purpose")
		return 3
	}
	flags := flag.NewFlagSet("pgpoolx", flag.ContinueOnError)
	cfgPath := flags.String("config", "", "")
	if err := flags.Parse(os.Args[1:]); err != nil {
		return 2
	}
	b, err := os.ReadFile(*cfgPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var cfg struct {
		Listen string `yaml:"listen"`
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	l, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	<-ctx.Done()
	l.Close()
	return 0
}

func TestDemoRunsUntilInterrupted(t *testing.T) {
	requirePostgres(t)
	t.Setenv(fakeEnv, "serve")
	port := freePort(t)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stdout := newWatchedBuffer("Press Ctrl-C to stop")
	var stderr bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-port", fmt.Sprint(port), "-admin-port", "0", "-pgpoolx", os.Args[0]}, stdout, &stderr)
	}()

	select {
	case <-stdout.seen:
	case err := <-done:
		t.Fatalf("run returned before pgpoolx was listening: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, &stderr)
	case <-time.After(2 * time.Minute):
		t.Fatalf("no banner after 2 minutes\nstdout:\n%s", stdout)
	}
	out := stdout.String()
	wantDSN := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/appdb?sslmode=disable", port)
	for _, want := range []string{
		"pgpoolx is listening. Connect with:\n",
		fmt.Sprintf("  psql %q\n", wantDSN),
		"  DATABASE_URL=" + wantDSN + "\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	dir := regexp.MustCompile(`server log in (.+)\)\.`).FindStringSubmatch(out)
	if dir == nil {
		t.Fatalf("stdout names no cluster directory:\n%s", out)
	}
	cfg, err := os.ReadFile(dir[1] + "/pgpoolx.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"pool_mode: transaction", "format: console", "pool_size: 10", initQuery} {
		if !strings.Contains(string(cfg), want) {
			t.Errorf("config lacks %q:\n%s", want, cfg)
		}
	}

	cancel() // as Ctrl-C does
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run after interrupt: %v\nstderr:\n%s", err, &stderr)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("run did not return after the interrupt")
	}
	if _, err := os.Stat(dir[1]); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("cluster directory %s: %v, want it removed", dir[1], err)
	}
	if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
		c.Close()
		t.Error("pgpoolx still listening after run returned")
	}
}

func TestDemoFailsWhenPgpoolxExits(t *testing.T) {
	requirePostgres(t)
	t.Setenv(fakeEnv, "exit")
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"-port", fmt.Sprint(freePort(t)), "-admin-port", "0", "-pgpoolx", os.Args[0]}, &stdout, &stderr)
	if !errors.Is(err, errExited) {
		t.Fatalf("run = %v, want errExited\nstdout:\n%s\nstderr:\n%s", err, &stdout, &stderr)
	}
	if !strings.Contains(stderr.String(), "failing on purpose") {
		t.Errorf("pgpoolx's stderr was not passed through: %q", &stderr)
	}
}

func TestDemoNeedsBinary(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"-pgpoolx", t.TempDir() + "/nope"}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "make build") {
		t.Errorf("run without a binary = %v, want advice to run make build", err)
	}
}

func TestDemoConfig(t *testing.T) {
	b, err := demoConfig("127.0.0.1:6432", "127.0.0.1:9127", "127.0.0.1", 5999)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := yaml.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"listen":       "127.0.0.1:6432",
		"admin_listen": "127.0.0.1:9127",
		"admin_users":  []any{"admin"},
		"pool_mode":    "transaction",
		"log":          map[string]any{"format": "console"},
		"auth":         map[string]any{"type": "trust"},
		"databases": map[string]any{"appdb": map[string]any{
			"host": "127.0.0.1", "port": 5999, "dbname": "appdb", "user": "postgres",
			"pool_size": 10, "init_query": "SET statement_timeout TO 300000; SET timezone TO utc",
		}},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("config decodes to\n%v\nwant\n%v", got, want)
	}
}

// requirePostgres skips or fails (in CI) the test without PostgreSQL.
func requirePostgres(t *testing.T) {
	t.Helper()
	if _, err := pgcluster.BinDir(); err != nil {
		pgcluster.SkipOrFail(t, err)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// watchedBuffer is a concurrency-safe buffer that closes seen once its
// contents include want.
type watchedBuffer struct {
	want string
	seen chan struct{}

	mu   sync.Mutex
	buf  bytes.Buffer
	done bool
}

func newWatchedBuffer(want string) *watchedBuffer {
	return &watchedBuffer{want: want, seen: make(chan struct{})}
}

func (w *watchedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(p)
	if !w.done && strings.Contains(w.buf.String(), w.want) {
		w.done = true
		close(w.seen)
	}
	return n, err
}

func (w *watchedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

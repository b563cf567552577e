// Command pgpoolx-demo runs pgpoolx in front of a throwaway PostgreSQL, so
// that anyone can try it with psql or their application in one command:
//
//	make build && go run ./cmd/pgpoolx-demo [-port 6432] [-pgpoolx bin/pgpoolx]
//
// It starts a PostgreSQL cluster in a temporary directory, creates the
// database appdb, writes a pgpoolx config next to it and runs
// `pgpoolx -config FILE` until Ctrl-C, then removes everything.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/pgpoolx/pgpoolx/internal/pgcluster"
)

const (
	demoDB   = "appdb"
	demoHost = "127.0.0.1"
	// initQuery is what a real deployment might pin on every server
	// connection; the demo shows it off.
	initQuery = "SET statement_timeout TO 300000; SET timezone TO utc"

	// listenTimeout bounds the wait for pgpoolx to accept connections.
	listenTimeout = 30 * time.Second
	// termTimeout is how long pgpoolx gets to stop after SIGTERM before
	// it is killed.
	termTimeout = 15 * time.Second
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "pgpoolx-demo: %v\n", err)
		stop()
		os.Exit(1)
	}
}

// run returns nil when ctx ends (Ctrl-C) and an error when anything fails,
// including pgpoolx exiting on its own.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	flags := flag.NewFlagSet("pgpoolx-demo", flag.ContinueOnError)
	flags.SetOutput(stderr)
	port := flags.Int("port", 6432, "TCP port pgpoolx listens on, on 127.0.0.1")
	adminPort := flags.Int("admin-port", 9127, "TCP port of /metrics, /healthz and /readyz, on 127.0.0.1 (0: none)")
	binFlag := flags.String("pgpoolx", filepath.Join("bin", "pgpoolx"), "the pgpoolx binary to run (build it with `make build`)")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if flags.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flags.Args())
	}

	bin, err := filepath.Abs(*binFlag)
	if err != nil {
		return err
	}
	if fi, err := os.Stat(bin); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("no pgpoolx binary at %s: build it with `make build` or pass -pgpoolx PATH", bin)
	}
	listen := net.JoinHostPort(demoHost, strconv.Itoa(*port))
	adminListen := ""
	if *adminPort != 0 {
		adminListen = net.JoinHostPort(demoHost, strconv.Itoa(*adminPort))
	}
	// Fail before starting PostgreSQL if pgpoolx could not listen anyway.
	for _, f := range []struct {
		addr, flag string
	}{{listen, "-port"}, {adminListen, "-admin-port"}} {
		if f.addr == "" {
			continue
		}
		l, err := net.Listen("tcp", f.addr)
		if err != nil {
			return fmt.Errorf("%s is not free (pick another port with %s): %w", f.addr, f.flag, err)
		}
		l.Close()
	}

	fmt.Fprintln(stdout, "Starting a throwaway PostgreSQL ...")
	cluster, err := pgcluster.Start(ctx, pgcluster.Options{})
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintf(stdout, "Stopping PostgreSQL and removing %s\n", cluster.Dir())
		if stopErr := cluster.Stop(); stopErr != nil {
			err = errors.Join(err, fmt.Errorf("stop PostgreSQL: %w", stopErr))
		}
	}()
	fmt.Fprintf(stdout, "PostgreSQL is running on %s:%d (data and server log in %s).\n",
		cluster.Host(), cluster.Port(), cluster.Dir())

	if err := cluster.CreateDatabase(ctx, demoDB); err != nil {
		return err
	}
	cfg, err := demoConfig(listen, adminListen, cluster.Host(), cluster.Port())
	if err != nil {
		return err
	}
	cfgPath := filepath.Join(cluster.Dir(), "pgpoolx.yaml")
	if err := os.WriteFile(cfgPath, cfg, 0o644); err != nil {
		return fmt.Errorf("write pgpoolx config: %w", err)
	}

	cmd := exec.Command(bin, "-config", cfgPath)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// A process group of its own: Ctrl-C reaches only us, and pgpoolx gets
	// exactly one SIGTERM, from us.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start pgpoolx: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	if err := waitListening(ctx, listen, exited); err != nil {
		if errors.Is(err, errExited) {
			return err
		}
		terminate(cmd, exited, stderr)
		if ctx.Err() != nil {
			return nil
		}
		return err
	}

	dsn := fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable", listen, demoDB)
	fmt.Fprintf(stdout, "\npgpoolx is listening. Connect with:\n  psql %q\n  DATABASE_URL=%s\n", dsn, dsn)
	fmt.Fprintf(stdout, "Admin console (SHOW POOLS, SHOW PINS, PAUSE ...):\n  psql %q\n",
		fmt.Sprintf("postgres://admin@%s/pgpoolx?sslmode=disable", listen))
	if adminListen != "" {
		fmt.Fprintf(stdout, "Metrics:\n  curl http://%s/metrics\n", adminListen)
	}
	fmt.Fprintf(stdout, "Press Ctrl-C to stop (the throwaway PostgreSQL is removed).\n\n")

	select {
	case <-ctx.Done():
		fmt.Fprintln(stdout, "\nStopping pgpoolx ...")
		terminate(cmd, exited, stderr)
		return nil
	case err := <-exited:
		return exitError(err)
	}
}

var errExited = errors.New("pgpoolx exited")

func exitError(err error) error {
	if err == nil {
		return fmt.Errorf("%w on its own (status 0)", errExited)
	}
	return fmt.Errorf("%w on its own: %w", errExited, err)
}

// waitListening polls until something accepts TCP connections on addr,
// pgpoolx exits, ctx ends or listenTimeout passes.
func waitListening(ctx context.Context, addr string, exited <-chan error) error {
	ctx, cancel := context.WithTimeout(ctx, listenTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var dialer net.Dialer
	for {
		dctx, dcancel := context.WithTimeout(ctx, time.Second)
		conn, err := dialer.DialContext(dctx, "tcp", addr)
		dcancel()
		if err == nil {
			conn.Close()
			return nil
		}
		select {
		case err := <-exited:
			return exitError(err)
		case <-ctx.Done():
			return fmt.Errorf("pgpoolx did not accept connections on %s within %v: %w", addr, listenTimeout, err)
		case <-tick.C:
		}
	}
}

// terminate sends pgpoolx SIGTERM and waits for it, killing it if it takes
// longer than termTimeout.
func terminate(cmd *exec.Cmd, exited <-chan error, stderr io.Writer) {
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		// It has exited already; collect it.
		<-exited
		return
	}
	timer := time.NewTimer(termTimeout)
	defer timer.Stop()
	select {
	case <-exited:
	case <-timer.C:
		fmt.Fprintf(stderr, "pgpoolx-demo: pgpoolx (pid %d) did not stop within %v; killing it\n", cmd.Process.Pid, termTimeout)
		_ = cmd.Process.Kill()
		<-exited
	}
}

// demoConfig is the pgpoolx config file: one database, appdb, on the
// throwaway cluster, with trust auth so psql needs no password, and the
// admin console open to user admin.
func demoConfig(listen, adminListen, pgHost string, pgPort int) ([]byte, error) {
	type database struct {
		Host      string `yaml:"host"`
		Port      int    `yaml:"port"`
		DBName    string `yaml:"dbname"`
		User      string `yaml:"user"`
		PoolSize  int    `yaml:"pool_size"`
		InitQuery string `yaml:"init_query"`
	}
	type config struct {
		Listen      string   `yaml:"listen"`
		AdminListen string   `yaml:"admin_listen"`
		AdminUsers  []string `yaml:"admin_users"`
		PoolMode    string   `yaml:"pool_mode"`
		Log         struct {
			Format string `yaml:"format"`
		} `yaml:"log"`
		Auth struct {
			Type string `yaml:"type"`
		} `yaml:"auth"`
		Databases map[string]database `yaml:"databases"`
	}
	var c config
	c.Listen = listen
	c.AdminListen = adminListen
	c.AdminUsers = []string{"admin"}
	c.PoolMode = "transaction"
	c.Log.Format = "console"
	c.Auth.Type = "trust"
	c.Databases = map[string]database{demoDB: {
		Host:      pgHost,
		Port:      pgPort,
		DBName:    demoDB,
		User:      "postgres",
		PoolSize:  10,
		InitQuery: initQuery,
	}}
	var b bytes.Buffer
	b.WriteString("# Written by pgpoolx-demo for a throwaway PostgreSQL; removed on exit.\n")
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&c); err != nil {
		return nil, fmt.Errorf("pgpoolx config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("pgpoolx config: %w", err)
	}
	return b.Bytes(), nil
}

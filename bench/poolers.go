package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

const (
	dbName = "bench"
	// dbUser is the throwaway cluster's superuser, which every target
	// logs in as.
	dbUser = "postgres"
	// pgbouncerOSUser runs PgBouncer when the harness runs as root, which
	// PgBouncer refuses; PostgreSQL's packages create it.
	pgbouncerOSUser = "postgres"
)

// The two poolers get the same settings: transaction pooling, poolSize
// server connections, trust authentication, room for every client, the
// same wait for a free server connection and the same idle and lifetime
// limits, and logging of problems only.

func pgpoolxConfig(listen, pgHost string, pgPort int) string {
	return fmt.Sprintf(`# Written by the pgpoolx benchmark harness.
listen: %s
pool_mode: transaction
max_client_conn: %d
acquire_timeout: 120s
server_idle_timeout: 10m
server_lifetime: 1h
shutdown_timeout: 2s
stats_period: 0
log:
  level: warn
  format: json
auth:
  type: trust
databases:
  %s:
    host: %s
    port: %d
    pool_size: %d
`, listen, maxClients, dbName, pgHost, pgPort, poolSize)
}

func pgbouncerConfig(listen, pgHost string, pgPort int, authFile string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf(`; Written by the pgpoolx benchmark harness.
[databases]
%s = host=%s port=%d dbname=%s

[pgbouncer]
listen_addr = %s
listen_port = %s
unix_socket_dir =
pidfile =
logfile =
auth_type = trust
auth_file = %s
pool_mode = transaction
default_pool_size = %d
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = %d
query_wait_timeout = 120
server_idle_timeout = 600
server_lifetime = 3600
log_connections = 0
log_disconnections = 0
stats_period = 3600
`, dbName, pgHost, pgPort, dbName, host, port, authFile, poolSize, maxClients), nil
}

// startPgpoolx runs the pgpoolx binary bin with its config in dir.
func startPgpoolx(ctx context.Context, bin, dir, pgHost string, pgPort int) (*daemon, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "pgpoolx.yaml")
	if err := os.WriteFile(cfg, []byte(pgpoolxConfig(addr, pgHost, pgPort)), 0o644); err != nil {
		return nil, fmt.Errorf("write pgpoolx config: %w", err)
	}
	return startDaemon(ctx, "pgpoolx", bin, []string{"-config", cfg}, addr, filepath.Join(dir, "pgpoolx.log"))
}

// startPgbouncer runs PgBouncer (bin) with its config in dir, as
// pgbouncerOSUser when we are root: PgBouncer switches to that user itself
// (-u) once it has read its config.
func startPgbouncer(ctx context.Context, bin, dir, pgHost string, pgPort int) (*daemon, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	authFile := filepath.Join(dir, "pgbouncer-users.txt")
	if err := os.WriteFile(authFile, []byte(fmt.Sprintf("%q \"\"\n", dbUser)), 0o644); err != nil {
		return nil, fmt.Errorf("write PgBouncer auth file: %w", err)
	}
	text, err := pgbouncerConfig(addr, pgHost, pgPort, authFile)
	if err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "pgbouncer.ini")
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		return nil, fmt.Errorf("write PgBouncer config: %w", err)
	}
	var args []string
	if os.Geteuid() == 0 {
		if _, err := user.Lookup(pgbouncerOSUser); err != nil {
			return nil, fmt.Errorf("PgBouncer refuses to run as root, and OS user %q to run it as: %w", pgbouncerOSUser, err)
		}
		args = append(args, "-u", pgbouncerOSUser)
	}
	return startDaemon(ctx, "PgBouncer", bin, append(args, cfg), addr, filepath.Join(dir, "pgbouncer.log"))
}

// checkQuery runs one query through the pooler, so that a pooler that
// listens but cannot reach PostgreSQL fails at start and not in every run.
func checkQuery(ctx context.Context, d *daemon) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	conn, err := pgconn.Connect(ctx, fmt.Sprintf("postgres://%s@%s/%s?sslmode=disable", dbUser, d.addr, dbName))
	if err != nil {
		return fmt.Errorf("connect through %s: %w; its log:\n%s", d.name, err, d.logTail(20))
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SELECT 1").ReadAll(); err != nil {
		return fmt.Errorf("query through %s: %w; its log:\n%s", d.name, err, d.logTail(20))
	}
	return nil
}

// findPgbouncer returns the PgBouncer binary: path if given, else from
// PATH, else from the sbin directories Debian's package installs into but
// which are not on a normal user's PATH. The error says it is missing.
func findPgbouncer(path string) (string, error) {
	if path != "" {
		return exec.LookPath(path)
	}
	if p, err := exec.LookPath("pgbouncer"); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin"} {
		p := filepath.Join(dir, "pgbouncer")
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errors.New("pgbouncer not found on PATH (Debian: apt-get install pgbouncer)")
}

// version is the first line a program prints when run with args, or
// "unknown".
func version(ctx context.Context, bin string, args ...string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).Output()
	if err != nil {
		return "unknown"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

// Package pgcluster starts a throwaway PostgreSQL cluster for tests and the
// demo: initdb into a directory, pg_ctl on a free loopback TCP port, no unix
// socket, durability switched off for speed, and the server log in a file
// that tests print when they fail.
//
// When the process runs as root the cluster runs as the `postgres` OS user,
// since PostgreSQL refuses to run as root.
//
// The server is a daemon started by pg_ctl, not a child of this process: a
// test binary killed before Stop leaves it running. If its directory was
// removed, PostgreSQL notices its lock file is gone and shuts itself down
// within a minute or so.
package pgcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

const (
	host = "127.0.0.1"
	// superuser is the cluster's bootstrap superuser (initdb -U).
	superuser = "postgres"
	// osUser runs the server when this process is root.
	osUser = "postgres"

	// pgctlTimeout bounds each pg_ctl start, stop or restart (pg_ctl -t).
	pgctlTimeout = 60 * time.Second
	// startAttempts covers losing the race for the free port to someone
	// else between choosing it and the server binding it.
	startAttempts = 3
	// logTailMax is how much of the end of the server log LogTail reads.
	logTailMax = 1 << 20
)

// Options configures Start.
type Options struct {
	// Dir holds the cluster: Dir/data is the data directory and
	// Dir/postgres.log the server log. If empty, Start makes a temporary
	// directory. Stop removes Dir only if Start created it.
	Dir string
	// Settings are extra postgresql.conf lines, `key = value`, written after
	// pgcluster's own, so they may override them. Values are written as
	// given: quote strings the way postgresql.conf wants them
	// ("log_statement": "all", "log_line_prefix": "'%m '").
	Settings map[string]string
	// Log, if set, receives the output of initdb and pg_ctl (not the server
	// log, which is in the file LogPath names).
	Log io.Writer
	// HBA, if not nil, replaces the pg_hba.conf initdb writes (which trusts
	// everyone) with these lines, in order, after one line of pgcluster's
	// own that trusts the superuser over loopback TCP, so that Connect,
	// Exec and the other helpers keep working whatever the lines demand.
	HBA []string
	// Files are written into the data directory before the server starts,
	// named by their path relative to it, after postgresql.conf and
	// pg_hba.conf (so a file named like one of those replaces it). They
	// belong to the server's OS user with mode 0600, as PostgreSQL demands
	// of server.key: for server.crt, server.key, root.crt and the like.
	Files map[string][]byte
}

// Cluster is a running throwaway PostgreSQL server. Its methods are safe for
// concurrent use.
type Cluster struct {
	binDir  string
	dir     string
	dataDir string
	logPath string
	ownDir  bool                // Start created dir, so Stop removes it
	cred    *syscall.Credential // nil unless running as root
	log     io.Writer           // may be nil

	// mu serializes pg_ctl start, stop and restart.
	mu      sync.Mutex
	port    int // set before the cluster is shared, then read-only
	stopped bool

	dbSeq atomic.Uint64 // for NewDatabase names
}

// Start creates and starts a cluster. ctx bounds only the start itself; the
// server runs until Stop.
func Start(ctx context.Context, opts Options) (_ *Cluster, err error) {
	settings, err := settingsLines(opts.Settings)
	if err != nil {
		return nil, err
	}
	hba, err := hbaFile(opts.HBA)
	if err != nil {
		return nil, err
	}
	for name := range opts.Files {
		if !filepath.IsLocal(name) {
			return nil, fmt.Errorf("pgcluster: file name %q is not a path inside the data directory", name)
		}
	}
	binDir, err := BinDir()
	if err != nil {
		return nil, err
	}
	c := &Cluster{binDir: binDir, log: opts.Log}
	if os.Geteuid() == 0 {
		if c.cred, err = lookupCredential(osUser); err != nil {
			return nil, fmt.Errorf("running as root, so the server must run as OS user %q: %w", osUser, err)
		}
	}

	if err := c.makeDir(opts.Dir); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			c.abandon()
		}
	}()
	c.dataDir = filepath.Join(c.dir, "data")
	c.logPath = filepath.Join(c.dir, "postgres.log")

	if c.cred != nil {
		if err := chownTree(c.dir, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			return nil, err
		}
	}

	if err := c.exec(exec.CommandContext(ctx, c.bin("initdb"),
		"-D", c.dataDir, "-A", "trust", "-U", superuser, "--no-sync", "-E", "UTF8", "--locale=C")); err != nil {
		return nil, err
	}
	if err := appendConf(filepath.Join(c.dataDir, "postgresql.conf"), settings); err != nil {
		return nil, err
	}
	if opts.HBA != nil {
		if err := c.writeFile("pg_hba.conf", hba); err != nil {
			return nil, err
		}
	}
	for _, name := range slices.Sorted(maps.Keys(opts.Files)) {
		if err := c.writeFile(name, opts.Files[name]); err != nil {
			return nil, err
		}
	}

	for attempt := 1; ; attempt++ {
		if c.port, err = freePort(); err != nil {
			return nil, err
		}
		logSize := fileSize(c.logPath)
		err = c.exec(exec.CommandContext(ctx, c.bin("pg_ctl"), "start", "-w",
			"-t", strconv.Itoa(int(pgctlTimeout.Seconds())),
			"-D", c.dataDir, "-l", c.logPath, "-o", "-p "+strconv.Itoa(c.port)))
		if err == nil {
			return c, nil
		}
		if attempt == startAttempts || ctx.Err() != nil || !lostPortRace(c.logPath, logSize) {
			return nil, fmt.Errorf("start PostgreSQL: %w\nserver log:\n%s", err, c.LogTail(30))
		}
	}
}

// Stop stops the server (pg_ctl stop -m fast, falling back to -m immediate)
// and removes the directory if Start created it. It is not bounded by a
// context, since cleanup should finish; pg_ctl's own timeout bounds it.
// Calling Stop again does nothing.
func (c *Cluster) Stop() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return nil
	}
	c.stopped = true

	err := c.pgctlStop("fast")
	if err != nil {
		if err2 := c.pgctlStop("immediate"); err2 == nil {
			err = nil
		}
	}
	if c.ownDir {
		if rmErr := os.RemoveAll(c.dir); rmErr != nil {
			err = errors.Join(err, fmt.Errorf("remove cluster directory: %w", rmErr))
		}
	}
	return err
}

// Restart restarts the server on the same port (pg_ctl restart -m fast), so
// every connection to it breaks. For fault tests.
func (c *Cluster) Restart(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return errors.New("restart PostgreSQL: cluster is stopped")
	}
	if err := c.exec(exec.CommandContext(ctx, c.bin("pg_ctl"), "restart", "-m", "fast", "-w",
		"-t", strconv.Itoa(int(pgctlTimeout.Seconds())),
		"-D", c.dataDir, "-l", c.logPath, "-o", "-p "+strconv.Itoa(c.port))); err != nil {
		return fmt.Errorf("restart PostgreSQL: %w\nserver log:\n%s", err, c.LogTail(30))
	}
	return nil
}

// Host is the address the server listens on.
func (c *Cluster) Host() string { return host }

// Port is the server's TCP port.
func (c *Cluster) Port() int { return c.port }

// Dir is the directory holding the data directory and the server log.
func (c *Cluster) Dir() string { return c.dir }

// LogPath is the server log file.
func (c *Cluster) LogPath() string { return c.logPath }

// DSN is a URL connecting as the superuser to database db, without TLS.
func (c *Cluster) DSN(db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(superuser),
		Host:     net.JoinHostPort(host, strconv.Itoa(c.port)),
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Connect opens a pgconn connection to database db as the superuser.
func (c *Cluster) Connect(ctx context.Context, db string) (*pgconn.PgConn, error) {
	conn, err := pgconn.Connect(ctx, c.DSN(db))
	if err != nil {
		return nil, fmt.Errorf("connect to database %q: %w", db, err)
	}
	return conn, nil
}

// Exec runs sql, which may hold several statements, in database db on a
// connection of its own.
func (c *Cluster) Exec(ctx context.Context, db, sql string) error {
	conn, err := c.Connect(ctx, db)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql).ReadAll(); err != nil {
		return fmt.Errorf("exec in database %q: %w", db, err)
	}
	return nil
}

// CreateDatabase creates database name.
func (c *Cluster) CreateDatabase(ctx context.Context, name string) error {
	q, err := quoteIdent(name)
	if err != nil {
		return err
	}
	if err := c.Exec(ctx, "postgres", "CREATE DATABASE "+q); err != nil {
		return fmt.Errorf("create database: %w", err)
	}
	return nil
}

// Password encryptions SetPassword knows (PostgreSQL's password_encryption).
const (
	EncryptionMD5   = "md5"
	EncryptionSCRAM = "scram-sha-256"
)

// SetPassword sets the password of role, stored as encryption says
// (EncryptionMD5 or EncryptionSCRAM), as ALTER ROLE ... PASSWORD does under
// that password_encryption. The role must exist.
func (c *Cluster) SetPassword(ctx context.Context, role, password, encryption string) error {
	if encryption != EncryptionMD5 && encryption != EncryptionSCRAM {
		return fmt.Errorf("pgcluster: password encryption %q is neither %q nor %q", encryption, EncryptionMD5, EncryptionSCRAM)
	}
	q, err := quoteIdent(role)
	if err != nil {
		return err
	}
	if strings.ContainsRune(password, 0) {
		return errors.New("pgcluster: a password cannot hold a NUL byte")
	}
	// One query string, so that both statements run on one connection; the
	// password is a standard string literal (standard_conforming_strings is
	// on by default), where only the quote needs doubling.
	sql := "SET password_encryption = '" + encryption + "'; ALTER ROLE " + q +
		" PASSWORD '" + strings.ReplaceAll(password, "'", "''") + "'"
	if err := c.Exec(ctx, "postgres", sql); err != nil {
		return fmt.Errorf("set password of role %s: %w", q, err)
	}
	return nil
}

// LogTail returns the last n lines of the server log, or a note saying why
// it cannot.
func (c *Cluster) LogTail(n int) string {
	f, err := os.Open(c.logPath)
	if err != nil {
		return fmt.Sprintf("(server log unreadable: %v)", err)
	}
	defer f.Close()
	if size := fileSize(c.logPath); size > logTailMax {
		if _, err := f.Seek(size-logTailMax, io.SeekStart); err != nil {
			return fmt.Sprintf("(server log unreadable: %v)", err)
		}
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return fmt.Sprintf("(server log unreadable: %v)", err)
	}
	return lastLines(string(b), n)
}

func (c *Cluster) bin(name string) string { return filepath.Join(c.binDir, name) }

// exec runs a PostgreSQL program as the server's OS user, with output kept
// for the error and copied to the Log writer.
func (c *Cluster) exec(cmd *exec.Cmd) error {
	var out bytes.Buffer
	var w io.Writer = &out
	if c.log != nil {
		w = io.MultiWriter(&out, c.log)
	}
	cmd.Stdout, cmd.Stderr = w, w
	// The server's OS user may not be able to enter our working directory.
	cmd.Dir = c.dir
	cmd.Env = serverEnv()
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w\n%s", filepath.Base(cmd.Path),
			strings.Join(cmd.Args[1:], " "), err, lastLines(out.String(), 20))
	}
	return nil
}

func (c *Cluster) pgctlStop(mode string) error {
	return c.exec(exec.Command(c.bin("pg_ctl"), "stop", "-m", mode, "-w",
		"-t", strconv.Itoa(int(pgctlTimeout.Seconds())), "-D", c.dataDir))
}

func (c *Cluster) makeDir(dir string) error {
	if dir == "" {
		d, err := os.MkdirTemp("", "pgcluster-")
		if err != nil {
			return fmt.Errorf("make cluster directory: %w", err)
		}
		c.dir, c.ownDir = d, true
	} else {
		d, err := filepath.Abs(dir)
		if err != nil {
			return fmt.Errorf("cluster directory: %w", err)
		}
		if _, err := os.Stat(d); errors.Is(err, fs.ErrNotExist) {
			c.ownDir = true
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("make cluster directory: %w", err)
		}
		c.dir = d
	}
	if c.ownDir {
		// MkdirTemp makes it 0700; the server's OS user must get in, and
		// root must be able to read the log.
		if err := os.Chmod(c.dir, 0o755); err != nil {
			return fmt.Errorf("make cluster directory: %w", err)
		}
	}
	return nil
}

// abandon cleans up after a failed Start: the server may be up even though
// pg_ctl gave up waiting for it.
func (c *Cluster) abandon() {
	c.stopped = true
	if c.dataDir != "" && fileSize(filepath.Join(c.dataDir, "postmaster.pid")) > 0 {
		_ = c.pgctlStop("immediate")
	}
	if c.ownDir {
		_ = os.RemoveAll(c.dir)
	}
}

// baseSettings make the server fast, reachable only on loopback TCP, and
// easy to read in the log.
var baseSettings = [][2]string{
	{"listen_addresses", "'" + host + "'"},
	{"unix_socket_directories", "''"},
	{"fsync", "off"},
	{"synchronous_commit", "off"},
	{"full_page_writes", "off"},
	{"max_connections", "400"},
	{"logging_collector", "off"},
	{"log_line_prefix", "'%m [%p] %q%u@%d '"},
	{"lc_messages", "'C'"},
}

func settingsLines(extra map[string]string) (string, error) {
	var b strings.Builder
	b.WriteString("\n# Added by pgcluster.\n")
	for _, kv := range baseSettings {
		fmt.Fprintf(&b, "%s = %s\n", kv[0], kv[1])
	}
	keys := make([]string, 0, len(extra))
	for k := range extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := extra[k]
		if k == "" || strings.ContainsAny(k, "\r\n= #") || strings.ContainsAny(v, "\r\n") {
			return "", fmt.Errorf("pgcluster: bad setting %q = %q", k, v)
		}
		if k == "port" {
			return "", errors.New("pgcluster: the port setting is chosen by pgcluster")
		}
		fmt.Fprintf(&b, "%s = %s\n", k, v)
	}
	return b.String(), nil
}

// superuserHBA comes first in a pg_hba.conf made from Options.HBA, so that
// pgcluster's own helpers, which connect as the superuser without a
// password, cannot be locked out.
const superuserHBA = "host all " + superuser + " " + host + "/32 trust"

func hbaFile(lines []string) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("# Written by pgcluster.\n" + superuserHBA + "\n")
	for _, l := range lines {
		if strings.ContainsAny(l, "\r\n") {
			return nil, fmt.Errorf("pgcluster: pg_hba.conf line %q holds a line break", l)
		}
		b.WriteString(l + "\n")
	}
	return b.Bytes(), nil
}

// writeFile writes name, relative to the data directory, as the server's
// OS user would: owned by it, readable by it alone.
func (c *Cluster) writeFile(name string, data []byte) error {
	path := filepath.Join(c.dataDir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("write %s into the data directory: %w", name, err)
	}
	// Remove first: WriteFile keeps the mode of a file that exists.
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("write %s into the data directory: %w", name, err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("write %s into the data directory: %w", name, err)
	}
	if c.cred != nil {
		// The file and any directories MkdirAll made for it.
		for p := path; p != c.dataDir; p = filepath.Dir(p) {
			if err := os.Lchown(p, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
				return fmt.Errorf("hand %s to OS user %s: %w", name, osUser, err)
			}
		}
	}
	return nil
}

func appendConf(path, lines string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("write postgresql.conf: %w", err)
	}
	if _, err := f.WriteString(lines); err != nil {
		f.Close()
		return fmt.Errorf("write postgresql.conf: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write postgresql.conf: %w", err)
	}
	return nil
}

// freePort asks the kernel for a free loopback port. Someone else may take
// it before the server binds it; Start retries when that happens.
func freePort() (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	return port, nil
}

// lostPortRace reports whether the server log, from offset on, says the
// server could not bind its port.
func lostPortRace(logPath string, offset int64) bool {
	b, err := os.ReadFile(logPath)
	if err != nil || int64(len(b)) < offset {
		return false
	}
	s := string(b[offset:])
	return strings.Contains(s, "could not bind") || strings.Contains(s, "Address already in use")
}

func lookupCredential(name string) (*syscall.Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, err
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("uid of %s: %w", name, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("gid of %s: %w", name, err)
	}
	// Groups left empty: the server gets no supplementary groups of ours.
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func chownTree(root string, uid, gid int) error {
	err := filepath.WalkDir(root, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, uid, gid)
	})
	if err != nil {
		return fmt.Errorf("hand cluster directory to OS user %s: %w", osUser, err)
	}
	return nil
}

// serverEnv is our environment without libpq's PG* variables, which could
// point pg_ctl at another cluster, and with C locale messages.
func serverEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") || strings.HasPrefix(kv, "LC_") || strings.HasPrefix(kv, "LANG=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LC_ALL=C")
}

func quoteIdent(name string) (string, error) {
	if name == "" || strings.ContainsRune(name, 0) {
		return "", fmt.Errorf("pgcluster: bad identifier %q", name)
	}
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`, nil
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func lastLines(s string, n int) string {
	s = strings.TrimRight(s, "\n")
	if n <= 0 || s == "" {
		return ""
	}
	i := len(s)
	for ; n > 0; n-- {
		j := strings.LastIndexByte(s[:i], '\n')
		if j < 0 {
			return s
		}
		i = j
	}
	return s[i+1:]
}

package pgcluster

import (
	"errors"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

var shared Shared

func TestMain(m *testing.M) { os.Exit(shared.Run(m)) }

// TestLifecycle drives a cluster of its own through start, connect, create
// database, restart and stop.
func TestLifecycle(t *testing.T) {
	ctx := t.Context()
	c, err := Start(ctx, Options{Settings: map[string]string{"application_name": "'pgcluster_test'"}})
	if err != nil {
		SkipOrFail(t, err)
	}
	t.Cleanup(func() { _ = c.Stop() })
	c.LogOnFailure(t)

	dir := c.Dir()
	if c.Host() != "127.0.0.1" || c.Port() <= 0 {
		t.Fatalf("Host, Port = %q, %d", c.Host(), c.Port())
	}
	wantDSN := "postgres://postgres@127.0.0.1:" + strconv.Itoa(c.Port()) + "/postgres?sslmode=disable"
	if got := c.DSN("postgres"); got != wantDSN {
		t.Fatalf("DSN = %q, want %q", got, wantDSN)
	}

	// Options.Settings reach postgresql.conf, after the defaults.
	conn, err := c.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	for setting, want := range map[string]string{
		"application_name": "pgcluster_test",
		"fsync":            "off",
		"max_connections":  "400",
		"listen_addresses": "127.0.0.1",
	} {
		if got := show(t, conn, setting); got != want {
			t.Errorf("SHOW %s = %q, want %q", setting, got, want)
		}
	}

	const db = `odd "name"`
	if err := c.CreateDatabase(ctx, db); err != nil {
		t.Fatal(err)
	}
	if err := c.Exec(ctx, db, "CREATE TABLE t (x int); INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	if err := c.Exec(ctx, db, "SELECT nope"); err == nil {
		t.Fatal("Exec of a bad statement succeeded")
	}

	port := c.Port()
	if err := c.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	// The old connection was ended by the restart; a new one works, on the
	// same port, and the data survived.
	if _, err := conn.Exec(ctx, "SELECT 1").ReadAll(); err == nil {
		t.Error("connection survived a restart")
	}
	conn.Close(ctx)
	if c.Port() != port {
		t.Errorf("port changed on restart: %d -> %d", port, c.Port())
	}
	if err := c.Exec(ctx, db, "SELECT x FROM t"); err != nil {
		t.Fatal(err)
	}

	if tail := c.LogTail(5); !strings.Contains(tail, "database system is ready to accept connections") {
		t.Errorf("LogTail(5) = %q, want the server's ready message", tail)
	}

	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after Stop, %s: %v, want it removed", dir, err)
	}
	if err := c.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if err := c.Restart(ctx); err == nil {
		t.Error("Restart after Stop succeeded")
	}
}

// TestGivenDir checks that a directory the caller made is left in place.
func TestGivenDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// t.TempDir's parent is 0700; the server's OS user must get through.
	if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	c, err := Start(t.Context(), Options{Dir: dir})
	if err != nil {
		SkipOrFail(t, err)
	}
	c.LogOnFailure(t)
	if err := c.Exec(t.Context(), "postgres", "SELECT 1"); err != nil {
		t.Error(err)
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "PG_VERSION")); err != nil {
		t.Errorf("Stop removed a directory it did not create: %v", err)
	}
}

func TestShared(t *testing.T) {
	c := shared.Get(t)
	if again := shared.Get(t); again != c {
		t.Fatal("Get started a second cluster")
	}
	db1, db2 := c.NewDatabase(t), c.NewDatabase(t)
	if db1 == db2 {
		t.Fatalf("NewDatabase returned %q twice", db1)
	}
	conn, err := c.Connect(t.Context(), db2)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	if got := show(t, conn, "server_encoding"); got != "UTF8" {
		t.Errorf("server_encoding = %q, want UTF8", got)
	}
}

func TestBadSettings(t *testing.T) {
	for _, settings := range []map[string]string{
		{"port": "5432"},
		{"a\nb": "1"},
		{"work_mem": "1MB\nfsync = on"},
		{"": "1"},
	} {
		if _, err := Start(t.Context(), Options{Settings: settings}); err == nil {
			t.Errorf("Start with settings %q succeeded", settings)
		}
	}
}

// TestHBAFilesPasswords checks Options.HBA, Options.Files and SetPassword
// together: the lines decide who gets in and how, the files are where the
// server can read them, and the passwords are stored as asked.
func TestHBAFilesPasswords(t *testing.T) {
	ctx := t.Context()
	c, err := Start(ctx, Options{
		HBA: []string{
			"host all md5_user 127.0.0.1/32 md5",
			"host all scram_user 127.0.0.1/32 scram-sha-256",
			"host all all 127.0.0.1/32 reject",
		},
		Files: map[string][]byte{"note.txt": []byte("hello"), "sub/dir/other.txt": []byte("x")},
	})
	if err != nil {
		SkipOrFail(t, err)
	}
	t.Cleanup(func() { _ = c.Stop() })
	c.LogOnFailure(t)

	// The superuser still gets in without a password, and so can read the
	// file the server owns.
	conn, err := c.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	res, err := conn.Exec(ctx, "SELECT pg_read_file('note.txt')").ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got := string(res[0].Rows[0][0]); got != "hello" {
		t.Errorf("note.txt read by the server = %q, want hello", got)
	}
	for _, name := range []string{"note.txt", "sub/dir/other.txt"} {
		fi, err := os.Stat(filepath.Join(c.Dir(), "data", name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, fi.Mode().Perm())
		}
		if c.cred != nil && fi.Sys().(*syscall.Stat_t).Uid != c.cred.Uid {
			t.Errorf("%s belongs to uid %d, want the server's %d", name, fi.Sys().(*syscall.Stat_t).Uid, c.cred.Uid)
		}
	}

	if err := c.Exec(ctx, "postgres", "CREATE ROLE md5_user LOGIN; CREATE ROLE scram_user LOGIN; CREATE ROLE other LOGIN"); err != nil {
		t.Fatal(err)
	}
	const password = "it's a secret"
	for role, enc := range map[string]string{"md5_user": EncryptionMD5, "scram_user": EncryptionSCRAM, "other": EncryptionMD5} {
		if err := c.SetPassword(ctx, role, password, enc); err != nil {
			t.Fatal(err)
		}
	}
	stored := func(role string) string {
		res, err := conn.Exec(ctx, "SELECT rolpassword FROM pg_authid WHERE rolname = '"+role+"'").ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		return string(res[0].Rows[0][0])
	}
	if got := stored("md5_user"); !strings.HasPrefix(got, "md5") || len(got) != 35 {
		t.Errorf("md5_user's stored password does not look like md5: %d bytes", len(got))
	}
	if got := stored("scram_user"); !strings.HasPrefix(got, "SCRAM-SHA-256$") {
		t.Error("scram_user's stored password is not a SCRAM verifier")
	}

	for _, tc := range []struct {
		user, password string
		wantCode       string // "" for success
	}{
		{"md5_user", password, ""},
		{"scram_user", password, ""},
		{"md5_user", "wrong", "28P01"},
		{"scram_user", "wrong", "28P01"},
		{"other", password, "28000"}, // rejected by the last line
	} {
		dsn := (&url.URL{Scheme: "postgres", User: url.UserPassword(tc.user, tc.password),
			Host: net.JoinHostPort(c.Host(), strconv.Itoa(c.Port())), Path: "/postgres", RawQuery: "sslmode=disable"}).String()
		conn, err := pgconn.Connect(ctx, dsn)
		var pgErr *pgconn.PgError
		switch {
		case tc.wantCode == "" && err != nil:
			t.Errorf("%s: %v", tc.user, err)
		case tc.wantCode != "" && !(errors.As(err, &pgErr) && pgErr.Code == tc.wantCode):
			t.Errorf("%s with password %q: err = %v, want SQLSTATE %s", tc.user, tc.password, err, tc.wantCode)
		}
		if err == nil {
			conn.Close(ctx)
		}
	}

	if err := c.SetPassword(ctx, "md5_user", password, "plain"); err == nil {
		t.Error("SetPassword with encryption plain succeeded")
	}
	if err := c.SetPassword(ctx, "nobody", password, EncryptionMD5); err == nil {
		t.Error("SetPassword of a missing role succeeded")
	}
}

func TestBadOptions(t *testing.T) {
	for _, opts := range []Options{
		{HBA: []string{"host all all 127.0.0.1/32 trust\nhost all all 0.0.0.0/0 trust"}},
		{Files: map[string][]byte{"../escape": nil}},
		{Files: map[string][]byte{"/etc/x": nil}},
	} {
		if c, err := Start(t.Context(), opts); err == nil {
			c.Stop()
			t.Errorf("Start with %+v succeeded", opts)
		}
	}
}

func TestBinDir(t *testing.T) {
	t.Setenv("PG_BINDIR", t.TempDir())
	if _, err := BinDir(); !errors.Is(err, ErrNoBinaries) {
		t.Errorf("BinDir with PG_BINDIR of an empty directory: err = %v, want ErrNoBinaries", err)
	}
}

func TestVersionLess(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"9.6", "15", true},
		{"15", "9.6", false},
		{"15", "16", true},
		{"16", "16.1", true},
		{"16", "16", false},
		{"15", "devel", true},
	} {
		if got := versionLess(tc.a, tc.b); got != tc.want {
			t.Errorf("versionLess(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestLastLines(t *testing.T) {
	for _, tc := range []struct {
		s    string
		n    int
		want string
	}{
		{"", 3, ""},
		{"a\nb\nc\n", 2, "b\nc"},
		{"a\nb\nc", 5, "a\nb\nc"},
		{"a\nb\nc\n", 0, ""},
	} {
		if got := lastLines(tc.s, tc.n); got != tc.want {
			t.Errorf("lastLines(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
		}
	}
}

func TestDBName(t *testing.T) {
	for _, tc := range []struct {
		test string
		seq  uint64
		want string
	}{
		{"TestX/sub case", 1, "t_testx_sub_case_1"},
		{strings.Repeat("A", 100), 12, "t_" + strings.Repeat("a", 58) + "_12"},
	} {
		got := dbName(tc.test, tc.seq)
		if got != tc.want || len(got) > 63 {
			t.Errorf("dbName(%q, %d) = %q, want %q", tc.test, tc.seq, got, tc.want)
		}
	}
}

func TestQuoteIdent(t *testing.T) {
	if got, _ := quoteIdent(`a"b`); got != `"a""b"` {
		t.Errorf("quoteIdent = %s", got)
	}
	if _, err := quoteIdent(""); err == nil {
		t.Error("quoteIdent accepted an empty name")
	}
}

func show(t *testing.T, conn *pgconn.PgConn, setting string) string {
	t.Helper()
	res, err := conn.Exec(t.Context(), "SHOW "+setting).ReadAll()
	if err != nil {
		t.Fatalf("SHOW %s: %v", setting, err)
	}
	return string(res[0].Rows[0][0])
}

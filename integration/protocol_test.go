package integration

import (
	"context"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// protoReadTimeout bounds every read of a raw client: an answer that does not
// come within it is a hang, and a failure.
const protoReadTimeout = 5 * time.Second

// protoClient speaks the protocol by hand over a socket, for what real
// drivers never send.
type protoClient struct {
	t  testing.TB
	nc net.Conn
	fe *pgproto3.Frontend
}

func dialProto(t testing.TB, addr string) *protoClient {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, protoReadTimeout)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { nc.Close() })
	return &protoClient{t: t, nc: nc, fe: pgproto3.NewFrontend(nc, nc)}
}

// write sends bytes as they are.
func (r *protoClient) write(b []byte) {
	r.t.Helper()
	r.nc.SetWriteDeadline(time.Now().Add(protoReadTimeout))
	if _, err := r.nc.Write(b); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// send encodes and sends messages (startup-type packets included).
func (r *protoClient) send(msgs ...pgproto3.FrontendMessage) {
	r.t.Helper()
	var buf []byte
	for _, m := range msgs {
		var err error
		if buf, err = m.Encode(buf); err != nil {
			r.t.Fatalf("encode %T: %v", m, err)
		}
	}
	r.write(buf)
}

// receive returns the next message, or the error that ended the
// connection. A read that times out fails the test: that is a hang.
func (r *protoClient) receive() (pgproto3.BackendMessage, error) {
	r.t.Helper()
	r.nc.SetReadDeadline(time.Now().Add(protoReadTimeout))
	msg, err := r.fe.Receive()
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		r.t.Fatalf("no answer within %s: the connection hangs", protoReadTimeout)
	}
	return msg, err
}

// readByte reads the one-byte answer to SSLRequest or GSSENCRequest.
func (r *protoClient) readByte() byte {
	r.t.Helper()
	r.nc.SetReadDeadline(time.Now().Add(protoReadTimeout))
	var b [1]byte
	if _, err := io.ReadFull(r.nc, b[:]); err != nil {
		r.t.Fatalf("read the answer to an encryption request: %v", err)
	}
	return b[0]
}

// protoStartup is what a server said between the startup packet and the
// first ReadyForQuery (or the error that ended the startup).
type protoStartup struct {
	negotiate *pgproto3.NegotiateProtocolVersion
	authOK    bool
	keyData   bool
	params    map[string]string
	err       *pgproto3.ErrorResponse
	ready     byte
}

func (r *protoClient) startup(version uint32, params map[string]string) protoStartup {
	r.t.Helper()
	r.send(&pgproto3.StartupMessage{ProtocolVersion: version, Parameters: params})
	return r.readStartup()
}

// readStartup reads up to ReadyForQuery, for a server that asks for no
// password.
func (r *protoClient) readStartup() protoStartup {
	r.t.Helper()
	res := protoStartup{params: map[string]string{}}
	for {
		msg, err := r.receive()
		if err != nil {
			r.t.Fatalf("startup: connection ended: %v", err)
		}
		switch m := msg.(type) {
		case *pgproto3.NegotiateProtocolVersion:
			cp := *m
			cp.UnrecognizedOptions = slices.Clone(m.UnrecognizedOptions)
			res.negotiate = &cp
		case *pgproto3.AuthenticationOk:
			res.authOK = true
		case *pgproto3.ParameterStatus:
			res.params[m.Name] = m.Value
		case *pgproto3.BackendKeyData:
			res.keyData = true
		case *pgproto3.ErrorResponse:
			cp := *m
			res.err = &cp
			return res
		case *pgproto3.ReadyForQuery:
			res.ready = m.TxStatus
			return res
		case *pgproto3.NoticeResponse:
		default:
			r.t.Fatalf("startup: unexpected %T", msg)
		}
	}
}

// simpleQuery runs sql and returns the first column of every row.
func (r *protoClient) simpleQuery(sql string) []string {
	r.t.Helper()
	r.send(&pgproto3.Query{String: sql})
	var out []string
	var failed *pgproto3.ErrorResponse
	for {
		msg, err := r.receive()
		if err != nil {
			r.t.Fatalf("query %q: connection ended: %v", sql, err)
		}
		switch m := msg.(type) {
		case *pgproto3.DataRow:
			out = append(out, string(m.Values[0]))
		case *pgproto3.ErrorResponse:
			cp := *m
			failed = &cp
		case *pgproto3.ReadyForQuery:
			if failed != nil {
				r.t.Fatalf("query %q: %s %s", sql, failed.Code, failed.Message)
			}
			return out
		}
	}
}

// expectClose reads until the server closes the connection and returns
// the first ErrorResponse it sent on the way, or nil if it sent none.
// Reads time out (and fail the test) rather than hang.
func (r *protoClient) expectClose() *pgproto3.ErrorResponse {
	r.t.Helper()
	var first *pgproto3.ErrorResponse
	for {
		msg, err := r.receive()
		if err != nil {
			if !protoConnEnded(err) {
				r.t.Fatalf("waiting for the server to close: %v", err)
			}
			return first
		}
		if m, ok := msg.(*pgproto3.ErrorResponse); ok && first == nil {
			cp := *m
			first = &cp
		}
	}
}

func protoConnEnded(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, net.ErrClosed)
}

// protoParams are a raw client's parameters for the pooler's database.
func protoParams(p *pooler) map[string]string {
	return map[string]string{"user": "postgres", "database": p.db}
}

func TestBackendKeyDataProcessIDsFitInt4AndAreDistinct(t *testing.T) {
	p := startPooler(t, "", "")
	ctx := t.Context()
	seen := map[uint32]bool{}
	var pids []uint32
	for range 50 {
		conn := p.connect(t, "")
		pid := conn.PgConn().PID()
		if pid < 1 || pid > 1<<31-1 {
			t.Errorf("process id %d is outside 1..2^31-1", pid)
		}
		if seen[pid] {
			t.Errorf("process id %d issued twice to connections open at once", pid)
		}
		seen[pid] = true
		pids = append(pids, pid)
		if n := len(conn.PgConn().SecretKey()); n != 4 {
			t.Errorf("secret key of %d bytes, want 4 in protocol 3.0", n)
		}
	}
	// pg_terminate_backend and pg_cancel_backend take int4: every id a
	// client was given must be one it can pass there.
	checker := p.connect(t, "")
	for _, pid := range pids {
		var got int32
		if err := checker.QueryRow(ctx, "SELECT $1::int4", int64(pid)).Scan(&got); err != nil {
			t.Fatalf("SELECT %d::int4: %v", pid, err)
		}
		if uint32(got) != pid {
			t.Fatalf("int4 round trip of %d gave %d", pid, got)
		}
	}
}

func TestProtocolVersionNegotiation(t *testing.T) {
	p := startPooler(t, "", "")

	t.Run("3.2", func(t *testing.T) {
		r := dialProto(t, p.addr)
		res := r.startup(pgproto3.ProtocolVersion32, protoParams(p))
		if res.err != nil {
			t.Fatalf("startup with protocol 3.2: %s %s", res.err.Code, res.err.Message)
		}
		// Either pgpoolx speaks 3.2, or it says which minor version it
		// speaks and carries on with it.
		if res.negotiate != nil {
			// PostgreSQL sends the whole version code here (196608 for
			// 3.0), and libpq reads it so: a bare 0 reads as protocol 0.0.
			if v := res.negotiate.NewestMinorProtocol; v != pgproto3.ProtocolVersion30 {
				t.Errorf("NegotiateProtocolVersion offers version %d (%d.%d), want %d (3.0) as PostgreSQL sends it",
					v, v>>16, v&0xffff, pgproto3.ProtocolVersion30)
			}
			if len(res.negotiate.UnrecognizedOptions) != 0 {
				t.Errorf("NegotiateProtocolVersion lists options %q that were not sent", res.negotiate.UnrecognizedOptions)
			}
		}
		if !res.authOK || !res.keyData || res.ready != 'I' {
			t.Fatalf("startup: AuthenticationOk %v, BackendKeyData %v, ReadyForQuery %q", res.authOK, res.keyData, res.ready)
		}
		if got := r.simpleQuery("SELECT 40 + 2"); !slices.Equal(got, []string{"42"}) {
			t.Errorf("query returned %q", got)
		}
	})

	t.Run("pgx asking for 3.2", func(t *testing.T) {
		conn := p.connect(t, "max_protocol_version=3.2")
		var n int
		if err := conn.QueryRow(t.Context(), "SELECT $1::int * 2", 21).Scan(&n); err != nil || n != 42 {
			t.Fatalf("query: %d, %v", n, err)
		}
	})

	t.Run("_pq_ option", func(t *testing.T) {
		r := dialProto(t, p.addr)
		params := protoParams(p)
		params["_pq_.some_option"] = "on"
		res := r.startup(pgproto3.ProtocolVersion30, params)
		if res.err != nil {
			t.Fatalf("startup with a _pq_ option: %s %s", res.err.Code, res.err.Message)
		}
		if res.negotiate == nil {
			t.Fatal("no NegotiateProtocolVersion for an unknown _pq_ option")
		}
		if !slices.Equal(res.negotiate.UnrecognizedOptions, []string{"_pq_.some_option"}) {
			t.Errorf("NegotiateProtocolVersion lists options %q, want [_pq_.some_option]", res.negotiate.UnrecognizedOptions)
		}
		if v := res.negotiate.NewestMinorProtocol; v != pgproto3.ProtocolVersion30 {
			t.Errorf("NegotiateProtocolVersion offers version %d (%d.%d), want %d (3.0) as PostgreSQL sends it",
				v, v>>16, v&0xffff, pgproto3.ProtocolVersion30)
		}
		if res.ready != 'I' {
			t.Fatalf("no ReadyForQuery after negotiation")
		}
		if got := r.simpleQuery("SELECT 'still here'"); !slices.Equal(got, []string{"still here"}) {
			t.Errorf("query returned %q", got)
		}
	})

	t.Run("major version 4", func(t *testing.T) {
		r := dialProto(t, p.addr)
		r.send(&pgproto3.StartupMessage{ProtocolVersion: 4 << 16, Parameters: protoParams(p)})
		e := r.expectClose()
		if e == nil {
			t.Fatal("connection closed without an ErrorResponse")
		}
		// pgpoolx reports a protocol violation; PostgreSQL itself says
		// 0A000 (feature not supported) here. Either tells the client why.
		if e.Severity != "FATAL" || (e.Code != "08P01" && e.Code != "0A000") {
			t.Errorf("got %s %s %q, want FATAL 08P01", e.Severity, e.Code, e.Message)
		}
	})
}

func TestEncryptionRequestsAreDeclined(t *testing.T) {
	p := startPooler(t, "", "")
	orders := map[string][]pgproto3.FrontendMessage{
		"ssl then gss": {&pgproto3.SSLRequest{}, &pgproto3.GSSEncRequest{}},
		"gss then ssl": {&pgproto3.GSSEncRequest{}, &pgproto3.SSLRequest{}},
	}
	for name, reqs := range orders {
		t.Run(name, func(t *testing.T) {
			r := dialProto(t, p.addr)
			for _, req := range reqs {
				r.send(req)
				if b := r.readByte(); b != 'N' {
					t.Fatalf("%T answered %q, want 'N'", req, b)
				}
			}
			res := r.startup(pgproto3.ProtocolVersion30, protoParams(p))
			if res.err != nil || res.ready != 'I' {
				t.Fatalf("startup after declined encryption: %+v", res.err)
			}
			if got := r.simpleQuery("SELECT 'plain'"); !slices.Equal(got, []string{"plain"}) {
				t.Errorf("query returned %q", got)
			}
		})
	}

	t.Run("psql sslmode=prefer", func(t *testing.T) {
		out, err := runPsqlCmd(t, psqlConninfo(p, "sslmode=prefer"), "-At", "-c", "select 'connected'")
		if err != nil {
			t.Fatalf("psql: %v\n%s", err, out)
		}
		if out != "connected\n" {
			t.Errorf("psql printed %q", out)
		}
	})
}

func TestClientAuthentication(t *testing.T) {
	const (
		password = "S3cret-Pw-q8Zr"
		wrong    = "Wr0ng-Pw-k2Lm"
	)
	for _, typ := range []string{"md5", "scram-sha-256"} {
		t.Run(typ, func(t *testing.T) {
			top := fmt.Sprintf("auth:\n  type: %s\n  users:\n    app:\n      password: %q", typ, password)
			p := startPooler(t, top, "")
			ctx := t.Context()
			dsn := func(user, pw string) string {
				u := url.URL{Scheme: "postgres", User: url.UserPassword(user, pw), Host: p.addr, Path: "/" + p.db,
					RawQuery: "sslmode=disable&default_query_exec_mode=exec"}
				return u.String()
			}

			conn, err := pgx.Connect(ctx, dsn("app", password))
			if err != nil {
				t.Fatalf("right password: %v", err)
			}
			defer conn.Close(context.WithoutCancel(ctx))
			var user string
			if err := conn.QueryRow(ctx, "SELECT current_user").Scan(&user); err != nil {
				t.Fatal(err)
			}
			if user != "postgres" {
				t.Errorf("server-side user is %q, want postgres (the database entry's user)", user)
			}

			_, err = pgx.Connect(ctx, dsn("app", wrong))
			assertCode(t, err, "28P01")
			_, err = pgx.Connect(ctx, dsn("nobody", password))
			assertCode(t, err, "28P01")

			if n := p.logCount("client authentication failed"); n != 2 {
				t.Errorf("%d \"client authentication failed\" log entries, want 2 (one per failure)", n)
			}
			// Neither password, nor the md5 hashes that stand for them,
			// may show up anywhere in the log.
			secrets := []string{password, wrong, authMD5Hex(password + "app"), authMD5Hex(wrong + "app")}
			for _, e := range p.logs.All() {
				text := fmt.Sprintf("%s %s %v", e.LoggerName, e.Message, e.ContextMap())
				for _, s := range secrets {
					if strings.Contains(text, s) {
						t.Errorf("log entry %q holds a password or its hash: %s", e.Message, text)
					}
				}
			}
		})
	}
}

func authMD5Hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestMalformedInputGetsAnErrorNotAHang(t *testing.T) {
	p := startPooler(t, "", "")

	// afterStartup is a raw client past its first ReadyForQuery.
	afterStartup := func(t *testing.T) *protoClient {
		r := dialProto(t, p.addr)
		if res := r.startup(pgproto3.ProtocolVersion30, protoParams(p)); res.ready != 'I' {
			t.Fatalf("startup failed: %+v", res.err)
		}
		return r
	}
	wantProtocolViolation := func(t *testing.T, r *protoClient) {
		t.Helper()
		e := r.expectClose()
		if e == nil {
			t.Fatal("connection closed without an ErrorResponse")
		}
		if e.Severity != "FATAL" || e.Code != "08P01" {
			t.Errorf("got %s %s %q, want FATAL 08P01", e.Severity, e.Code, e.Message)
		}
	}

	t.Run("unknown message type", func(t *testing.T) {
		r := afterStartup(t)
		r.write([]byte{'y', 0, 0, 0, 4})
		wantProtocolViolation(t, r)
	})
	t.Run("unknown message type inside a transaction", func(t *testing.T) {
		r := afterStartup(t)
		r.simpleQuery("BEGIN")
		pid := r.simpleQuery("SELECT pg_backend_pid()")[0]
		r.write([]byte{'y', 0, 0, 0, 4})
		wantProtocolViolation(t, r)
		// The server connection, in a transaction, is closed rather than
		// handed to someone else: its backend goes away.
		direct := p.direct(t)
		waitFor(t, "the transaction's backend to exit", 5*time.Second, func() bool {
			return queryValue[int](t, direct, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1::text::int", pid) == 0
		})
	})
	t.Run("message length shorter than its length field", func(t *testing.T) {
		r := afterStartup(t)
		r.write([]byte{'Q', 0, 0, 0, 2})
		wantProtocolViolation(t, r)
	})
	t.Run("negative message length", func(t *testing.T) {
		r := afterStartup(t)
		r.write([]byte{'Q', 0x80, 0, 0, 0})
		wantProtocolViolation(t, r)
	})
	for _, n := range []uint32{3, 20000} {
		t.Run(fmt.Sprintf("startup packet length %d", n), func(t *testing.T) {
			r := dialProto(t, p.addr)
			// The length alone, and nothing after it: a server that
			// believed it would wait for the rest.
			r.write(binary.BigEndian.AppendUint32(nil, n))
			if e := r.expectClose(); e != nil && (e.Severity != "FATAL" || e.Code != "08P01") {
				t.Errorf("got %s %s %q, want FATAL 08P01 or a bare close", e.Severity, e.Code, e.Message)
			}
		})
	}

	// After all that, pgpoolx still serves.
	conn := p.connect(t, "")
	var one int
	if err := conn.QueryRow(t.Context(), "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("query after malformed clients: %v", err)
	}
}

// psqlConninfo is a libpq keyword/value string for the pooler.
func psqlConninfo(p *pooler, extra string) string {
	host, port, _ := net.SplitHostPort(p.addr)
	return fmt.Sprintf("host=%s port=%s dbname=%s user=postgres %s", host, port, p.db, extra)
}

// runPsqlCmd runs psql with the connection string and arguments, no psqlrc,
// stopping at the first error, and returns its standard output (standard
// error too when it fails).
func runPsqlCmd(t testing.TB, connString string, args ...string) (string, error) {
	t.Helper()
	path, err := exec.LookPath("psql")
	if err != nil {
		t.Skipf("psql not found: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	all := append([]string{"-X", "-v", "ON_ERROR_STOP=1", "-d", connString}, args...)
	cmd := exec.CommandContext(ctx, path, all...)
	cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=5", "PGAPPNAME=pgpoolx-test")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String() + stderr.String(), err
	}
	return stdout.String(), nil
}

func TestPsqlThroughThePooler(t *testing.T) {
	p := startPooler(t, "", "pool_size: 2")
	conninfo := psqlConninfo(p, "sslmode=disable")

	t.Run("queries", func(t *testing.T) {
		out, err := runPsqlCmd(t, conninfo, "-At", "-c", "select 1", "-c", "select 2; select 3")
		if err != nil {
			t.Fatalf("psql: %v\n%s", err, out)
		}
		if out != "1\n2\n3\n" {
			t.Errorf("psql printed %q, want \"1\\n2\\n3\\n\"", out)
		}
	})

	t.Run("copy in and out", func(t *testing.T) {
		direct := p.direct(t)
		if _, err := direct.Exec(t.Context(), "CREATE TABLE copied (i int PRIMARY KEY, s text)"); err != nil {
			t.Fatal(err)
		}
		var in strings.Builder
		for i := 1; i <= 1000; i++ {
			s := fmt.Sprintf("row %d", i)
			if i%100 == 0 {
				s = `"with, a comma and ""quotes"""` // as PostgreSQL's CSV output quotes it
			}
			fmt.Fprintf(&in, "%d,%s\n", i, s)
		}
		dir := t.TempDir()
		inPath, outPath := filepath.Join(dir, "in.csv"), filepath.Join(dir, "out.csv")
		if err := os.WriteFile(inPath, []byte(in.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := runPsqlCmd(t, conninfo, "-c", fmt.Sprintf(`\copy copied from '%s' with (format csv)`, inPath))
		if err != nil {
			t.Fatalf("psql \\copy from: %v\n%s", err, out)
		}
		if strings.TrimSpace(out) != "COPY 1000" {
			t.Errorf("\\copy from printed %q", out)
		}
		var n int
		if err := direct.QueryRow(t.Context(), "SELECT count(*) FROM copied").Scan(&n); err != nil || n != 1000 {
			t.Fatalf("rows copied in: %d, %v", n, err)
		}
		out, err = runPsqlCmd(t, conninfo, "-c", fmt.Sprintf(`\copy (SELECT i, s FROM copied ORDER BY i) to '%s' with (format csv)`, outPath))
		if err != nil {
			t.Fatalf("psql \\copy to: %v\n%s", err, out)
		}
		got, err := os.ReadFile(outPath)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != in.String() {
			t.Errorf("copied out %d bytes that differ from the %d copied in", len(got), in.Len())
		}
	})
}

func TestNoticesAndNotificationsReachTheClient(t *testing.T) {
	t.Run("notice in transaction mode", func(t *testing.T) {
		p := startPooler(t, "", "pool_size: 1")
		cfg, err := pgx.ParseConfig(p.dsn(""))
		if err != nil {
			t.Fatal(err)
		}
		notices := make(chan pgconn.Notice, 10)
		cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) { notices <- *n }
		conn, err := pgx.ConnectConfig(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.WithoutCancel(t.Context()))
		if _, err := conn.Exec(t.Context(), "DO $$BEGIN RAISE NOTICE 'hello'; END$$"); err != nil {
			t.Fatal(err)
		}
		// The notice comes before the command's ReadyForQuery, so Exec has
		// delivered it by the time it returns.
		select {
		case n := <-notices:
			if n.Severity != "NOTICE" || n.Code != "00000" || n.Message != "hello" {
				t.Errorf("notice = %s %s %q, want NOTICE 00000 hello", n.Severity, n.Code, n.Message)
			}
		default:
			t.Fatal("no notice delivered")
		}
		if len(notices) != 0 {
			t.Errorf("%d extra notices", len(notices))
		}
	})

	t.Run("notification in session mode", func(t *testing.T) {
		p := startPooler(t, "", "pool_mode: session\npool_size: 2")
		ctx := t.Context()
		conn := p.connect(t, "")
		if _, err := conn.Exec(ctx, "LISTEN pgpoolx_chan"); err != nil {
			t.Fatal(err)
		}
		wait := func(want string) {
			t.Helper()
			wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			n, err := conn.WaitForNotification(wctx)
			if err != nil {
				t.Fatalf("waiting for notification %q: %v", want, err)
			}
			if n.Channel != "pgpoolx_chan" || n.Payload != want {
				t.Errorf("notification on %q with %q, want pgpoolx_chan with %q", n.Channel, n.Payload, want)
			}
		}
		// From the listener itself: delivered with its own NOTIFY's reply.
		if _, err := conn.Exec(ctx, "NOTIFY pgpoolx_chan, 'from myself'"); err != nil {
			t.Fatal(err)
		}
		wait("from myself")
		// From elsewhere, while the listener sits idle: delivered
		// asynchronously through pgpoolx.
		if _, err := p.direct(t).Exec(ctx, "NOTIFY pgpoolx_chan, 'from elsewhere'"); err != nil {
			t.Fatal(err)
		}
		wait("from elsewhere")
	})
}

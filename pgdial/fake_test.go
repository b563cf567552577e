package pgdial

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgpoolx/pgpoolx/wire"
)

// brokenServer listens on loopback and runs script on the one connection it
// accepts: a server that breaks the protocol on purpose, to test our side
// of it (this is not a stand-in for PostgreSQL, which the other tests use).
// ctx ends when the test does; the connection is closed when script
// returns. It returns a Config for it, without TLS and with a timeout only
// a hang reaches.
func brokenServer(t *testing.T, script func(ctx context.Context, c net.Conn)) Config {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(time.Minute))
		script(t.Context(), c)
	}()
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
	})
	return Config{
		Host:    "127.0.0.1",
		Port:    l.Addr().(*net.TCPAddr).Port,
		User:    "u",
		SSLMode: SSLDisable,
		Timeout: 20 * time.Second,
	}
}

// readStartup reads the client's StartupMessage, answering SSLRequests
// with 'N' on the way.
func readStartup(c net.Conn) error {
	for {
		var n [4]byte
		if _, err := io.ReadFull(c, n[:]); err != nil {
			return err
		}
		body := make([]byte, binary.BigEndian.Uint32(n[:])-4)
		if _, err := io.ReadFull(c, body); err != nil {
			return err
		}
		if binary.BigEndian.Uint32(body) != wire.SSLRequestCode {
			return nil
		}
		if _, err := c.Write([]byte{sslNo}); err != nil {
			return err
		}
	}
}

// readMessage reads one typed message from the client.
func readMessage(c net.Conn) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return 0, nil, err
	}
	body := make([]byte, binary.BigEndian.Uint32(hdr[1:])-4)
	_, err := io.ReadFull(c, body)
	return hdr[0], body, err
}

// serverMsg makes a message of type typ whose body is parts.
func serverMsg(typ byte, parts ...[]byte) []byte {
	body := bytes.Join(parts, nil)
	return append(wire.AppendHeader(nil, typ, len(body)), body...)
}

func authMsg(code uint32, data ...[]byte) []byte {
	return serverMsg(msgAuthentication, append([][]byte{binary.BigEndian.AppendUint32(nil, code)}, data...)...)
}

func cstr(s string) []byte { return append([]byte(s), 0) }

var (
	authOKMsg = authMsg(authOK)
	readyMsg  = serverMsg(wire.ReadyForQuery, []byte{wire.TxIdle})
	keyMsg    = serverMsg(wire.BackendKeyData, []byte{0, 0, 0, 42, 1, 2, 3, 4})
	saslMsg   = authMsg(authSASL, cstr("SCRAM-SHA-256-PLUS"), cstr(saslMechanismSCRAM), []byte{0})
)

// scramStart reads the startup, offers SASL and returns the client's nonce
// from its SASLInitialResponse.
func scramStart(c net.Conn) (string, error) {
	if err := readStartup(c); err != nil {
		return "", err
	}
	if _, err := c.Write(saslMsg); err != nil {
		return "", err
	}
	_, body, err := readMessage(c)
	if err != nil {
		return "", err
	}
	_, nonce, _ := bytes.Cut(body, []byte(",r="))
	return string(nonce), nil
}

// scramUntilFinal runs a SCRAM exchange up to the client's proof, with a
// server-first-message that extends the client's nonce, and returns.
func scramUntilFinal(c net.Conn, iterations string) error {
	nonce, err := scramStart(c)
	if err != nil {
		return err
	}
	first := "r=" + nonce + "server,s=" + base64.StdEncoding.EncodeToString([]byte("salt")) + ",i=" + iterations
	if _, err := c.Write(authMsg(authSASLContinue, []byte(first))); err != nil {
		return err
	}
	_, _, err = readMessage(c)
	return err
}

// reply is a script: read the startup, write msgs, wait for the client to
// hang up.
func reply(msgs ...[]byte) func(context.Context, net.Conn) {
	return func(_ context.Context, c net.Conn) {
		if readStartup(c) != nil {
			return
		}
		c.Write(bytes.Join(msgs, nil))
		io.Copy(io.Discard, c)
	}
}

func TestBrokenServers(t *testing.T) {
	isProtocol := func(err error) bool { return errors.Is(err, ErrProtocol) }
	isUnsupported := func(err error) bool { return errors.Is(err, ErrUnsupportedAuth) }
	isServerProof := func(err error) bool { return errors.Is(err, ErrServerProof) }
	isTimeout := func(err error) bool { return errors.Is(err, context.DeadlineExceeded) }
	keys := Credentials{SCRAMClientKey: make([]byte, scramKeyLen), SCRAMServerKey: make([]byte, scramKeyLen)}

	for _, tc := range []struct {
		name    string
		mode    SSLMode
		creds   Credentials
		timeout time.Duration
		script  func(ctx context.Context, c net.Conn)
		match   func(error) bool // besides the words in want
		want    string
	}{
		{
			name: "closes instead of answering SSLRequest", mode: SSLPrefer,
			script: func(_ context.Context, c net.Conn) { io.ReadFull(c, make([]byte, 8)) },
			want:   "the server closed the connection during TLS negotiation",
		},
		{
			name:   "closes after the startup message",
			script: func(_ context.Context, c net.Conn) { readStartup(c) },
			want:   "the server closed the connection during authentication",
		},
		{
			name: "closes after AuthenticationOk",
			script: func(_ context.Context, c net.Conn) {
				if readStartup(c) == nil {
					c.Write(authOKMsg)
				}
			},
			want: "the server closed the connection during startup after authentication",
		},
		{
			name:   "closes in the middle of a message",
			script: func(_ context.Context, c net.Conn) { readStartup(c); c.Write(authOKMsg[:6]) },
			match:  func(err error) bool { return errors.Is(err, io.ErrUnexpectedEOF) },
			want:   "the server closed the connection during authentication",
		},
		{
			name:   "a gigabyte message",
			script: reply([]byte{msgAuthentication, 0x40, 0, 0, 0}),
			match:  func(err error) bool { return isProtocol(err) && errors.Is(err, wire.ErrTooLarge) },
			want:   "exceeds the limit of 1048576",
		},
		{
			name:   "a length shorter than itself",
			script: reply([]byte{msgAuthentication, 0, 0, 0, 3}),
			match:  func(err error) bool { return isProtocol(err) && errors.Is(err, wire.ErrBadLength) },
			want:   "invalid message length",
		},
		{
			name: "answers SSLRequest with garbage", mode: SSLPrefer,
			script: func(_ context.Context, c net.Conn) { io.ReadFull(c, make([]byte, 8)); c.Write([]byte("HTTP/1.1 400")) },
			match:  isProtocol,
			want:   "it answered SSLRequest with byte 'H', not S or N",
		},
		{
			name:   "ReadyForQuery before AuthenticationOk",
			script: reply(readyMsg),
			match:  isProtocol,
			want:   "ReadyForQuery before AuthenticationOk",
		},
		{
			name:   "a message type that has no place in startup",
			script: reply(authOKMsg, serverMsg('D', []byte{0, 0})),
			match:  isProtocol,
			want:   `unexpected message type 'D' during startup after authentication`,
		},
		{
			name:   "an authentication message too short",
			script: reply(serverMsg(msgAuthentication, []byte{0, 0})),
			match:  isProtocol,
			want:   "malformed Authentication message",
		},
		{
			name:   "an md5 request with a short salt",
			creds:  Credentials{Password: password},
			script: reply(authMsg(authMD5, []byte{1, 2, 3})),
			match:  isProtocol,
			want:   "malformed AuthenticationMD5Password",
		},
		{
			name:   "an authentication request after AuthenticationOk",
			script: reply(authOKMsg, authMsg(authCleartext)),
			match:  isProtocol,
			want:   "after AuthenticationOk",
		},
		{
			name:   "a malformed BackendKeyData",
			script: reply(authOKMsg, serverMsg(wire.BackendKeyData, []byte{1, 2, 3})),
			match:  isProtocol,
			want:   "malformed BackendKeyData",
		},
		{
			name:   "a ParameterStatus without its NULs",
			script: reply(authOKMsg, serverMsg(wire.ParameterStatus, []byte("TimeZone"))),
			match:  isProtocol,
			want:   "malformed ParameterStatus",
		},
		{
			name: "endless ParameterStatus names",
			script: func(_ context.Context, c net.Conn) {
				msgs := [][]byte{authOKMsg}
				for i := range maxParams + 1 {
					msgs = append(msgs, serverMsg(wire.ParameterStatus, cstr(strings.Repeat("x", i+1)), cstr("")))
				}
				reply(msgs...)(nil, c)
			},
			match: isProtocol,
			want:  "more than 1000 ParameterStatus names",
		},
		{name: "GSSAPI", script: reply(authMsg(authGSS)), match: isUnsupported, want: "unsupported authentication method: GSSAPI"},
		{name: "SSPI", script: reply(authMsg(authSSPI)), match: isUnsupported, want: "unsupported authentication method: SSPI"},
		{name: "Kerberos", script: reply(authMsg(authKerberosV5)), match: isUnsupported, want: "Kerberos V5"},
		{name: "an unknown method", script: reply(authMsg(99)), match: isUnsupported, want: "unknown authentication request 99"},
		{
			name: "SASL without SCRAM-SHA-256", creds: keys,
			script: reply(authMsg(authSASL, cstr("SCRAM-SHA-256-PLUS"), []byte{0})),
			match:  isUnsupported,
			want:   `the server offers SASL mechanisms ["SCRAM-SHA-256-PLUS"], and only SCRAM-SHA-256 is supported`,
		},
		{
			name: "SASL continuation without SASL", creds: keys,
			script: reply(authMsg(authSASLContinue, []byte("r=x"))),
			match:  isProtocol,
			want:   "a SASL continuation without a SASL exchange",
		},
		{
			name: "AuthenticationOk right after SCRAM starts", creds: keys,
			script: func(_ context.Context, c net.Conn) {
				if _, err := scramStart(c); err == nil {
					c.Write(authOKMsg)
				}
			},
			match: isServerProof,
			want:  "AuthenticationOk without a SCRAM server signature",
		},
		{
			name: "AuthenticationOk in place of the server signature", creds: keys,
			script: func(_ context.Context, c net.Conn) {
				if scramUntilFinal(c, "4096") == nil {
					c.Write(authOKMsg)
				}
			},
			match: isServerProof,
			want:  "AuthenticationOk without a SCRAM server signature",
		},
		{
			name: "a wrong server signature", creds: keys,
			script: func(_ context.Context, c net.Conn) {
				if scramUntilFinal(c, "4096") == nil {
					sig := base64.StdEncoding.EncodeToString(make([]byte, scramKeyLen))
					c.Write(authMsg(authSASLFinal, []byte("v="+sig)))
				}
			},
			match: isServerProof,
			want:  "its SCRAM server signature is wrong",
		},
		{
			name: "a SCRAM error in server-final", creds: keys,
			script: func(_ context.Context, c net.Conn) {
				if scramUntilFinal(c, "4096") == nil {
					c.Write(authMsg(authSASLFinal, []byte("e=invalid-proof")))
				}
			},
			want: `the server ended SCRAM with error "invalid-proof"`,
		},
		{
			name: "a nonce that is not ours", creds: keys,
			script: func(_ context.Context, c net.Conn) {
				if _, err := scramStart(c); err == nil {
					c.Write(authMsg(authSASLContinue, []byte("r=somebodyelse,s=c2FsdA==,i=4096")))
				}
			},
			match: isProtocol,
			want:  "the server's nonce does not extend ours",
		},
		{
			name: "an md5 request in the middle of SCRAM", creds: Credentials{Password: password},
			script: func(_ context.Context, c net.Conn) {
				if _, err := scramStart(c); err == nil {
					c.Write(authMsg(authMD5, []byte{1, 2, 3, 4}))
				}
			},
			match: isProtocol,
			want:  "authentication request 5 in the middle of SCRAM",
		},
		{
			name:    "says nothing",
			timeout: time.Second,
			script:  func(ctx context.Context, c net.Conn) { readStartup(c); <-ctx.Done() },
			match:   isTimeout,
			want:    "gave up during authentication",
		},
		{
			name: "says S and then nothing", mode: SSLRequire,
			timeout: time.Second,
			script: func(ctx context.Context, c net.Conn) {
				io.ReadFull(c, make([]byte, 8))
				c.Write([]byte{sslYes})
				<-ctx.Done()
			},
			match: isTimeout,
			want:  "gave up during TLS handshake",
		},
		{
			// PBKDF2 cannot be stopped; Dial must not wait for it. A
			// hundred million iterations take seconds on the fastest
			// hardware, and are left to run out in the background.
			name: "asks for a hundred million PBKDF2 iterations", creds: Credentials{Password: password},
			timeout: time.Second,
			script: func(ctx context.Context, c net.Conn) {
				if scramUntilFinal(c, "100000000") == nil {
					<-ctx.Done()
				}
			},
			match: isTimeout,
			want:  "gave up deriving SCRAM keys from the password with 100000000 iterations",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := brokenServer(t, tc.script)
			if tc.mode != "" {
				cfg.SSLMode = tc.mode
			}
			if tc.timeout != 0 {
				cfg.Timeout = tc.timeout
			}
			cfg.Credentials = tc.creds
			start := time.Now()
			conn, err := Dial(t.Context(), cfg)
			if err == nil {
				conn.NetConn.Close()
				t.Fatal("Dial succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) || tc.match != nil && !tc.match(err) {
				t.Errorf("err = %v\nwant it to say %q and be the right kind", err, tc.want)
			}
			if tc.timeout != 0 && time.Since(start) > tc.timeout+5*time.Second {
				t.Errorf("Dial took %v with a timeout of %v", time.Since(start), tc.timeout)
			}
			if strings.Contains(err.Error(), password) {
				t.Errorf("error %q holds the password", err)
			}
		})
	}
}

func TestServerErrorKeepsItsFields(t *testing.T) {
	errResp := serverMsg(wire.ErrorResponse,
		[]byte("SFATAL\x00VFATAL\x00C53300\x00Msorry, too many clients already\x00Dno detail\x00Hwait\x00"), []byte{0})
	for _, tc := range []struct {
		name   string
		mode   SSLMode
		script func(context.Context, net.Conn)
	}{
		{"during startup", SSLDisable, reply(errResp)},
		// A server that cannot fork answers SSLRequest with an
		// ErrorResponse.
		{"in answer to SSLRequest", SSLPrefer, func(_ context.Context, c net.Conn) {
			io.ReadFull(c, make([]byte, 8))
			c.Write(errResp)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := brokenServer(t, tc.script)
			cfg.SSLMode = tc.mode
			_, err := Dial(t.Context(), cfg)
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) {
				t.Fatalf("err = %v, want a *pgconn.PgError", err)
			}
			want := pgconn.PgError{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: "53300",
				Message: "sorry, too many clients already", Detail: "no detail", Hint: "wait"}
			if *pgErr != want {
				t.Errorf("PgError = %+v, want %+v", *pgErr, want)
			}
		})
	}
}

// TestFakeServerOK checks what Conn holds after a startup we wrote
// ourselves, including bytes the server sent past ReadyForQuery.
func TestFakeServerOK(t *testing.T) {
	notice := serverMsg(wire.NoticeResponse, []byte("SNOTICE\x00Mhello\x00\x00"))
	cfg := brokenServer(t, reply(
		serverMsg(msgNegotiateProtocolVersion, []byte{0, 0, 0, 0, 0, 0, 0, 0}),
		authOKMsg,
		serverMsg(wire.ParameterStatus, cstr("server_version"), cstr("15.0")),
		notice,
		serverMsg(wire.ParameterStatus, cstr("TimeZone"), cstr("UTC")),
		serverMsg(wire.ParameterStatus, cstr("TimeZone"), cstr("Europe/Paris")),
		keyMsg,
		readyMsg,
		notice))
	cfg.Params = map[string]string{"application_name": "x"}
	conn, err := Dial(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.NetConn.Close()
	if conn.PID != 42 || !bytes.Equal(conn.SecretKey, []byte{1, 2, 3, 4}) || conn.TLS {
		t.Errorf("PID, SecretKey, TLS = %d, %v, %v; want 42, [1 2 3 4], false", conn.PID, conn.SecretKey, conn.TLS)
	}
	if len(conn.Params) != 2 || conn.Params["server_version"] != "15.0" || conn.Params["TimeZone"] != "Europe/Paris" {
		t.Errorf("Params = %v", conn.Params)
	}
	conn.NetConn.SetDeadline(time.Now().Add(20 * time.Second))
	rest := make([]byte, len(notice))
	if _, err := io.ReadFull(conn.Reader, rest); err != nil || !bytes.Equal(rest, notice) {
		t.Errorf("after ReadyForQuery Reader gave %q, %v; want the notice the server sent", rest, err)
	}
}

// TestCancel checks that cancelling ctx ends a Dial that waits for the
// server.
func TestCancel(t *testing.T) {
	started := make(chan struct{})
	cfg := brokenServer(t, func(ctx context.Context, c net.Conn) {
		if readStartup(c) == nil {
			close(started)
		}
		<-ctx.Done()
	})
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		<-started
		cancel()
	}()
	_, err := Dial(ctx, cfg)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "gave up during authentication") {
		t.Errorf("err = %v, want context.Canceled during authentication", err)
	}
}

func TestConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	_, err = Dial(t.Context(), Config{Host: "127.0.0.1", Port: port, User: "u", Timeout: 20 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "connecting") || !strings.Contains(err.Error(), "refused") {
		t.Errorf("err = %v, want connection refused while connecting", err)
	}
}

// Package pgdial opens an authenticated connection to a PostgreSQL server and
// hands over the socket, ready for the frontend protocol: TLS as libpq's
// sslmode does it, the StartupMessage, password authentication, and
// everything up to the first ReadyForQuery.
//
// It exists because pgconn cannot log in with what pgpoolx may hold instead
// of a password: SCRAM pass-through keys (the ClientKey recovered from a
// client's own SCRAM login, with the ServerKey of the user's verifier, as
// PgBouncer does it) or the md5 hash that pg_authid stores.
//
// The server's own errors (a wrong password, an unknown database, too many
// connections) come back as *pgconn.PgError, pgx's type, so that callers keep
// the SQLSTATE and can treat them like any other server error. Everything
// else says in words which step failed, and wraps one of the errors below or
// the underlying cause (a net error, a context error, an x509 error) for
// errors.Is and errors.As.
//
// Nothing here logs, and no error holds a password, a hash or a key.
package pgdial

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// SSLMode says whether and how to use TLS, as libpq's sslmode does.
type SSLMode string

// The SSL modes. The empty SSLMode means SSLPrefer.
const (
	// SSLDisable never asks for TLS.
	SSLDisable SSLMode = "disable"
	// SSLAllow connects without TLS, and tries again with TLS only when the
	// server refuses the plain connection with SQLSTATE 28000 (what a
	// pg_hba.conf that has only hostssl lines for the user answers). libpq
	// retries on any server error; a wrong password or an unknown database
	// would fail the same way with TLS.
	SSLAllow SSLMode = "allow"
	// SSLPrefer asks for TLS and goes on without it if the server has none.
	// Unlike libpq it does not start over without TLS when the TLS handshake
	// itself fails: a server that says it speaks TLS and then does not is
	// broken or not the server we think.
	SSLPrefer SSLMode = "prefer"
	// SSLRequire insists on TLS. Without SSLRootCert the server's
	// certificate is not checked at all; with it, the chain is checked as
	// SSLVerifyCA does, as libpq does when it finds a root certificate.
	SSLRequire SSLMode = "require"
	// SSLVerifyCA insists on TLS and on a server certificate signed by a CA
	// in SSLRootCert, whatever host name it is for.
	SSLVerifyCA SSLMode = "verify-ca"
	// SSLVerifyFull is SSLVerifyCA and also checks that the certificate is
	// for ServerName (or Host).
	SSLVerifyFull SSLMode = "verify-full"
)

// Credentials are what Dial may answer the server's authentication request
// with. Set the ones you have; Dial picks what the server's method needs:
//
//   - cleartext password (pg_hba "password"): Password.
//   - md5: Password, else MD5Hash.
//   - SCRAM-SHA-256: the SCRAM keys when both are set (no PBKDF2 to pay
//     for), else Password.
//
// A server that asks for something the credentials cannot answer gets no
// answer: Dial fails with ErrNoCredentials. A server that asks for nothing
// (trust) is fine with any credentials, or none.
//
// Credentials print as the list of kinds set, never their values, under
// every fmt verb.
type Credentials struct {
	// Password is the plaintext password. It is used as is: unlike libpq
	// and pgconn, Dial does not SASLprep it for SCRAM (the standard library
	// has no NFKC tables; package auth makes the same choice). That changes
	// nothing for ASCII passwords; one that SASLprep would rewrite
	// (non-ASCII spaces, characters NFKC maps to others) fails SCRAM, and
	// needs the SCRAM keys instead.
	Password string
	// MD5Hash is "md5" and 32 hex digits, hex(md5(password+user)), as
	// pg_authid stores it. It answers md5 authentication only.
	MD5Hash string
	// SCRAMClientKey and SCRAMServerKey are SCRAM-SHA-256 pass-through keys,
	// 32 bytes each: the ClientKey recovered from a client's SCRAM proof and
	// the ServerKey of the verifier in pg_authid. They answer SCRAM only,
	// and only a server whose verifier they came from, since they are bound
	// to its salt and iteration count. pgpoolx takes the ClientKey from
	// auth.SCRAM.ClientKey and the ServerKey from auth.Secret.SCRAMServerKey.
	SCRAMClientKey, SCRAMServerKey []byte
}

// String names the kinds of credentials set and nothing of their values.
func (c Credentials) String() string { return "pgdial.Credentials(" + c.kinds() + ")" }

// kinds lists the kinds of credentials set, or says there are none.
func (c Credentials) kinds() string {
	var kinds []string
	if c.Password != "" {
		kinds = append(kinds, "password")
	}
	if c.MD5Hash != "" {
		kinds = append(kinds, "md5 hash")
	}
	if c.hasSCRAMKeys() {
		kinds = append(kinds, "SCRAM keys")
	}
	if kinds == nil {
		return "none"
	}
	return strings.Join(kinds, ", ")
}

// Format prints String for every verb, so that no verb (%#v, %x) can put a
// password or a key into a log line, even inside a printed Config.
func (c Credentials) Format(f fmt.State, _ rune) { io.WriteString(f, c.String()) }

func (c Credentials) hasSCRAMKeys() bool {
	return len(c.SCRAMClientKey) > 0 || len(c.SCRAMServerKey) > 0
}

// Config says where to connect and as whom.
type Config struct {
	// Host is a host name or an IP address (TCP only: no Unix-domain
	// sockets); Port defaults to 5432.
	Host string
	Port int
	// Database defaults to User, as in libpq.
	Database string
	User     string

	Credentials Credentials

	// SSLMode defaults to SSLPrefer.
	SSLMode SSLMode
	// SSLRootCert is a file of PEM certificates of the CAs trusted to sign
	// the server's certificate. SSLVerifyCA and SSLVerifyFull need it. When
	// it is set, every mode that ends up using TLS checks the chain against
	// it, and SSLVerifyFull checks the host name too; when it is not,
	// nothing about the server's certificate is checked.
	SSLRootCert string
	// ServerName is the name the certificate must be for under
	// SSLVerifyFull, and the name sent in TLS SNI; it defaults to Host.
	ServerName string

	// Params are more startup parameters (application_name, options,
	// search_path...). "user" and "database" are set from the fields above
	// and may not appear here.
	Params map[string]string

	// Timeout bounds the whole of Dial: the TCP connect, TLS, authentication
	// and waiting for ReadyForQuery, and for SSLAllow both attempts. Zero
	// means no bound but ctx.
	Timeout time.Duration

	// Wrap, if set, may replace the TCP connection right after it is made,
	// before anything is sent (with another net.Conn over the same socket,
	// such as an event loop's); nil keeps it. TLS then runs over what it
	// returns, and its deadlines must work as a TCP connection's do.
	Wrap func(net.Conn) net.Conn
}

// Conn is a connection that has passed ReadyForQuery. It is the caller's to
// use and to close.
type Conn struct {
	// NetConn is the connection to the server: a *tls.Conn when TLS is in
	// use, else the TCP connection. It has no deadline set.
	NetConn net.Conn
	// Reader buffers NetConn, with ReadBufferSize bytes, and must be used
	// for every read from it: it may hold bytes the server sent after
	// ReadyForQuery (nothing, normally, since it has been asked nothing).
	Reader *bufio.Reader
	// PID and SecretKey come from BackendKeyData, for CancelRequest. They
	// are zero and nil if the server sent none.
	PID       uint32
	SecretKey []byte
	// Params are the server's ParameterStatus values (server_version,
	// client_encoding, TimeZone...).
	Params map[string]string
	// TLS reports whether NetConn is a TLS connection.
	TLS bool
}

// ReadBufferSize is the size of Conn.Reader's buffer.
const ReadBufferSize = 16 << 10

var (
	// ErrTLSRefused means the server has no TLS and the SSLMode insists on
	// it.
	ErrTLSRefused = errors.New("the server refused TLS")
	// ErrNoCredentials means the server asked for a kind of password the
	// Credentials do not have.
	ErrNoCredentials = errors.New("no credentials for the server's authentication method")
	// ErrUnsupportedAuth means the server asked for an authentication method
	// Dial does not speak (Kerberos, GSSAPI, SSPI, a SASL mechanism other
	// than SCRAM-SHA-256).
	ErrUnsupportedAuth = errors.New("unsupported authentication method")
	// ErrServerProof means the server did not prove in SCRAM that it knows
	// the user's keys: a wrong signature, or none at all. It may not be the
	// server we meant to reach, so Dial does not trust it.
	ErrServerProof = errors.New("the server did not prove it knows the user's SCRAM keys")
	// ErrProtocol means the server sent something PostgreSQL never sends:
	// a malformed or oversized message, or one out of order.
	ErrProtocol = errors.New("the server broke the protocol")
)

// Dial connects, authenticates and waits for ReadyForQuery. ctx and
// cfg.Timeout bound it all, the connection is closed on every error, and a
// server error comes back as *pgconn.PgError.
func Dial(ctx context.Context, cfg Config) (*Conn, error) {
	tlsConf, err := cfg.prepare()
	if err != nil {
		return nil, fmt.Errorf("pgdial: %w", err)
	}
	if cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Timeout)
		defer cancel()
	}
	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))

	var c *Conn
	switch cfg.SSLMode {
	case SSLDisable:
		c, err = attempt(ctx, &cfg, addr, nil, false)
	case SSLAllow:
		c, err = attempt(ctx, &cfg, addr, nil, false)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == codeInvalidAuthorization {
			c2, err2 := attempt(ctx, &cfg, addr, tlsConf, true)
			// A server without TLS at all: its refusal of the plain
			// connection says more than that.
			if !errors.Is(err2, ErrTLSRefused) {
				c, err = c2, err2
			}
		}
	case SSLPrefer:
		c, err = attempt(ctx, &cfg, addr, tlsConf, false)
	default:
		c, err = attempt(ctx, &cfg, addr, tlsConf, true)
	}
	if err != nil {
		return nil, fmt.Errorf("pgdial: %s user=%q database=%q: %w", addr, cfg.User, cfg.Database, err)
	}
	return c, nil
}

// codeInvalidAuthorization is SQLSTATE 28000, what pg_hba.conf answers when
// no line lets the connection in.
const codeInvalidAuthorization = "28000"

// prepare checks cfg, fills in its defaults and makes the TLS config, which
// is nil for SSLDisable.
func (cfg *Config) prepare() (*tls.Config, error) {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	if cfg.Host == "" {
		bad("no Host")
	}
	if cfg.Port == 0 {
		cfg.Port = 5432
	} else if cfg.Port < 0 || cfg.Port > 65535 {
		bad("Port %d is not in 1..65535", cfg.Port)
	}
	if cfg.User == "" {
		bad("no User")
	}
	if cfg.Database == "" {
		cfg.Database = cfg.User
	}
	if cfg.SSLMode == "" {
		cfg.SSLMode = SSLPrefer
	}
	switch cfg.SSLMode {
	case SSLDisable, SSLAllow, SSLPrefer, SSLRequire:
	case SSLVerifyCA, SSLVerifyFull:
		if cfg.SSLRootCert == "" {
			bad("sslmode=%s needs SSLRootCert, the CA certificates to check the server's certificate against", cfg.SSLMode)
		}
	default:
		bad("unknown SSLMode %q (want disable, allow, prefer, require, verify-ca or verify-full)", cfg.SSLMode)
	}
	if cfg.Timeout < 0 {
		bad("negative Timeout")
	}
	for k, v := range cfg.Params {
		switch {
		case k == "user" || k == "database":
			bad("Params may not set %q: use the Config field", k)
		case k == "" || strings.ContainsRune(k, 0) || strings.ContainsRune(v, 0):
			bad("Params %q: a startup parameter needs a name, and neither name nor value may hold a NUL byte", k)
		}
	}
	for _, s := range []string{cfg.User, cfg.Database, cfg.Credentials.Password} {
		if strings.ContainsRune(s, 0) {
			bad("User, Database and Password may not hold a NUL byte")
			break
		}
	}
	cr := cfg.Credentials
	if cr.MD5Hash != "" {
		digits, ok := strings.CutPrefix(cr.MD5Hash, "md5")
		if _, err := hex.DecodeString(digits); !ok || len(digits) != 32 || err != nil {
			bad(`MD5Hash is not "md5" and 32 hex digits`)
		}
	}
	if cr.hasSCRAMKeys() && (len(cr.SCRAMClientKey) != scramKeyLen || len(cr.SCRAMServerKey) != scramKeyLen) {
		bad("SCRAMClientKey and SCRAMServerKey must both be set, %d bytes each", scramKeyLen)
	}
	if len(problems) > 0 {
		return nil, errors.New("bad config: " + strings.Join(problems, "; "))
	}
	if cfg.SSLMode == SSLDisable {
		return nil, nil
	}
	return cfg.tlsConfig()
}

func (cfg *Config) tlsConfig() (*tls.Config, error) {
	serverName := cfg.ServerName
	if serverName == "" {
		serverName = cfg.Host
	}
	conf := &tls.Config{
		MinVersion: tls.VersionTLS12,
		ServerName: serverName,
		// The certificate is checked by VerifyConnection below when there
		// is a root certificate, since Go's own check cannot leave out the
		// host name for verify-ca; and not at all when there is none.
		InsecureSkipVerify: true,
	}
	if cfg.SSLRootCert == "" {
		return conf, nil
	}
	pem, err := os.ReadFile(cfg.SSLRootCert)
	if err != nil {
		return nil, fmt.Errorf("read sslrootcert: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("sslrootcert %s holds no PEM certificate", cfg.SSLRootCert)
	}
	v := certVerifier{roots: roots, rootFile: cfg.SSLRootCert}
	if cfg.SSLMode == SSLVerifyFull {
		v.host = serverName
	}
	conf.VerifyConnection = v.verify
	return conf, nil
}

// certVerifier checks the server's certificate chain against roots, and its
// host name when host is set.
type certVerifier struct {
	roots    *x509.CertPool
	rootFile string
	host     string
}

func (v certVerifier) verify(cs tls.ConnectionState) error {
	certs := cs.PeerCertificates
	if len(certs) == 0 {
		return errors.New("the server sent no certificate")
	}
	opts := x509.VerifyOptions{Roots: v.roots, Intermediates: x509.NewCertPool(), DNSName: v.host}
	for _, c := range certs[1:] {
		opts.Intermediates.AddCert(c)
	}
	_, err := certs[0].Verify(opts)
	var unknownCA x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var badHost x509.HostnameError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &unknownCA):
		return fmt.Errorf("the server's certificate (subject %q, issuer %q) is not signed by a CA in sslrootcert %s: %w",
			certs[0].Subject, certs[0].Issuer, v.rootFile, err)
	case errors.As(err, &badHost):
		return fmt.Errorf("the server's certificate is not for %q, which sslmode=verify-full checks (set ServerName to a name it is for, or use verify-ca): %w",
			v.host, err)
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return fmt.Errorf("the server's certificate has expired or is not valid yet: %w", err)
	}
	return fmt.Errorf("the server's certificate is not valid: %w", err)
}

package pgdial

import (
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// errCheck says whether err is the failure a case expects, and what that is.
type errCheck struct {
	want  string
	match func(error) bool
}

var (
	notSignedByRoot = errCheck{"x509.UnknownAuthorityError, naming sslrootcert", func(err error) bool {
		var e x509.UnknownAuthorityError
		return errors.As(err, &e) && strings.Contains(err.Error(), "is not signed by a CA in sslrootcert")
	}}
	wrongHost = errCheck{"x509.HostnameError for wrong.example", func(err error) bool {
		var e x509.HostnameError
		return errors.As(err, &e) && strings.Contains(err.Error(), `the server's certificate is not for "wrong.example"`)
	}}
	tlsRefused = errCheck{"ErrTLSRefused", func(err error) bool {
		return errors.Is(err, ErrTLSRefused) && strings.Contains(err.Error(), "the server refused TLS")
	}}
)

func TestSSLModes(t *testing.T) {
	for _, tc := range []struct {
		name       string
		cluster    *testCluster
		mode       SSLMode
		root       *string // sslrootcert, a pointer since TestMain sets the files
		host       string  // instead of 127.0.0.1
		serverName string
		wantTLS    bool
		wantErr    *errCheck
	}{
		{name: "on/disable", cluster: sslOn, mode: SSLDisable},
		{name: "on/allow", cluster: sslOn, mode: SSLAllow},
		{name: "on/prefer", cluster: sslOn, mode: SSLPrefer, wantTLS: true},
		{name: "on/default is prefer", cluster: sslOn, mode: "", wantTLS: true},
		{name: "on/require", cluster: sslOn, mode: SSLRequire, wantTLS: true},
		{name: "on/require right root", cluster: sslOn, mode: SSLRequire, root: &caFile, wantTLS: true},
		// With a root certificate, require checks the chain like verify-ca.
		{name: "on/require wrong root", cluster: sslOn, mode: SSLRequire, root: &otherCAFile, wantErr: &notSignedByRoot},
		{name: "on/require right root ignores the host name", cluster: sslOn, mode: SSLRequire, root: &caFile, serverName: "wrong.example", wantTLS: true},
		{name: "on/prefer wrong root", cluster: sslOn, mode: SSLPrefer, root: &otherCAFile, wantErr: &notSignedByRoot},
		{name: "on/verify-ca", cluster: sslOn, mode: SSLVerifyCA, root: &caFile, wantTLS: true},
		{name: "on/verify-ca ignores the host name", cluster: sslOn, mode: SSLVerifyCA, root: &caFile, serverName: "wrong.example", wantTLS: true},
		{name: "on/verify-ca wrong root", cluster: sslOn, mode: SSLVerifyCA, root: &otherCAFile, wantErr: &notSignedByRoot},
		{name: "on/verify-full by IP", cluster: sslOn, mode: SSLVerifyFull, root: &caFile, wantTLS: true},
		{name: "on/verify-full by name", cluster: sslOn, mode: SSLVerifyFull, root: &caFile, host: "localhost", wantTLS: true},
		{name: "on/verify-full ServerName", cluster: sslOn, mode: SSLVerifyFull, root: &caFile, serverName: "localhost", wantTLS: true},
		{name: "on/verify-full wrong ServerName", cluster: sslOn, mode: SSLVerifyFull, root: &caFile, serverName: "wrong.example", wantErr: &wrongHost},
		{name: "on/verify-full wrong root", cluster: sslOn, mode: SSLVerifyFull, root: &otherCAFile, wantErr: &notSignedByRoot},

		{name: "off/disable", cluster: sslOff, mode: SSLDisable},
		{name: "off/allow", cluster: sslOff, mode: SSLAllow},
		{name: "off/prefer falls back", cluster: sslOff, mode: SSLPrefer},
		{name: "off/require", cluster: sslOff, mode: SSLRequire, wantErr: &tlsRefused},
		{name: "off/verify-ca", cluster: sslOff, mode: SSLVerifyCA, root: &caFile, wantErr: &tlsRefused},
		{name: "off/verify-full", cluster: sslOff, mode: SSLVerifyFull, root: &caFile, wantErr: &tlsRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.cluster.get(t)
			cfg := config(c, userTrust, tc.mode)
			if tc.root != nil {
				cfg.SSLRootCert = *tc.root
			}
			if tc.host != "" {
				cfg.Host = tc.host
			}
			cfg.ServerName = tc.serverName
			conn, err := dial(t, cfg)
			if tc.wantErr != nil {
				if err == nil || !tc.wantErr.match(err) {
					t.Fatalf("err = %v, want %s", err, tc.wantErr.want)
				}
				t.Logf("error, as a person reads it: %v", err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if conn.TLS != tc.wantTLS {
				t.Errorf("TLS = %v, want %v", conn.TLS, tc.wantTLS)
			}
			checkConn(t, conn, userTrust)
		})
	}
}

// TestAllowRetriesWithTLS: under allow, a server that refuses a plain
// connection gets a second one with TLS; the other modes show that the
// server does refuse it.
func TestAllowRetriesWithTLS(t *testing.T) {
	c := sslOn.get(t)
	conn, err := dial(t, config(c, userSSLOnly, SSLAllow))
	if err != nil {
		t.Fatal(err)
	}
	if !conn.TLS {
		t.Error("allow ended without TLS for a user that must use it")
	}
	checkConn(t, conn, userSSLOnly)

	_, err = dial(t, config(c, userSSLOnly, SSLDisable))
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != codeInvalidAuthorization {
		t.Errorf("disable: err = %v, want the server's SQLSTATE 28000", err)
	}

	// On a server without TLS, allow reports the server's refusal of the
	// plain connection, not that TLS was refused too. (The cluster trusts
	// everyone, so the role is barred from logging in to get a 28000.)
	c = sslOff.get(t)
	if err := c.Exec(t.Context(), "postgres", "ALTER ROLE "+userSSLOnly+" NOLOGIN"); err != nil {
		t.Fatal(err)
	}
	_, err = dial(t, config(c, userSSLOnly, SSLAllow))
	if !errors.As(err, &pgErr) || pgErr.Code != codeInvalidAuthorization || errors.Is(err, ErrTLSRefused) {
		t.Errorf("allow on a server without TLS: err = %v, want the server's SQLSTATE 28000", err)
	}
}

func TestSSLRootCertProblems(t *testing.T) {
	c := sslOn.get(t)
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		mode SSLMode
		root string
		want string
	}{
		{SSLVerifyCA, "", "sslmode=verify-ca needs SSLRootCert"},
		{SSLVerifyFull, "", "sslmode=verify-full needs SSLRootCert"},
		{SSLVerifyFull, filepath.Join(t.TempDir(), "missing.pem"), "read sslrootcert"},
		{SSLRequire, notPEM, "holds no PEM certificate"},
	} {
		cfg := config(c, userTrust, tc.mode)
		cfg.SSLRootCert = tc.root
		if _, err := dial(t, cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s with sslrootcert %q: err = %v, want it to say %q", tc.mode, tc.root, err, tc.want)
		}
	}
}

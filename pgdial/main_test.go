package pgdial

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgpoolx/pgpoolx/internal/pgcluster"
)

// Two clusters for the whole test binary: one with TLS, whose pg_hba.conf
// names an authentication method per test user, and one without TLS.
var (
	sslOn  = &testCluster{}
	sslOff = &testCluster{}
	// Certificate files for the clients, made by TestMain.
	caFile, otherCAFile string
)

const (
	// password is every test user's; the quote and the space make sure it
	// is never mangled on its way.
	password = "s3cret 'pass' word"
	// appName is sent as a startup parameter by every test dial.
	appName = "pgdial_test"
)

// Users of the TLS cluster and how pg_hba.conf lets them in.
const (
	userTrust   = "trust_user" // trust
	userSSLOnly = "ssl_only"   // trust, but only over TLS
	userClear   = "clear_user" // password (cleartext), stored as SCRAM
	userMD5     = "md5_user"   // md5, stored as md5
	userSCRAM   = "scram_user" // scram-sha-256
)

var hba = []string{
	"hostnossl all " + userSSLOnly + " 127.0.0.1/32 reject",
	"host all " + userSSLOnly + " 127.0.0.1/32 trust",
	"host all " + userClear + " 127.0.0.1/32 password",
	"host all " + userMD5 + " 127.0.0.1/32 md5",
	"host all " + userSCRAM + " 127.0.0.1/32 scram-sha-256",
	"host all " + userTrust + " 127.0.0.1/32 trust",
	"host all all 127.0.0.1/32 reject",
}

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "pgdial-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	serverCert, serverKey, err := makeCertificates(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "make test certificates:", err)
		return 1
	}
	sslOn.Settings = map[string]string{"ssl": "on"}
	sslOn.HBA = hba
	sslOn.Files = map[string][]byte{"server.crt": serverCert, "server.key": serverKey}

	code := m.Run()
	for _, c := range []*testCluster{sslOn, sslOff} {
		if err := c.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop cluster:", err)
			code = 1
		}
	}
	return code
}

// testCluster is a shared cluster whose roles are made once.
type testCluster struct {
	pgcluster.Shared
	once sync.Once
	err  error
}

func (tc *testCluster) get(t *testing.T) *pgcluster.Cluster {
	t.Helper()
	c := tc.Get(t)
	tc.once.Do(func() { tc.err = makeRoles(t, c) })
	if tc.err != nil {
		t.Fatalf("make test roles: %v", tc.err)
	}
	return c
}

func makeRoles(t *testing.T, c *pgcluster.Cluster) error {
	ctx := t.Context()
	for _, u := range []string{userTrust, userSSLOnly, userClear, userMD5, userSCRAM} {
		if err := c.Exec(ctx, "postgres", "CREATE ROLE "+u+" LOGIN"); err != nil {
			return err
		}
	}
	for user, enc := range map[string]string{
		userClear: pgcluster.EncryptionSCRAM,
		userMD5:   pgcluster.EncryptionMD5,
		userSCRAM: pgcluster.EncryptionSCRAM,
	} {
		if err := c.SetPassword(ctx, user, password, enc); err != nil {
			return err
		}
	}
	return nil
}

// config is a Config for c as user, to database postgres, with a timeout
// that only a hang would reach.
func config(c *pgcluster.Cluster, user string, mode SSLMode) Config {
	return Config{
		Host:     c.Host(),
		Port:     c.Port(),
		Database: "postgres",
		User:     user,
		SSLMode:  mode,
		Params:   map[string]string{"application_name": appName},
		Timeout:  20 * time.Second,
	}
}

// dial dials cfg and closes the connection when the test ends.
func dial(t *testing.T, cfg Config) (*Conn, error) {
	t.Helper()
	conn, err := Dial(t.Context(), cfg)
	if err == nil {
		t.Cleanup(func() { conn.NetConn.Close() })
	}
	return conn, err
}

// checkConn runs a query on conn to see that it works, is what Conn says it
// is, and is logged in as user.
func checkConn(t *testing.T, conn *Conn, user string) {
	t.Helper()
	row := query(t, conn, `SELECT current_user, pg_backend_pid()::text,
		(SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()), current_setting('application_name')`)
	if want := []string{user, strconv.FormatUint(uint64(conn.PID), 10), strconv.FormatBool(conn.TLS), appName}; fmt.Sprint(row) != fmt.Sprint(want) {
		t.Errorf("current_user, pid, ssl, application_name = %q, want %q", row, want)
	}
	if _, isTLS := conn.NetConn.(*tls.Conn); isTLS != conn.TLS {
		t.Errorf("NetConn is %T, but TLS = %v", conn.NetConn, conn.TLS)
	}
	if len(conn.SecretKey) != 4 {
		t.Errorf("SecretKey has %d bytes, want 4", len(conn.SecretKey))
	}
	if conn.Params["application_name"] != appName || conn.Params["server_version"] == "" {
		t.Errorf("Params = %v, want application_name %s and a server_version", conn.Params, appName)
	}
}

// query runs sql and returns its only row.
func query(t *testing.T, conn *Conn, sql string) []string {
	t.Helper()
	conn.NetConn.SetDeadline(time.Now().Add(20 * time.Second))
	defer conn.NetConn.SetDeadline(time.Time{})
	fe := pgproto3.NewFrontend(conn.Reader, conn.NetConn)
	fe.Send(&pgproto3.Query{String: sql})
	if err := fe.Flush(); err != nil {
		t.Fatalf("send query: %v", err)
	}
	var row []string
	for {
		msg, err := fe.Receive()
		if err != nil {
			t.Fatalf("read reply: %v", err)
		}
		switch m := msg.(type) {
		case *pgproto3.DataRow:
			for _, v := range m.Values {
				row = append(row, string(v))
			}
		case *pgproto3.ErrorResponse:
			t.Fatalf("%s: %s (SQLSTATE %s)", sql, m.Message, m.Code)
		case *pgproto3.ReadyForQuery:
			return row
		}
	}
}

// makeCertificates writes two CA certificates into dir (caFile, which signs
// the server's certificate, and otherCAFile, which does not) and returns
// the server's certificate and key, for 127.0.0.1 and localhost.
func makeCertificates(dir string) (serverCert, serverKey []byte, err error) {
	ca, caKey, caPEM, err := newCA("pgdial test CA")
	if err != nil {
		return nil, nil, err
	}
	_, _, otherPEM, err := newCA("pgdial other CA")
	if err != nil {
		return nil, nil, err
	}
	caFile, otherCAFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "other-ca.pem")
	if err := errors.Join(os.WriteFile(caFile, caPEM, 0o600), os.WriteFile(otherCAFile, otherPEM, 0o600)); err != nil {
		return nil, nil, err
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "pgdial test server"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

func newCA(name string) (*x509.Certificate, *ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, nil, err
	}
	return cert, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

package integration

import (
	"crypto/tls"
	"encoding/binary"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgpoolx/pgpoolx/internal/testcert"
)

// tlsFiles writes a CA and a certificate for 127.0.0.1 and localhost
// signed by it, and returns the paths by name: ca.pem, server.pem, server.key.
func tlsFiles(t *testing.T) map[string]string {
	t.Helper()
	ca := testcert.NewCA(t, "pgpoolx test CA")
	cert, key := ca.Server(t, "localhost", "127.0.0.1")
	return testcert.WriteFiles(t, t.TempDir(), map[string][]byte{"ca.pem": ca.CertPEM, "server.pem": cert, "server.key": key})
}

func tlsYAML(mode string, files map[string]string) string {
	return "tls:\n  mode: " + mode + "\n  cert_file: " + files["server.pem"] + "\n  key_file: " + files["server.key"] + "\n"
}

// connectDSN connects with pgx and reports whether the connection is TLS.
func connectDSN(t *testing.T, dsn string) (*pgx.Conn, bool, error) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		return nil, false, err
	}
	t.Cleanup(func() { conn.Close(t.Context()) })
	var one int
	if err := conn.QueryRow(t.Context(), "SELECT 1").Scan(&one); err != nil {
		return nil, false, err
	}
	_, isTLS := conn.PgConn().Conn().(*tls.Conn)
	return conn, isTLS, nil
}

func TestClientTLS(t *testing.T) {
	files := tlsFiles(t)
	p := startPooler(t, tlsYAML("allow", files)+"admin_users: [admin]\n", "")
	_, port, _ := net.SplitHostPort(p.addr)
	byName := "postgres://postgres@localhost:" + port + "/" + p.db

	for _, tt := range []struct {
		name, dsn string
		wantTLS   bool
	}{
		{"sslmode=require", p.dsn("")[:strings.Index(p.dsn(""), "?")] + "?sslmode=require", true},
		{"sslmode=verify-full", byName + "?sslmode=verify-full&sslrootcert=" + files["ca.pem"], true},
		{"sslmode=verify-ca by address", p.dsn("")[:strings.Index(p.dsn(""), "?")] + "?sslmode=verify-ca&sslrootcert=" + files["ca.pem"], true},
		{"sslmode=disable still allowed", p.dsn(""), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, isTLS, err := connectDSN(t, tt.dsn)
			if err != nil {
				t.Fatal(err)
			}
			if isTLS != tt.wantTLS {
				t.Errorf("TLS = %v, want %v", isTLS, tt.wantTLS)
			}
		})
	}
	t.Run("verify-full with another CA fails", func(t *testing.T) {
		other := tlsFiles(t)
		_, _, err := connectDSN(t, byName+"?sslmode=verify-full&sslrootcert="+other["ca.pem"])
		if err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
			t.Errorf("err = %v, want an unknown authority error", err)
		}
	})
	t.Run("psql", func(t *testing.T) {
		out, err := runPsqlCmd(t, "host=localhost port="+port+" dbname="+p.db+" user=postgres sslmode=verify-full sslrootcert="+files["ca.pem"],
			"-At", "-c", "SELECT 'over tls'")
		if err != nil || strings.TrimSpace(out) != "over tls" {
			t.Fatalf("psql: %v\n%s", err, out)
		}
	})
	t.Run("SHOW CLIENTS shows TLS", func(t *testing.T) {
		if _, _, err := connectDSN(t, byName+"?sslmode=require&application_name=tls-client"); err != nil {
			t.Fatal(err)
		}
		row := rowWhere(t, adminRows(t, p, "SHOW CLIENTS"), "application_name", "tls-client")
		if !strings.HasPrefix(row["tls"], "TLS 1.") {
			t.Errorf("tls column %q", row["tls"])
		}
	})
	t.Run("TLS 1.1 refused", func(t *testing.T) {
		nc, err := net.DialTimeout("tcp", p.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		req := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, 8), 80877103)
		if _, err := nc.Write(req); err != nil {
			t.Fatal(err)
		}
		var b [1]byte
		if _, err := nc.Read(b[:]); err != nil || b[0] != 'S' {
			t.Fatalf("SSLRequest answered %q, %v", b[0], err)
		}
		tc := tls.Client(nc, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11})
		if err := tc.Handshake(); err == nil {
			t.Error("a TLS 1.1 handshake succeeded")
		}
	})
}

func TestClientTLSRequired(t *testing.T) {
	files := tlsFiles(t)
	p := startPooler(t, tlsYAML("require", files), "")
	_, err := pgx.Connect(t.Context(), p.dsn(""))
	assertCode(t, err, "28000")
	if !strings.Contains(err.Error(), "accepts only TLS connections") {
		t.Errorf("error %v does not say TLS is required", err)
	}
	if _, isTLS, err := connectDSN(t, p.dsn("")[:strings.Index(p.dsn(""), "?")]+"?sslmode=require"); err != nil || !isTLS {
		t.Fatalf("sslmode=require: TLS %v, %v", isTLS, err)
	}
	// psql's default, sslmode=prefer, upgrades to TLS, so it is let in.
	out, err := runPsqlCmd(t, psqlConninfo(p, "sslmode=prefer"), "-At", "-c", "SELECT 1")
	if err != nil || strings.TrimSpace(out) != "1" {
		t.Fatalf("psql sslmode=prefer: %v\n%s", err, out)
	}
}

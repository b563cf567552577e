package integration

import (
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgpoolx/pgpoolx/internal/pgcluster"
	"github.com/pgpoolx/pgpoolx/internal/testcert"
)

// tlsCluster starts PostgreSQL with ssl=on and a certificate for
// localhost and 127.0.0.1, accepting the test's roles only over TLS and
// with a password. It returns the cluster and the CA's PEM file.
func tlsCluster(t *testing.T) (*pgcluster.Cluster, string) {
	t.Helper()
	ca := testcert.NewCA(t, "test server CA")
	cert, key := ca.Server(t, "localhost", "127.0.0.1")
	c := ownCluster(t, pgcluster.Options{
		Settings: map[string]string{"ssl": "on", "ssl_cert_file": "'server.crt'", "ssl_key_file": "'server.key'"},
		Files:    map[string][]byte{"server.crt": cert, "server.key": key},
		HBA: []string{
			"hostssl all app 127.0.0.1/32 scram-sha-256",
			"hostssl all alice 127.0.0.1/32 scram-sha-256",
			"hostssl all bob 127.0.0.1/32 md5",
			"hostssl all lookup 127.0.0.1/32 scram-sha-256",
			"host all all 127.0.0.1/32 reject",
		},
	})
	ctx := t.Context()
	if err := c.Exec(ctx, "postgres", `CREATE ROLE app LOGIN; CREATE ROLE alice LOGIN; CREATE ROLE bob LOGIN; CREATE ROLE lookup LOGIN;
		CREATE FUNCTION public.user_lookup(name text, OUT usename name, OUT passwd text)
			LANGUAGE sql SECURITY DEFINER
			AS $$ SELECT rolname, rolpassword FROM pg_catalog.pg_authid WHERE rolname = name $$;
		REVOKE ALL ON FUNCTION public.user_lookup(text) FROM public;
		GRANT EXECUTE ON FUNCTION public.user_lookup(text) TO lookup;`); err != nil {
		t.Fatal(err)
	}
	for role, enc := range map[string]string{"app": pgcluster.EncryptionSCRAM, "alice": pgcluster.EncryptionSCRAM,
		"bob": pgcluster.EncryptionMD5, "lookup": pgcluster.EncryptionSCRAM} {
		if err := c.SetPassword(ctx, role, role+"-pw", enc); err != nil {
			t.Fatal(err)
		}
	}
	files := testcert.WriteFiles(t, t.TempDir(), map[string][]byte{"ca.pem": ca.CertPEM})
	return c, files["ca.pem"]
}

// serverSSL reports whether the server connection a pooled client's
// transaction runs on uses TLS, and as whom it is logged in.
func serverSSL(t *testing.T, conn *pgx.Conn) (ssl bool, user string) {
	t.Helper()
	err := conn.QueryRow(t.Context(), "SELECT ssl, current_user FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl, &user)
	if err != nil {
		t.Fatal(err)
	}
	return ssl, user
}

func TestServerTLS(t *testing.T) {
	c, caFile := tlsCluster(t)
	wrongCA := testcert.WriteFiles(t, t.TempDir(), map[string][]byte{"ca.pem": testcert.NewCA(t, "another CA").CertPEM})["ca.pem"]
	for _, tt := range []struct {
		name, dbYAML string
		wantCode     string // SQLSTATE the client gets, "" for success
		wantMessage  string
	}{
		{"verify-full", "host: localhost\nsslmode: verify-full\nsslrootcert: " + caFile, "", ""},
		{"verify-ca by address", "sslmode: verify-ca\nsslrootcert: " + caFile, "", ""},
		{"require", "sslmode: require", "", ""},
		{"prefer", "sslmode: prefer", "", ""},
		{"verify-full with another CA", "host: localhost\nsslmode: verify-full\nsslrootcert: " + wrongCA, "08001", "certificate"},
		{"disable is refused by pg_hba", "sslmode: disable", "28000", "pg_hba.conf rejects connection"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := startPoolerYAML(t, c, "postgres", "", "user: app\npassword: app-pw\n"+tt.dbYAML)
			conn, err := pgx.Connect(t.Context(), p.dsn(""))
			if err == nil {
				defer conn.Close(t.Context())
				_, err = conn.Exec(t.Context(), "SELECT 1")
			}
			if tt.wantCode != "" {
				assertCode(t, err, tt.wantCode)
				if !strings.Contains(err.Error(), tt.wantMessage) {
					t.Errorf("error %q does not mention %q", err, tt.wantMessage)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ssl, user := serverSSL(t, conn); !ssl || user != "app" {
				t.Errorf("server connection: ssl %v as %q, want TLS as app", ssl, user)
			}
		})
	}
}

// TestAuthQueryPassThrough: users known only to PostgreSQL log in to
// pgpoolx with their password, and pgpoolx logs in to PostgreSQL as them
// without knowing it: with the SCRAM keys of their own login, or the md5
// hash auth.query returned.
func TestAuthQueryPassThrough(t *testing.T) {
	c, caFile := tlsCluster(t)
	for _, tt := range []struct{ authType, user string }{
		{"scram-sha-256", "alice"},
		{"md5", "bob"},
	} {
		t.Run(tt.authType, func(t *testing.T) {
			top := fmt.Sprintf("auth:\n  type: %s\n  query: SELECT usename, passwd FROM public.user_lookup($1)\n  query_user: lookup\n  query_password: lookup-pw\n", tt.authType)
			p := startPoolerYAML(t, c, "postgres", top, "sslmode: verify-ca\nsslrootcert: "+caFile)
			dsn := strings.Replace(p.dsn(""), "postgres@", tt.user+":"+tt.user+"-pw@", 1)
			for i := range 3 { // the pool's later connections log in the same way
				conn, err := pgx.Connect(t.Context(), dsn)
				if err != nil {
					t.Fatalf("login %d: %v", i, err)
				}
				ssl, user := serverSSL(t, conn)
				conn.Close(t.Context())
				if !ssl || user != tt.user {
					t.Errorf("server connection: ssl %v as %q, want TLS as %s", ssl, user, tt.user)
				}
			}
			bad := strings.Replace(dsn, tt.user+"-pw@", "wrong@", 1)
			_, err := pgx.Connect(t.Context(), bad)
			assertCode(t, err, "28P01")
		})
	}
}

package pgdial

import (
	"bytes"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgpoolx/pgpoolx/auth"
	"github.com/pgpoolx/pgpoolx/internal/pgcluster"
)

var (
	badPassword = errCheck{"the server's SQLSTATE 28P01", func(err error) bool {
		var pgErr *pgconn.PgError
		return errors.As(err, &pgErr) && pgErr.Code == "28P01" && pgErr.Severity == "FATAL" &&
			strings.Contains(pgErr.Message, "password authentication failed")
	}}
	noCredentials = errCheck{"ErrNoCredentials", func(err error) bool { return errors.Is(err, ErrNoCredentials) }}
	serverNoProof = errCheck{"ErrServerProof", func(err error) bool { return errors.Is(err, ErrServerProof) }}
)

func TestPasswordAuth(t *testing.T) {
	c := sslOn.get(t)
	clientKey, serverKey := scramKeys(t, c, userSCRAM, password)
	passThrough := Credentials{SCRAMClientKey: clientKey, SCRAMServerKey: serverKey}
	wrongKey := bytes.Repeat([]byte{7}, scramKeyLen)
	md5 := auth.MD5Hash(userMD5, password)

	for _, tc := range []struct {
		name    string
		user    string
		mode    SSLMode
		creds   Credentials
		wantErr *errCheck // nil for success
	}{
		{"cleartext", userClear, SSLDisable, Credentials{Password: password}, nil},
		{"cleartext over TLS", userClear, SSLRequire, Credentials{Password: password}, nil},
		{"cleartext wrong password", userClear, SSLDisable, Credentials{Password: "wrong"}, &badPassword},
		{"cleartext with only an md5 hash", userClear, SSLDisable, Credentials{MD5Hash: md5}, &noCredentials},
		{"cleartext with only SCRAM keys", userClear, SSLDisable, Credentials{SCRAMClientKey: clientKey, SCRAMServerKey: serverKey}, &noCredentials},
		{"cleartext with nothing", userClear, SSLDisable, Credentials{}, &noCredentials},

		{"md5 password", userMD5, SSLDisable, Credentials{Password: password}, nil},
		{"md5 hash", userMD5, SSLDisable, Credentials{MD5Hash: md5}, nil},
		{"md5 hash in capitals", userMD5, SSLPrefer, Credentials{MD5Hash: "md5" + strings.ToUpper(md5[3:])}, nil},
		{"md5 wrong password", userMD5, SSLDisable, Credentials{Password: "wrong"}, &badPassword},
		{"md5 wrong hash", userMD5, SSLDisable, Credentials{MD5Hash: auth.MD5Hash(userMD5, "wrong")}, &badPassword},
		{"md5 hash of another user", userMD5, SSLDisable, Credentials{MD5Hash: auth.MD5Hash(userClear, password)}, &badPassword},
		{"md5 with only SCRAM keys", userMD5, SSLDisable, Credentials{SCRAMClientKey: clientKey, SCRAMServerKey: serverKey}, &noCredentials},

		{"scram password", userSCRAM, SSLDisable, Credentials{Password: password}, nil},
		// The server offers SCRAM-SHA-256-PLUS too over TLS; we take the
		// plain one.
		{"scram password over TLS", userSCRAM, SSLRequire, Credentials{Password: password}, nil},
		{"scram keys", userSCRAM, SSLDisable, Credentials{SCRAMClientKey: clientKey, SCRAMServerKey: serverKey}, nil},
		{"scram keys over TLS", userSCRAM, SSLRequire, passThrough, nil},
		{"scram keys win over a password", userSCRAM, SSLDisable, Credentials{Password: "wrong", SCRAMClientKey: clientKey, SCRAMServerKey: serverKey}, nil},
		{"scram wrong password", userSCRAM, SSLDisable, Credentials{Password: "wrong"}, &badPassword},
		{"scram wrong ClientKey", userSCRAM, SSLDisable, Credentials{SCRAMClientKey: wrongKey, SCRAMServerKey: serverKey}, &badPassword},
		// The server takes the proof, then signs with the real ServerKey,
		// which the wrong one we hold cannot check.
		{"scram wrong ServerKey", userSCRAM, SSLDisable, Credentials{SCRAMClientKey: clientKey, SCRAMServerKey: wrongKey}, &serverNoProof},
		{"scram with only an md5 hash", userSCRAM, SSLDisable, Credentials{MD5Hash: md5}, &noCredentials},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config(c, tc.user, tc.mode)
			cfg.Credentials = tc.creds
			conn, err := dial(t, cfg)
			if tc.wantErr != nil {
				if err == nil || !tc.wantErr.match(err) {
					t.Fatalf("err = %v, want %s", err, tc.wantErr.want)
				}
				for _, secret := range []string{password, md5[3:], hex.EncodeToString(clientKey),
					base64.StdEncoding.EncodeToString(clientKey), base64.StdEncoding.EncodeToString(serverKey)} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("error %q holds a secret", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkConn(t, conn, tc.user)
		})
	}
}

// scramKeys reads user's verifier from pg_authid and derives the keys from
// the password and the verifier's salt and iteration count, as pgpoolx will
// know them: the ClientKey from a client's proof, the ServerKey from the
// verifier (which the test checks it equals).
func scramKeys(t *testing.T, c *pgcluster.Cluster, user, password string) (clientKey, serverKey []byte) {
	t.Helper()
	conn, err := c.Connect(t.Context(), "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	res, err := conn.Exec(t.Context(), "SELECT rolpassword FROM pg_authid WHERE rolname = '"+user+"'").ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	verifier := string(res[0].Rows[0][0])

	// SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>
	parts := strings.FieldsFunc(verifier, func(r rune) bool { return r == '$' || r == ':' })
	if len(parts) != 5 || parts[0] != "SCRAM-SHA-256" {
		t.Fatalf("rolpassword of %s is not a SCRAM verifier", user)
	}
	iterations, err1 := strconv.Atoi(parts[1])
	salt, err2 := base64.StdEncoding.DecodeString(parts[2])
	wantServerKey, err3 := base64.StdEncoding.DecodeString(parts[4])
	if err := errors.Join(err1, err2, err3); err != nil {
		t.Fatal(err)
	}
	clientKey, serverKey = deriveSCRAMKeys(t, password, salt, iterations)
	if !bytes.Equal(serverKey, wantServerKey) {
		t.Fatal("the ServerKey derived from the password is not the verifier's")
	}
	return clientKey, serverKey
}

// deriveSCRAMKeys is RFC 5802's ClientKey and ServerKey, written out here
// rather than borrowed from the code under test.
func deriveSCRAMKeys(t *testing.T, password string, salt []byte, iterations int) (clientKey, serverKey []byte) {
	t.Helper()
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		t.Fatal(err)
	}
	mac := func(msg string) []byte {
		h := hmac.New(sha256.New, salted)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	return mac("Client Key"), mac("Server Key")
}

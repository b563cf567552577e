package auth

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
)

// The RFC 7677 section 3 example: user "user", password "pencil". The verifier is
// what PostgreSQL stores for that password, salt and iteration count; it was
// computed independently with Python's hashlib and is checked against the RFC's
// proof and server signature in TestSCRAMRFC7677.
const (
	rfcUser       = "user"
	rfcPassword   = "pencil"
	rfcSalt       = "W22ZaJ0SNY7soEsUEjb6gQ=="
	rfcStoredKey  = "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY="
	rfcServerKey  = "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
	rfcVerifier   = "SCRAM-SHA-256$4096:" + rfcSalt + "$" + rfcStoredKey + ":" + rfcServerKey
	rfcMD5        = "md520c46e3762c864548e296b33c3406aa9" // MD5Hash("user", "pencil"), from md5sum
	rfcMD5Salt    = "\x01\x02\x03\x04"
	rfcMD5Answer  = "md54376eb6913b38f9aaff38dc7cf19ca76" // for salt 01 02 03 04, from md5sum
	upperMD5      = "md520C46E3762C864548E296B33C3406AA9"
	key32         = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" // 32 zero bytes
	key31         = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="
	key33         = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	scramWithKeys = "$" + key32 + ":" + key32
)

func TestParseSecret(t *testing.T) {
	tests := []struct {
		name      string
		password  string
		wantMD5   bool
		wantSCRAM bool
		wantKind  string
		wantErr   string // substring; "" means no error
	}{
		{name: "plaintext", password: "pencil", wantMD5: true, wantSCRAM: true, wantKind: "plaintext"},
		{name: "plaintext with spaces and symbols", password: " p$a:s,s=w ", wantMD5: true, wantSCRAM: true, wantKind: "plaintext"},
		{name: "plaintext starting with md5", password: "md5sum", wantMD5: true, wantSCRAM: true, wantKind: "plaintext"},
		{name: "plaintext too long for md5 hash", password: rfcMD5 + "0", wantMD5: true, wantSCRAM: true, wantKind: "plaintext"},
		{name: "plaintext non-ASCII", password: "pässwörd", wantMD5: true, wantSCRAM: true, wantKind: "plaintext"},
		{name: "md5", password: rfcMD5, wantMD5: true, wantKind: "md5"},
		{name: "md5 upper case hex", password: upperMD5, wantMD5: true, wantKind: "md5"},
		{name: "scram verifier", password: rfcVerifier, wantSCRAM: true, wantKind: "SCRAM-SHA-256"},
		{name: "scram verifier one iteration", password: "SCRAM-SHA-256$1:" + rfcSalt + scramWithKeys, wantSCRAM: true, wantKind: "SCRAM-SHA-256"},
		{name: "scram verifier max iterations", password: "SCRAM-SHA-256$2147483647:" + rfcSalt + scramWithKeys, wantSCRAM: true, wantKind: "SCRAM-SHA-256"},
		{name: "scram verifier one byte salt", password: "SCRAM-SHA-256$4096:AA==" + scramWithKeys, wantSCRAM: true, wantKind: "SCRAM-SHA-256"},

		{name: "empty", password: "", wantErr: "empty password"},
		{name: "md5 not hex", password: "md5" + strings.Repeat("z", 32), wantErr: "hex"},
		{name: "md5 one bad digit", password: rfcMD5[:34] + "g", wantErr: "hex"},
		{name: "scram prefix only", password: "SCRAM-SHA-256$", wantErr: "want"},
		{name: "scram no keys", password: "SCRAM-SHA-256$4096:" + rfcSalt, wantErr: "want"},
		{name: "scram no salt separator", password: "SCRAM-SHA-256$4096" + scramWithKeys, wantErr: "want"},
		{name: "scram no key separator", password: "SCRAM-SHA-256$4096:" + rfcSalt + "$" + key32 + key32, wantErr: "want"},
		{name: "scram empty iterations", password: "SCRAM-SHA-256$:" + rfcSalt + scramWithKeys, wantErr: "iteration"},
		{name: "scram zero iterations", password: "SCRAM-SHA-256$0:" + rfcSalt + scramWithKeys, wantErr: "iteration"},
		{name: "scram negative iterations", password: "SCRAM-SHA-256$-1:" + rfcSalt + scramWithKeys, wantErr: "iteration"},
		{name: "scram plus sign", password: "SCRAM-SHA-256$+4096:" + rfcSalt + scramWithKeys, wantErr: "iteration"},
		{name: "scram leading zero", password: "SCRAM-SHA-256$04096:" + rfcSalt + scramWithKeys, wantErr: "iteration"},
		{name: "scram leading space", password: "SCRAM-SHA-256$ 4096:" + rfcSalt + scramWithKeys, wantErr: "iteration"},
		{name: "scram iterations not a number", password: "SCRAM-SHA-256$4k:" + rfcSalt + scramWithKeys, wantErr: "iteration"},
		{name: "scram iterations over int32", password: "SCRAM-SHA-256$2147483648:" + rfcSalt + scramWithKeys, wantErr: "iteration"},
		{name: "scram iterations huge", password: "SCRAM-SHA-256$99999999999999999999:" + rfcSalt + scramWithKeys, wantErr: "iteration"},
		{name: "scram empty salt", password: "SCRAM-SHA-256$4096:" + scramWithKeys, wantErr: "salt"},
		{name: "scram salt not base64", password: "SCRAM-SHA-256$4096:W22ZaJ0SNY7s*EsUEjb6gQ==" + scramWithKeys, wantErr: "salt"},
		{name: "scram salt unpadded", password: "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ" + scramWithKeys, wantErr: "salt"},
		{name: "scram salt stray bits", password: "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gR==" + scramWithKeys, wantErr: "salt"},
		{name: "scram salt with newline", password: "SCRAM-SHA-256$4096:W22ZaJ0SNY7s\noEsUEjb6gQ==" + scramWithKeys, wantErr: "salt"},
		{name: "scram extra dollar", password: "SCRAM-SHA-256$4096:" + rfcSalt + "$" + key32 + ":" + key32 + "$x", wantErr: "ServerKey"},
		{name: "scram extra colon in salt", password: "SCRAM-SHA-256$4096:" + rfcSalt + ":x" + scramWithKeys, wantErr: "salt"},
		{name: "scram empty stored key", password: "SCRAM-SHA-256$4096:" + rfcSalt + "$:" + key32, wantErr: "StoredKey"},
		{name: "scram short stored key", password: "SCRAM-SHA-256$4096:" + rfcSalt + "$" + key31 + ":" + key32, wantErr: "StoredKey"},
		{name: "scram long server key", password: "SCRAM-SHA-256$4096:" + rfcSalt + "$" + key32 + ":" + key33, wantErr: "ServerKey"},
		{name: "scram empty server key", password: "SCRAM-SHA-256$4096:" + rfcSalt + "$" + key32 + ":", wantErr: "ServerKey"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseSecret("user", tt.password)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseSecret = %v, want error containing %q", s, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error = %q, want it to contain %q", err, tt.wantErr)
				}
				// Longer than the bare prefix, which the error may name as the expected form.
				if len(tt.password) > len(scramPrefix) && strings.Contains(err.Error(), tt.password) {
					t.Errorf("error %q quotes the secret", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSecret: %v", err)
			}
			if got := s.CanMD5(); got != tt.wantMD5 {
				t.Errorf("CanMD5 = %v, want %v", got, tt.wantMD5)
			}
			if got := s.CanSCRAM(); got != tt.wantSCRAM {
				t.Errorf("CanSCRAM = %v, want %v", got, tt.wantSCRAM)
			}
			if got, want := s.String(), "auth.Secret("+tt.wantKind+")"; got != want {
				t.Errorf("String = %q, want %q", got, want)
			}
			if tt.wantKind == "SCRAM-SHA-256" {
				if got := s.scram.String(); got != tt.password {
					t.Errorf("verifier prints as %q, want the input back", got)
				}
			}
		})
	}
}

func TestParseSecretPlaintextDerivesOnce(t *testing.T) {
	s, err := ParseSecret(rfcUser, rfcPassword)
	if err != nil {
		t.Fatal(err)
	}
	if s.md5 != rfcMD5 {
		t.Errorf("md5 = %q, want %q", s.md5, rfcMD5)
	}
	v := s.scram
	if v.iterations != DefaultSCRAMIterations || len(v.salt) != scramSaltLen {
		t.Errorf("verifier has %d iterations and a %d byte salt, want %d and %d",
			v.iterations, len(v.salt), DefaultSCRAMIterations, scramSaltLen)
	}
	if got, want := v.String(), SCRAMVerifier(rfcPassword, []byte(v.salt), DefaultSCRAMIterations); got != want {
		t.Errorf("derived verifier %q, SCRAMVerifier says %q", got, want)
	}
	again, err := ParseSecret(rfcUser, rfcPassword)
	if err != nil {
		t.Fatal(err)
	}
	if again == s {
		t.Error("two parses of the same password are equal")
	}
	if again.scram.salt == v.salt {
		t.Error("two parses of the same password got the same salt")
	}
}

func TestSCRAMVerifier(t *testing.T) {
	salt, _ := base64.StdEncoding.DecodeString(rfcSalt)
	tests := []struct {
		name       string
		password   string
		salt       []byte
		iterations int
		want       string
	}{
		{name: "rfc 7677", password: rfcPassword, salt: salt, iterations: 4096, want: rfcVerifier},
		{name: "empty salt", password: rfcPassword, salt: nil, iterations: 4096, want: ""},
		{name: "zero iterations", password: rfcPassword, salt: salt, iterations: 0, want: ""},
		{name: "negative iterations", password: rfcPassword, salt: salt, iterations: -1, want: ""},
		{name: "too many iterations", password: rfcPassword, salt: salt, iterations: 1 << 31, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SCRAMVerifier(tt.password, tt.salt, tt.iterations); got != tt.want {
				t.Errorf("SCRAMVerifier = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestMD5Hash(t *testing.T) {
	tests := []struct{ user, password, want string }{
		{"postgres", "postgres", "md53175bce1d3201d16594cebf9d7eb3f9d"},
		{rfcUser, rfcPassword, rfcMD5},
	}
	for _, tt := range tests {
		t.Run(tt.user, func(t *testing.T) {
			if got := MD5Hash(tt.user, tt.password); got != tt.want {
				t.Errorf("MD5Hash(%q, %q) = %q, want %q", tt.user, tt.password, got, tt.want)
			}
		})
	}
}

func TestCheckMD5(t *testing.T) {
	var salt [4]byte
	copy(salt[:], rfcMD5Salt)
	mustParse := func(password string) Secret {
		t.Helper()
		s, err := ParseSecret(rfcUser, password)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	plain, hashed, upper, verifier := mustParse(rfcPassword), mustParse(rfcMD5), mustParse(upperMD5), mustParse(rfcVerifier)

	tests := []struct {
		name     string
		secret   Secret
		user     string
		salt     [4]byte
		response string
		want     bool
	}{
		{name: "plaintext", secret: plain, user: rfcUser, salt: salt, response: rfcMD5Answer, want: true},
		{name: "md5 hash", secret: hashed, user: rfcUser, salt: salt, response: rfcMD5Answer, want: true},
		{name: "md5 hash in upper case", secret: upper, user: rfcUser, salt: salt, response: rfcMD5Answer, want: true},
		{name: "wrong password", secret: mustParse("pencil2"), user: rfcUser, salt: salt, response: rfcMD5Answer},
		{name: "other user", secret: plain, user: "user2", salt: salt, response: rfcMD5Answer},
		{name: "other user md5", secret: hashed, user: "user2", salt: salt, response: rfcMD5Answer},
		{name: "other salt", secret: plain, user: rfcUser, salt: [4]byte{1, 2, 3, 5}, response: rfcMD5Answer},
		{name: "scram verifier cannot", secret: verifier, user: rfcUser, salt: salt, response: rfcMD5Answer},
		{name: "zero secret", secret: Secret{}, user: "", salt: salt, response: ""},
		{name: "empty response", secret: plain, user: rfcUser, salt: salt, response: ""},
		{name: "upper case response", secret: plain, user: rfcUser, salt: salt, response: strings.ToUpper(rfcMD5Answer)},
		{name: "truncated response", secret: plain, user: rfcUser, salt: salt, response: rfcMD5Answer[:34]},
		{name: "response with NUL", secret: plain, user: rfcUser, salt: salt, response: rfcMD5Answer + "\x00"},
		{name: "stored hash as response", secret: hashed, user: rfcUser, salt: salt, response: rfcMD5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.secret.CheckMD5(tt.user, tt.salt, tt.response); got != tt.want {
				t.Errorf("CheckMD5 = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSecretDoesNotPrint(t *testing.T) {
	for _, password := range []string{rfcPassword, rfcMD5, rfcVerifier} {
		s, err := ParseSecret(rfcUser, password)
		if err != nil {
			t.Fatal(err)
		}
		out := fmt.Sprintf("%v %+v %#v %s %q %x %d %T", s, s, s, s, s, s, s, s)
		for _, leak := range []string{password, rfcMD5[3:], rfcStoredKey, rfcServerKey, "20c46e"} {
			if strings.Contains(out, leak) {
				t.Errorf("formatting %v printed %q: %s", s, leak, out)
			}
		}
	}
}

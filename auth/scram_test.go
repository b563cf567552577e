package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

const (
	rfcClientNonce = "rOprNGfwEbeRWgbNEkqO"
	rfcServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
	rfcClientFirst = "n,,n=user,r=" + rfcClientNonce
	rfcServerFirst = "r=" + rfcClientNonce + rfcServerNonce + ",s=" + rfcSalt + ",i=4096"
	rfcClientFinal = "c=biws,r=" + rfcClientNonce + rfcServerNonce + ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
	rfcServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
)

// zeroNonce is the server nonce NewSCRAM makes from a reader of zero bytes.
var zeroNonce = strings.Repeat("A", base64.StdEncoding.EncodedLen(scramNonceLen))

func zeroRand() *bytes.Reader { return bytes.NewReader(make([]byte, scramNonceLen)) }

func TestSCRAMRFC7677(t *testing.T) {
	s, err := ParseSecret(rfcUser, rfcVerifier)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewSCRAM(s, nil)
	if err != nil {
		t.Fatal(err)
	}
	serverFirst, err := c.clientFirst(MechanismSCRAMSHA256, []byte(rfcClientFirst), rfcServerNonce)
	if err != nil {
		t.Fatalf("clientFirst: %v", err)
	}
	if string(serverFirst) != rfcServerFirst {
		t.Errorf("server-first = %q\nwant           %q", serverFirst, rfcServerFirst)
	}
	serverFinal, err := c.ClientFinal([]byte(rfcClientFinal))
	if err != nil {
		t.Fatalf("ClientFinal: %v", err)
	}
	if string(serverFinal) != rfcServerFinal {
		t.Errorf("server-final = %q, want %q", serverFinal, rfcServerFinal)
	}
	// The ClientKey the client proved is the one the password derives,
	// and with the verifier's ServerKey it is all a pass-through login needs.
	salt, _ := base64.StdEncoding.DecodeString(rfcSalt)
	salted, err := pbkdf2.Key(sha256.New, "pencil", salt, 4096, sha256.Size)
	if err != nil {
		t.Fatal(err)
	}
	mac := hmac.New(sha256.New, salted)
	mac.Write([]byte("Client Key"))
	if want := mac.Sum(nil); !bytes.Equal(c.ClientKey(), want) {
		t.Errorf("ClientKey = %x, want %x", c.ClientKey(), want)
	}
	mac = hmac.New(sha256.New, salted)
	mac.Write([]byte("Server Key"))
	if want := mac.Sum(nil); !bytes.Equal(s.SCRAMServerKey(), want) {
		t.Errorf("SCRAMServerKey = %x, want %x", s.SCRAMServerKey(), want)
	}
}

// testClient is the client side of SCRAM-SHA-256, written from RFC 5802 apart from
// the server code so that the two check each other.
type testClient struct {
	password  string
	gs2Header string
	nonce     string
	firstBare string
}

func newTestClient(password string) *testClient {
	return &testClient{password: password, gs2Header: "n,,", nonce: "fyko+d2lbbFgONRv9qkxdawL"}
}

func (tc *testClient) first() []byte {
	tc.firstBare = "n=,r=" + tc.nonce
	return []byte(tc.gs2Header + tc.firstBare)
}

// final answers serverFirst, with the extra attributes placed before the proof.
func (tc *testClient) final(t testing.TB, serverFirst []byte, extra ...string) (msg []byte, wantServerFinal string) {
	t.Helper()
	attrs := map[byte]string{}
	for _, a := range strings.Split(string(serverFirst), ",") {
		attrs[a[0]] = a[2:]
	}
	if !strings.HasPrefix(attrs['r'], tc.nonce) || len(attrs['r']) == len(tc.nonce) {
		t.Fatalf("server nonce %q does not extend client nonce %q", attrs['r'], tc.nonce)
	}
	salt, err := base64.StdEncoding.DecodeString(attrs['s'])
	if err != nil {
		t.Fatal(err)
	}
	iterations, err := strconv.Atoi(attrs['i'])
	if err != nil {
		t.Fatal(err)
	}
	salted, err := pbkdf2.Key(sha256.New, tc.password, salt, iterations, 32)
	if err != nil {
		t.Fatal(err)
	}
	withoutProof := strings.Join(append([]string{
		"c=" + base64.StdEncoding.EncodeToString([]byte(tc.gs2Header)),
		"r=" + attrs['r'],
	}, extra...), ",")
	authMessage := tc.firstBare + "," + string(serverFirst) + "," + withoutProof
	mac := func(key []byte, msg string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	clientKey := mac(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	proof := mac(storedKey[:], authMessage)
	for i := range proof {
		proof[i] ^= clientKey[i]
	}
	serverSignature := mac(mac(salted, "Server Key"), authMessage)
	return []byte(withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof)),
		"v=" + base64.StdEncoding.EncodeToString(serverSignature)
}

func TestSCRAMFlow(t *testing.T) {
	tests := []struct {
		name      string
		secret    string // "" for a decoy
		password  string
		gs2Header string
		extra     []string
		wantErr   error
	}{
		{name: "plaintext", secret: "pencil", password: "pencil"},
		{name: "plaintext wrong password", secret: "pencil", password: "pencil2", wantErr: ErrBadPassword},
		{name: "plaintext non-ASCII", secret: "pässwörd", password: "pässwörd"},
		{name: "verifier", secret: rfcVerifier, password: "pencil"},
		{name: "verifier wrong password", secret: rfcVerifier, password: "Pencil", wantErr: ErrBadPassword},
		{name: "verifier empty password", secret: rfcVerifier, password: "", wantErr: ErrBadPassword},
		{name: "client supports channel binding", secret: rfcVerifier, password: "pencil", gs2Header: "y,,"},
		{name: "extension in client-final", secret: rfcVerifier, password: "pencil", extra: []string{"x=ext"}},
		{name: "decoy with any password", password: "pencil", wantErr: ErrBadPassword},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c *SCRAM
			if tt.secret == "" {
				c = NewSCRAMDecoy("ghost", nil)
			} else {
				s, err := ParseSecret(rfcUser, tt.secret)
				if err != nil {
					t.Fatal(err)
				}
				if c, err = NewSCRAM(s, nil); err != nil {
					t.Fatal(err)
				}
			}
			if got := c.Mechanisms(); !slices.Equal(got, []string{"SCRAM-SHA-256"}) {
				t.Errorf("Mechanisms = %q", got)
			}
			tc := newTestClient(tt.password)
			if tt.gs2Header != "" {
				tc.gs2Header = tt.gs2Header
			}
			serverFirst, err := c.ClientFirst(MechanismSCRAMSHA256, tc.first())
			if err != nil {
				t.Fatalf("ClientFirst: %v", err)
			}
			clientFinal, wantServerFinal := tc.final(t, serverFirst, tt.extra...)
			serverFinal, err := c.ClientFinal(clientFinal)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ClientFinal error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if serverFinal != nil {
					t.Errorf("ClientFinal returned %q with its error", serverFinal)
				}
				return
			}
			if string(serverFinal) != wantServerFinal {
				t.Errorf("server-final = %q, want %q", serverFinal, wantServerFinal)
			}
		})
	}
}

func TestSCRAMClientFirstMalformed(t *testing.T) {
	tests := []struct {
		name      string
		mechanism string // SCRAM-SHA-256 if empty, unless noMech
		noMech    bool
		data      string
	}{
		{name: "plus mechanism", mechanism: "SCRAM-SHA-256-PLUS", data: "p=tls-server-end-point,,n=,r=abc"},
		{name: "unknown mechanism", mechanism: "SCRAM-SHA-1", data: "n,,n=,r=abc"},
		{name: "empty mechanism", noMech: true, data: "n,,n=,r=abc"},
		{name: "empty", data: ""},
		{name: "header only", data: "n,,"},
		{name: "short header", data: "n,"},
		{name: "one byte", data: "n"},
		{name: "channel binding", data: "p=tls-server-end-point,,n=,r=abc"},
		{name: "channel binding flag only", data: "p"},
		{name: "authzid", data: "n,a=admin,n=,r=abc"},
		{name: "authzid with y", data: "y,a=admin,n=,r=abc"},
		{name: "unknown flag", data: "x,,n=,r=abc"},
		{name: "upper case flag", data: "N,,n=,r=abc"},
		{name: "mandatory extension", data: "n,,m=ext,n=,r=abc"},
		{name: "no user", data: "n,,r=abc"},
		{name: "no nonce", data: "n,,n=user"},
		{name: "nonce attribute without value", data: "n,,n=user,r"},
		{name: "empty nonce", data: "n,,n=user,r="},
		{name: "nonce with space", data: "n,,n=user,r=a b"},
		{name: "nonce with DEL", data: "n,,n=user,r=ab\x7f"},
		{name: "nonce not ASCII", data: "n,,n=user,r=ab\xc3\xa4"},
		{name: "trailing comma", data: "n,,n=user,r=abc,"},
		{name: "bad extension name", data: "n,,n=user,r=abc,1=x"},
		{name: "extension without equals", data: "n,,n=user,r=abc,xy"},
		{name: "NUL byte", data: "n,,n=user\x00,r=abc"},
		{name: "attributes swapped", data: "n,,r=abc,n=user"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mechanism := tt.mechanism
			if mechanism == "" && !tt.noMech {
				mechanism = MechanismSCRAMSHA256
			}
			c := NewSCRAMDecoy("user", zeroRand())
			serverFirst, err := c.ClientFirst(mechanism, []byte(tt.data))
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("ClientFirst(%q, %q) = %q, %v; want ErrMalformed", mechanism, tt.data, serverFirst, err)
			}
			if _, err := c.ClientFinal([]byte("c=biws,r=abc" + zeroNonce + ",p=" + key32)); !errors.Is(err, errOutOfOrder) {
				t.Errorf("ClientFinal after a failed ClientFirst = %v, want errOutOfOrder", err)
			}
		})
	}
}

func TestSCRAMClientFirstAccepted(t *testing.T) {
	tests := []struct {
		name, data, wantNonce string
	}{
		{name: "no user name", data: "n,,n=,r=abc", wantNonce: "abc"},
		{name: "user name ignored", data: "n,,n=someone=2Celse,r=abc", wantNonce: "abc"},
		{name: "y flag", data: "y,,n=,r=abc", wantNonce: "abc"},
		{name: "extensions", data: "n,,n=,r=abc,x=1,Y=", wantNonce: "abc"},
		{name: "all printable", data: "n,,n=,r=!~+-", wantNonce: "!~+-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseSecret(rfcUser, rfcVerifier)
			if err != nil {
				t.Fatal(err)
			}
			c, err := NewSCRAM(s, zeroRand())
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.ClientFirst(MechanismSCRAMSHA256, []byte(tt.data))
			if err != nil {
				t.Fatalf("ClientFirst: %v", err)
			}
			want := "r=" + tt.wantNonce + zeroNonce + ",s=" + rfcSalt + ",i=4096"
			if string(got) != want {
				t.Errorf("server-first = %q, want %q", got, want)
			}
		})
	}
}

func TestSCRAMClientFinalMalformed(t *testing.T) {
	const nonce = "abc" // the client nonce; the server appends zeroNonce
	full := nonce + zeroNonce
	tests := []struct {
		name string
		data string
	}{
		{name: "empty", data: ""},
		{name: "no proof", data: "c=biws,r=" + full},
		{name: "proof only", data: ",p=" + key32},
		{name: "no nonce", data: "c=biws,p=" + key32},
		{name: "no channel binding", data: "r=" + full + ",p=" + key32},
		{name: "channel binding of y", data: "c=eSws,r=" + full + ",p=" + key32},
		{name: "channel binding data", data: "c=cD10bHMtc2VydmVyLWVuZC1wb2ludCws,r=" + full + ",p=" + key32},
		{name: "empty channel binding", data: "c=,r=" + full + ",p=" + key32},
		{name: "client nonce only", data: "c=biws,r=" + nonce + ",p=" + key32},
		{name: "other nonce", data: "c=biws,r=" + nonce + "B" + zeroNonce[1:] + ",p=" + key32},
		{name: "longer nonce", data: "c=biws,r=" + full + "A,p=" + key32},
		{name: "swapped attributes", data: "r=" + full + ",c=biws,p=" + key32},
		{name: "extension instead of nonce", data: "c=biws,x=" + full + ",p=" + key32},
		{name: "empty proof", data: "c=biws,r=" + full + ",p="},
		{name: "short proof", data: "c=biws,r=" + full + ",p=" + key31},
		{name: "long proof", data: "c=biws,r=" + full + ",p=" + key33},
		{name: "proof not base64", data: "c=biws,r=" + full + ",p=" + strings.Repeat("*", 44)},
		{name: "proof with stray bits", data: "c=biws,r=" + full + ",p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB="},
		{name: "garbage after proof", data: "c=biws,r=" + full + ",p=" + key32 + ",x=y"},
		{name: "two proofs", data: "c=biws,r=" + full + ",p=" + key32 + ",p=" + key32},
		{name: "bad extension", data: "c=biws,r=" + full + ",1=x,p=" + key32},
		{name: "trailing comma before proof", data: "c=biws,r=" + full + ",,p=" + key32},
		{name: "NUL byte", data: "c=biws,r=" + full + ",p=" + key32 + "\x00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseSecret(rfcUser, rfcVerifier)
			if err != nil {
				t.Fatal(err)
			}
			c, err := NewSCRAM(s, zeroRand())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.ClientFirst(MechanismSCRAMSHA256, []byte("n,,n=,r="+nonce)); err != nil {
				t.Fatalf("ClientFirst: %v", err)
			}
			serverFinal, err := c.ClientFinal([]byte(tt.data))
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("ClientFinal(%q) = %q, %v; want ErrMalformed", tt.data, serverFinal, err)
			}
		})
	}
}

func TestSCRAMOrder(t *testing.T) {
	s, err := ParseSecret(rfcUser, rfcVerifier)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("final before first", func(t *testing.T) {
		c, _ := NewSCRAM(s, nil)
		if _, err := c.ClientFinal([]byte(rfcClientFinal)); !errors.Is(err, errOutOfOrder) {
			t.Errorf("ClientFinal = %v, want errOutOfOrder", err)
		}
	})
	t.Run("first twice", func(t *testing.T) {
		c, _ := NewSCRAM(s, nil)
		if _, err := c.ClientFirst(MechanismSCRAMSHA256, []byte(rfcClientFirst)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.ClientFirst(MechanismSCRAMSHA256, []byte(rfcClientFirst)); !errors.Is(err, errOutOfOrder) {
			t.Errorf("second ClientFirst = %v, want errOutOfOrder", err)
		}
	})
	t.Run("final after bad password", func(t *testing.T) {
		c, _ := NewSCRAM(s, nil)
		tc := newTestClient("wrong")
		serverFirst, err := c.ClientFirst(MechanismSCRAMSHA256, tc.first())
		if err != nil {
			t.Fatal(err)
		}
		final, _ := tc.final(t, serverFirst)
		if _, err := c.ClientFinal(final); !errors.Is(err, ErrBadPassword) {
			t.Fatalf("ClientFinal = %v, want ErrBadPassword", err)
		}
		if _, err := c.ClientFinal(final); !errors.Is(err, errOutOfOrder) {
			t.Errorf("second ClientFinal = %v, want errOutOfOrder", err)
		}
	})
	t.Run("zero value", func(t *testing.T) {
		var c SCRAM
		if _, err := c.ClientFirst(MechanismSCRAMSHA256, []byte(rfcClientFirst)); !errors.Is(err, errOutOfOrder) {
			t.Errorf("ClientFirst on a zero SCRAM = %v, want errOutOfOrder", err)
		}
	})
	t.Run("rand fails", func(t *testing.T) {
		broken := errors.New("no entropy")
		c, _ := NewSCRAM(s, iotest.ErrReader(broken))
		_, err := c.ClientFirst(MechanismSCRAMSHA256, []byte(rfcClientFirst))
		if !errors.Is(err, broken) || errors.Is(err, ErrMalformed) {
			t.Errorf("ClientFirst = %v, want the reader's error", err)
		}
	})
	t.Run("short rand", func(t *testing.T) {
		c, _ := NewSCRAM(s, bytes.NewReader(make([]byte, scramNonceLen-1)))
		if _, err := c.ClientFirst(MechanismSCRAMSHA256, []byte(rfcClientFirst)); err == nil {
			t.Error("ClientFirst with a short nonce succeeded")
		}
	})
}

func TestNewSCRAMNeedsVerifier(t *testing.T) {
	md5Secret, err := ParseSecret(rfcUser, rfcMD5)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []Secret{md5Secret, {}} {
		t.Run(s.String(), func(t *testing.T) {
			if c, err := NewSCRAM(s, nil); err == nil {
				t.Errorf("NewSCRAM = %v, want an error", c)
			}
		})
	}
}

func TestSCRAMDecoy(t *testing.T) {
	serverFirst := func(user string) string {
		t.Helper()
		c := NewSCRAMDecoy(user, nil)
		got, err := c.ClientFirst(MechanismSCRAMSHA256, []byte("n,,n=,r=abc"))
		if err != nil {
			t.Fatal(err)
		}
		return string(got)
	}
	saltAndIterations := func(serverFirst string) string {
		_, after, _ := strings.Cut(serverFirst, ",s=")
		return after
	}
	a1, a2, b := serverFirst("alice"), serverFirst("alice"), serverFirst("bob")
	if a1 == a2 {
		t.Error("two decoy conversations used the same nonce")
	}
	if saltAndIterations(a1) != saltAndIterations(a2) {
		t.Errorf("decoy salt for the same user changed: %q, %q", a1, a2)
	}
	if saltAndIterations(a1) == saltAndIterations(b) {
		t.Errorf("decoys for alice and bob share a salt: %q", a1)
	}
	if !strings.HasSuffix(a1, ",i=4096") {
		t.Errorf("decoy server-first %q, want 4096 iterations", a1)
	}
	salt, _, _ := strings.Cut(saltAndIterations(a1), ",")
	if raw, ok := decodeBase64(salt); !ok || len(raw) != scramSaltLen {
		t.Errorf("decoy salt %q is not %d bytes of base64", salt, scramSaltLen)
	}
}

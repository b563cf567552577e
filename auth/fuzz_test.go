package auth

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// FuzzSCRAM feeds arbitrary client-first and client-final messages to a
// conversation. The server nonce comes from a reader of zero bytes, so the seeds
// (one of them a complete valid login) reach every check of ClientFinal.
func FuzzSCRAM(f *testing.F) {
	s, err := ParseSecret(rfcUser, rfcVerifier)
	if err != nil {
		f.Fatal(err)
	}
	first := []byte("n,,n=,r=abc")
	c, err := NewSCRAM(s, zeroRand())
	if err != nil {
		f.Fatal(err)
	}
	serverFirst, err := c.ClientFirst(MechanismSCRAMSHA256, first)
	if err != nil {
		f.Fatal(err)
	}
	tc := &testClient{password: rfcPassword, gs2Header: "n,,", nonce: "abc", firstBare: "n=,r=abc"}
	for _, final := range []string{
		string(must(tc.final(f, serverFirst))),
		string(must(tc.final(f, serverFirst, "x=ext"))),
		"c=biws,r=abc" + zeroNonce + ",p=" + key32,
		"c=eSws,r=abc" + zeroNonce + ",p=" + key32,
		"c=biws,r=abc" + zeroNonce + ",p=" + key32 + ",p=" + key32,
		"",
	} {
		f.Add(first, []byte(final), false)
		f.Add(first, []byte(final), true)
	}
	f.Add([]byte("y,,n=user,r=abc,e=x"), []byte("c=eSws,r=abc"+zeroNonce+",p="+key32), false)
	f.Add([]byte("p=tls-server-end-point,,n=,r=abc"), []byte(""), false)
	f.Add([]byte("n,a=me,n=,r=abc"), []byte(""), false)
	f.Add([]byte("n,,m=x,n=,r=abc"), []byte(""), false)
	f.Add([]byte(rfcClientFirst), []byte(rfcClientFinal), false)

	f.Fuzz(func(t *testing.T, first, final []byte, decoy bool) {
		c := NewSCRAMDecoy(rfcUser, zeroRand())
		if !decoy {
			var err error
			if c, err = NewSCRAM(s, zeroRand()); err != nil {
				t.Fatal(err)
			}
		}
		serverFirst, err := c.ClientFirst(MechanismSCRAMSHA256, first)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("ClientFirst(%q) = %v, want ErrMalformed", first, err)
			}
			return
		}
		if !bytes.HasPrefix(serverFirst, []byte("r=")) || !strings.Contains(string(serverFirst), zeroNonce+",s=") {
			t.Fatalf("ClientFirst(%q) = %q", first, serverFirst)
		}
		serverFinal, err := c.ClientFinal(final)
		switch {
		case err == nil && decoy:
			t.Fatalf("decoy accepted %q", final)
		case err == nil && !bytes.HasPrefix(serverFinal, []byte("v=")):
			t.Fatalf("ClientFinal(%q) = %q", final, serverFinal)
		case err != nil && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrBadPassword):
			t.Fatalf("ClientFinal(%q) = %v, want ErrMalformed or ErrBadPassword", final, err)
		}
	})
}

// FuzzParseSecret checks that hash-shaped secrets either fail or print back as
// given. Plaintext is left out: it only costs PBKDF2 time.
func FuzzParseSecret(f *testing.F) {
	for _, s := range []string{rfcVerifier, rfcMD5, upperMD5, "SCRAM-SHA-256$1:AA==" + scramWithKeys, "SCRAM-SHA-256$", "md5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, password string) {
		if !strings.HasPrefix(password, scramPrefix) && !(len(password) == md5HashLen && strings.HasPrefix(password, md5Prefix)) {
			return
		}
		s, err := ParseSecret(rfcUser, password)
		if err != nil {
			return
		}
		switch s.kind {
		case kindSCRAM:
			if got := s.scram.String(); got != password {
				t.Fatalf("ParseSecret(%q) prints back as %q", password, got)
			}
		case kindMD5:
			if s.md5 != strings.ToLower(password) {
				t.Fatalf("ParseSecret(%q) keeps md5 %q", password, s.md5)
			}
		default:
			t.Fatalf("ParseSecret(%q) = %v", password, s)
		}
	})
}

func must(b []byte, _ string) []byte { return b }

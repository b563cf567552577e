package pgdial

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/pgpoolx/pgpoolx/auth"
)

func TestConfigProblems(t *testing.T) {
	key := make([]byte, scramKeyLen)
	for _, tc := range []struct {
		name string
		cfg  Config
		want []string // all of these in one error
	}{
		{"empty", Config{}, []string{"no Host", "no User"}},
		{"port", Config{Host: "h", User: "u", Port: 70000}, []string{"Port 70000 is not in 1..65535"}},
		{"mode", Config{Host: "h", User: "u", SSLMode: "on"}, []string{`unknown SSLMode "on"`}},
		{"params", Config{Host: "h", User: "u", Params: map[string]string{"user": "x", "a\x00": "b"}},
			[]string{`Params may not set "user"`, `Params "a\x00"`}},
		{"md5", Config{Host: "h", User: "u", Credentials: Credentials{MD5Hash: "md5xyz"}}, []string{`MD5Hash is not "md5" and 32 hex digits`}},
		{"one key", Config{Host: "h", User: "u", Credentials: Credentials{SCRAMClientKey: key}}, []string{"must both be set, 32 bytes each"}},
		{"short keys", Config{Host: "h", User: "u", Credentials: Credentials{SCRAMClientKey: key[:5], SCRAMServerKey: key[:5]}}, []string{"must both be set"}},
		{"NUL", Config{Host: "h", User: "u\x00"}, []string{"may not hold a NUL byte"}},
		{"timeout", Config{Host: "h", User: "u", Timeout: -1}, []string{"negative Timeout"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Dial(t.Context(), tc.cfg)
			if err == nil {
				t.Fatal("Dial succeeded")
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("err = %v, want it to say %q", err, want)
				}
			}
			if strings.Contains(err.Error(), "connecting") {
				t.Errorf("err = %v: Dial tried to connect with a bad config", err)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	cfg := Config{Host: "h", User: "u"}
	if _, err := cfg.prepare(); err != nil {
		t.Fatal(err)
	}
	if cfg.Port != 5432 || cfg.Database != "u" || cfg.SSLMode != SSLPrefer {
		t.Errorf("Port, Database, SSLMode = %d, %q, %q; want 5432, u, prefer", cfg.Port, cfg.Database, cfg.SSLMode)
	}
}

// TestCredentialsNeverPrinted prints a Config under every verb a careless
// log line might use.
func TestCredentialsNeverPrinted(t *testing.T) {
	clientKey, serverKey := bytes.Repeat([]byte{0xab}, scramKeyLen), bytes.Repeat([]byte{0xcd}, scramKeyLen)
	md5 := auth.MD5Hash("u", password)
	cfg := Config{Host: "h", User: "u", Credentials: Credentials{
		Password: password, MD5Hash: md5, SCRAMClientKey: clientKey, SCRAMServerKey: serverKey,
	}}
	secrets := []string{password, md5[3:], hex.EncodeToString(clientKey), hex.EncodeToString(serverKey),
		base64.StdEncoding.EncodeToString(clientKey), "171, 171", "171 171", hex.EncodeToString([]byte(password))}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d"} {
		for _, v := range []any{cfg, &cfg, cfg.Credentials} {
			out := fmt.Sprintf(verb, v)
			for _, s := range secrets {
				if strings.Contains(strings.ToLower(out), strings.ToLower(s)) {
					t.Errorf("Sprintf(%q, %T) = %s: holds a secret", verb, v, out)
				}
			}
		}
	}
	if got, want := cfg.Credentials.String(), "pgdial.Credentials(password, md5 hash, SCRAM keys)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestParseServerFirst(t *testing.T) {
	const ours = "abc"
	for _, tc := range []struct {
		msg  string
		want string // "" for success
	}{
		{"r=abcdef,s=c2FsdA==,i=4096", ""},
		{"r=abcdef,s=c2FsdA==,i=4096,x=extension", ""},
		{"m=must,r=abcdef,s=c2FsdA==,i=4096", "extension we do not know"},
		{"r=abcdef,s=c2FsdA==", "want"},
		{"r=abc,s=c2FsdA==,i=4096", "does not extend ours"},
		{"r=xyzdef,s=c2FsdA==,i=4096", "does not extend ours"},
		{"r=abc\x7f,s=c2FsdA==,i=4096", "does not extend ours"},
		{"r=abcdef,s=,i=4096", "salt"},
		{"r=abcdef,s=not base64,i=4096", "salt"},
		{"r=abcdef,s=c2FsdA==,i=0", "iteration count"},
		{"r=abcdef,s=c2FsdA==,i=2147483648", "iteration count"},
		{"r=abcdef,s=c2FsdA==,i=x", "iteration count"},
		{"s=c2FsdA==,r=abcdef,i=4096", "does not extend ours"},
	} {
		_, _, _, err := parseServerFirst(tc.msg, ours)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("parseServerFirst(%q) err = %v, want %q", tc.msg, err, tc.want)
		}
	}
}

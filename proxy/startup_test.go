package proxy

import (
	"maps"
	"testing"

	"github.com/pgpoolx/pgpoolx/pinning"
)

func TestParseStartupParams(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want map[string]string
		ok   bool
	}{
		{"user and database", "user\x00app\x00database\x00db\x00\x00", map[string]string{"user": "app", "database": "db"}, true},
		{"empty list", "\x00", map[string]string{}, true},
		{"empty value", "application_name\x00\x00\x00", map[string]string{"application_name": ""}, true},
		{"missing terminator", "user\x00app\x00", nil, false},
		{"missing value", "user\x00", nil, false},
		{"trailing garbage", "user\x00app\x00\x00x", nil, false},
		{"nothing", "", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStartupParams([]byte(tt.in))
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok %v", err, tt.ok)
			}
			if tt.ok && !maps.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestIsFatal(t *testing.T) {
	tests := []struct {
		body string
		want bool
	}{
		{"SFATAL\x00VFATAL\x00C57P01\x00Mterminating\x00\x00", true},
		{"SERROR\x00C22012\x00Mdivision by zero\x00\x00", false},
		{"SPANIC\x00\x00", true},
		{"C57P01\x00", false},
		{"", false},
		{"Sunterminated", false},
	}
	for _, tt := range tests {
		if got := isFatal([]byte(tt.body)); got != tt.want {
			t.Errorf("isFatal(%q) = %v, want %v", tt.body, got, tt.want)
		}
	}
}

func FuzzParseStartupParams(f *testing.F) {
	f.Add([]byte("user\x00app\x00database\x00db\x00\x00"))
	f.Add([]byte("\x00"))
	f.Add([]byte("options\x00-c a=b\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		params, err := parseStartupParams(b)
		if err == nil && params == nil {
			t.Fatal("nil params without an error")
		}
	})
}

func TestInitQueryFor(t *testing.T) {
	tests := []struct{ sql, want string }{
		{"SET client_encoding TO 'unicode'", "SET client_encoding TO 'unicode'"},
		{"SET SESSION statement_timeout = 300000", "SET statement_timeout TO 300000"},
		{"SET TIME ZONE 'UTC'", "SET TIME ZONE 'UTC'"},
		{"SET myapp.tenant = 'secret-tenant'", ""},
		{"SET LOCAL work_mem = '64MB'", ""},
		{"RESET ALL", ""},
		{"SELECT 1", ""},
	}
	for _, tt := range tests {
		if got := initQueryFor(pinning.Classify(tt.sql)); got != tt.want {
			t.Errorf("initQueryFor(%q) = %q, want %q", tt.sql, got, tt.want)
		}
	}
}

package session

import (
	"maps"
	"strings"
	"testing"
)

func TestParseOptions(t *testing.T) {
	tests := []struct {
		in      string
		want    map[string]string
		wantErr bool
	}{
		{"", map[string]string{}, false},
		{"-c search_path=app", map[string]string{"search_path": "app"}, false},
		{"-csearch_path=app", map[string]string{"search_path": "app"}, false},
		{"--statement-timeout=5s", map[string]string{"statement_timeout": "5s"}, false},
		{"-c a=1  -c b=2\t--c=3", map[string]string{"a": "1", "b": "2", "c": "3"}, false},
		{`-c search_path=my\ schema,public`, map[string]string{"search_path": "my schema,public"}, false},
		{"-c DateStyle=ISO", map[string]string{"datestyle": "ISO"}, false},
		{"-c", nil, true},
		{"-c novalue", nil, true},
		{"-c =x", nil, true},
		{"-B 100", nil, true},
		{"stray", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseOptions(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !tt.wantErr && !maps.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestStartupSettings(t *testing.T) {
	got, err := StartupSettings(map[string]string{
		"user": "app", "database": "db", "replication": "false", "_pq_.x": "1",
		"application_name": "rails", "DateStyle": "ISO, MDY",
		"options": "-c statement_timeout=1000 -c application_name=fromoptions",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"application_name": "fromoptions", "datestyle": "ISO, MDY", "statement_timeout": "1000"}
	if !maps.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, err := StartupSettings(map[string]string{"options": "-X"}); err == nil {
		t.Error("bad options accepted")
	}
}

func TestSyncSQL(t *testing.T) {
	tests := []struct {
		name          string
		want, current map[string]string
		sql           string
	}{
		{"nothing to do", nil, nil, ""},
		{"already equal costs nothing", map[string]string{"a": "1"}, map[string]string{"a": "1"}, ""},
		{"set new", map[string]string{"application_name": "x"}, nil,
			"SELECT FROM (SELECT pg_catalog.set_config(E'application_name', E'x', false)) AS s;"},
		{"changed value", map[string]string{"a": "2"}, map[string]string{"a": "1"},
			"SELECT FROM (SELECT pg_catalog.set_config(E'a', E'2', false)) AS s;"},
		{"reset to server default", nil, map[string]string{"search_path": "x"},
			`RESET "search_path";`},
		{"quotes and backslashes", map[string]string{"application_name": `it's \ me`}, nil,
			`SELECT FROM (SELECT pg_catalog.set_config(E'application_name', E'it''s \\ me', false)) AS s;`},
		{"several, sorted", map[string]string{"b": "2", "a": "1"}, map[string]string{"c": "3", "my.x": "4"},
			`SELECT FROM (SELECT pg_catalog.set_config(E'a', E'1', false), pg_catalog.set_config(E'b', E'2', false)) AS s;RESET "c";RESET "my"."x";`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SyncSQL(tt.want, tt.current); got != tt.sql {
				t.Errorf("got  %s\nwant %s", got, tt.sql)
			}
		})
	}
}

func FuzzParseOptions(f *testing.F) {
	f.Add("-c a=b")
	f.Add(`--x-y=1 -c z=a\ b`)
	f.Add(`\`)
	f.Fuzz(func(t *testing.T, s string) {
		set, err := ParseOptions(s)
		if err == nil {
			for k := range set {
				if k == "" {
					t.Fatal("empty setting name accepted")
				}
			}
		}
	})
}

func TestReportedParams(t *testing.T) {
	base := map[string]string{"DateStyle": "ISO, MDY", "client_encoding": "UTF8", "IntervalStyle": "postgres",
		"standard_conforming_strings": "on", "application_name": ""}
	tests := []struct {
		want map[string]string
		name string
		val  string
	}{
		{map[string]string{"datestyle": "iso"}, "DateStyle", "ISO, MDY"},
		{map[string]string{"datestyle": "sql, dmy"}, "DateStyle", "SQL, DMY"},
		{map[string]string{"datestyle": "German"}, "DateStyle", "German, DMY"},
		{map[string]string{"datestyle": "ymd"}, "DateStyle", "ISO, YMD"},
		{map[string]string{"client_encoding": "unicode"}, "client_encoding", "UTF8"},
		{map[string]string{"client_encoding": "latin1"}, "client_encoding", "LATIN1"},
		{map[string]string{"intervalstyle": "ISO_8601"}, "IntervalStyle", "iso_8601"},
		{map[string]string{"standard_conforming_strings": "true"}, "standard_conforming_strings", "on"},
		{map[string]string{"application_name": "App"}, "application_name", "App"},
	}
	for _, tt := range tests {
		t.Run(tt.name+"="+tt.val, func(t *testing.T) {
			if got := ReportedParams(base, tt.want)[tt.name]; got != tt.val {
				t.Errorf("got %q, want %q", got, tt.val)
			}
		})
	}
}

func TestKnownWithoutServer(t *testing.T) {
	for _, tt := range []struct {
		name    string
		startup map[string]string
		want    bool
	}{
		{"none", map[string]string{}, true},
		{"application_name", map[string]string{"application_name": "pgbench"}, true},
		{"63 bytes", map[string]string{"application_name": strings.Repeat("a", 63)}, true},
		{"64 bytes: truncated by the server", map[string]string{"application_name": strings.Repeat("a", 64)}, false},
		{"non-ASCII: replaced by the server", map[string]string{"application_name": "café"}, false},
		{"control character", map[string]string{"application_name": "a\tb"}, false},
		{"another setting", map[string]string{"application_name": "x", "datestyle": "ISO"}, false},
		{"timezone", map[string]string{"timezone": "utc"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := KnownWithoutServer(tt.startup); got != tt.want {
				t.Errorf("KnownWithoutServer(%q) = %v, want %v", tt.startup, got, tt.want)
			}
		})
	}
}

package pinreport

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from the output")

// goldenLog has a bit of everything a report shows.
var goldenLog = func() string {
	sec := time.Second
	return lines(
		listeningLine(0),
		pinnedLine(sec, 1, "session_advisory_lock", lockDigest),
		pinnedLine(sec, 2, "listen", listenDigest),
		rdsLine(sec, "session_setting", "set statement_timeout to $1", "SET statement_timeout TO 5000"),
		rdsLine(sec, "listen", listenDigest, ""),
		unpinnedLine(3*sec, 1, "session_advisory_lock", 2*sec, 4),
		pinnedLine(4*sec, 3, "temp_table", "create temp table a_very_long_table_name_for_testing (id int default $1, other text not null default $2)"),
		pinnedLine(4*sec, 4, "role_change", "set role\n\x1b[31m$1"),
		unpinnedLine(4*sec+1500*time.Microsecond, 4, "role_change", 1500*time.Microsecond, 1),
		statsLine(6*sec, "appdb", 40, 2, 0, 5),
		listeningLine(90*sec),
		rdsLine(91*sec, "session_setting", "set statement_timeout = $1", "SET statement_timeout TO 0"),
		rdsLine(91*sec, "session_setting", "set timezone to $1", "SET TIME ZONE 'UTC'"),
		unpinnedLine(92*sec, 9, "listen", 75*sec, 12),
		"junk",
		`{"msg":"session pinned",`,
	)
}()

func TestWrite(t *testing.T) {
	for _, tc := range []struct {
		name string
		log  string
		opts WriteOptions
	}{
		{"full", goldenLog, WriteOptions{RDSProxy: true}},
		{"top", goldenLog, WriteOptions{Top: 2}},
		{"empty", "", WriteOptions{RDSProxy: true}},
		{"console format", "2026-03-01T10:00:00.000+0100\tINFO\tpgpoolx\tlistening\n", WriteOptions{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Read(strings.NewReader(tc.log), Options{})
			if err != nil {
				t.Fatal(err)
			}
			var text, js bytes.Buffer
			if err := WriteText(&text, r, tc.opts); err != nil {
				t.Fatal(err)
			}
			if err := WriteJSON(&js, r, tc.opts); err != nil {
				t.Fatal(err)
			}
			if !json.Valid(js.Bytes()) {
				t.Errorf("invalid JSON:\n%s", js.String())
			}
			name := strings.ReplaceAll(tc.name, " ", "_")
			golden(t, name+".txt", text.Bytes())
			golden(t, name+".json", js.Bytes())
			if bytes.ContainsRune(text.Bytes(), '\x1b') {
				t.Error("an escape sequence from the log reached the text")
			}
		})
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update rewrites it); got:\n%s", path, got)
	}
}

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		got, want string
	}{
		{formatDuration(0), "0s"},
		{formatDuration(1500 * time.Microsecond), "2ms"},
		{formatDuration(1234567 * time.Microsecond), "1.23s"},
		{formatDuration(61*time.Second + 600*time.Millisecond), "1m2s"},
		{formatDuration(50 * time.Hour), "50h0m0s"},
		{formatBytes(512), "512 B"},
		{formatBytes(1 << 20), "1 MiB"},
		{formatBytes(3 << 29), "1.5 GiB"},
		{plural(1, "pin"), "1 pin"},
		{plural(2, "pin"), "2 pins"},
		{plural(2, `"pool stats" line`), `2 "pool stats" lines`},
		{cell("a\tb\x00c", 10), "a b c"},
		{cell("abcdefghijk", 5), "abcd…"},
		{cell("ééééééé", 3), "éé…"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

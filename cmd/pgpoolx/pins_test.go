package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pgpoolx/pgpoolx/pinreport"
)

// pinLog is a log of two pgpoolx runs: a session advisory lock pinned and
// unpinned, a LISTEN still open when the first run stopped, and what RDS
// Proxy would pin for.
const pinLog = `{"level":"info","ts":"2026-03-01T10:00:00.000+0100","logger":"pgpoolx","msg":"listening","addr":"127.0.0.1:6432","version":"dev","databases":1}
{"level":"info","ts":"2026-03-01T10:00:01.000+0100","logger":"pgpoolx.client","msg":"would pin on rds proxy","client_id":1,"db":"appdb","user":"app","reason":"session_setting","detail":"SQL changed session settings that the proxy doesn't track.","digest":"set statement_timeout to $1","hint":"Move the setting into the proxy's initialization query.","init_query":"SET statement_timeout TO 5000"}
{"level":"info","ts":"2026-03-01T10:00:01.000+0100","logger":"pgpoolx.client","msg":"session pinned","client_id":1,"db":"appdb","user":"app","reason":"session_advisory_lock","detail":"The session holds a session-level advisory lock.","digest":"select pg_advisory_lock($1)","query_bytes":31,"server_pid":4242,"hint":"Use transaction-level advisory locks (pg_advisory_xact_lock)."}
{"level":"info","ts":"2026-03-01T10:00:02.000+0100","logger":"pgpoolx.client","msg":"session pinned","client_id":2,"db":"appdb","user":"app","reason":"listen","detail":"The session listens on a channel.","digest":"listen jobs","query_bytes":11,"server_pid":4243,"hint":"LISTEN on a dedicated connection that bypasses the pooler."}
{"level":"info","ts":"2026-03-01T10:00:04.500+0100","logger":"pgpoolx.client","msg":"session unpinned","client_id":1,"db":"appdb","user":"app","reason":"session_advisory_lock","pinned_for":3.5,"transactions":4,"server_pid":4242}
{"level":"info","ts":"2026-03-01T10:01:00.000+0100","logger":"pgpoolx","msg":"pool stats","db":"appdb","user":"app","clients":25,"clients_pinned":1,"clients_waiting":0,"server_conns":3,"server_conns_idle":1}
this line is not JSON
{"level":"info","ts":"2026-03-01T11:00:00.000+0100","logger":"pgpoolx","msg":"listening","addr":"127.0.0.1:6432","version":"dev","databases":1}
{"level":"info","ts":"2026-03-01T11:00:01.000+0100","logger":"pgpoolx.client","msg":"session pinned","client_id":1,"db":"appdb","user":"app","reason":"session_advisory_lock","detail":"The session holds a session-level advisory lock.","digest":"select pg_advisory_lock($1)","query_bytes":31,"server_pid":4250,"hint":"Use transaction-level advisory locks (pg_advisory_xact_lock)."}
{"level":"info","ts":"2026-03-01T11:00:01.250+0100","logger":"pgpoolx.client","msg":"session unpinned","client_id":1,"db":"appdb","user":"app","reason":"session_advisory_lock","pinned_for":0.25,"transactions":1,"server_pid":4250}
`

func TestPins(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, content []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	logFile := write("pgpoolx.log", []byte(pinLog))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(pinLog))
	zw.Close()
	gzFile := write("pgpoolx.log.1.gz", gz.Bytes())
	// The log split in two files, the first without its last line end.
	split := strings.Index(pinLog, "this line")
	part1 := write("part1.log", []byte(pinLog[:split-1]))
	part2 := write("part2.log", []byte(pinLog[split:]))

	table := []string{
		"3 pins (1 still open) in 10 lines from 2026-03-01 10:00:00 to 2026-03-01 11:00:01, 2 pgpoolx starts.",
		"REASON                 DIGEST                       PINS  OPEN  PINNED TIME  TX  FIRST SEEN           LAST SEEN",
		"listen                 listen jobs                     1     1          58s   0  2026-03-01 10:00:02  2026-03-01 10:00:02",
		"session_advisory_lock  select pg_advisory_lock($1)     2     0        3.75s   5  2026-03-01 10:00:01  2026-03-01 11:00:01",
		"    Hint: LISTEN on a dedicated connection that bypasses the pooler.",
		"  appdb/app: 25 clients on 3 server connections, 22 saved (at most 1 pinned, 0 waiting)",
		"Skipped 1 line not in JSON.",
	}
	for _, tc := range []struct {
		name       string
		args       []string
		stdin      string
		wantErr    bool
		wantStdout []string // each must appear
		notStdout  []string // none may
		wantStderr []string // each must appear; stderr must be empty if none
	}{
		{name: "file", args: []string{logFile}, wantStdout: table,
			notStdout: []string{"SET statement_timeout"}},
		{name: "stdin", args: []string{"-"}, stdin: pinLog, wantStdout: table},
		{name: "stdin without arguments", stdin: pinLog, wantStdout: table},
		{name: "gzip", args: []string{gzFile}, wantStdout: table},
		{name: "two files", args: []string{part1, part2}, wantStdout: table},
		{name: "rds proxy", args: []string{"--rds-proxy", logFile}, wantStdout: append(table,
			"session_setting  set statement_timeout to $1      1  2026-03-01 10:00:01",
			"  SET statement_timeout TO 5000")},
		{name: "flags after the file", args: []string{logFile, "-rds-proxy", "--top", "1"}, wantStdout: []string{
			"  SET statement_timeout TO 5000", "(1 more row)"}},
		{name: "all rows", args: []string{"--top", "0", logFile}, wantStdout: table},
		{name: "a file after --", args: []string{"--", logFile}, wantStdout: table},
		{name: "missing file", args: []string{filepath.Join(dir, "missing.log")}, wantErr: true},
		{name: "unknown flag", args: []string{"--nope"}, wantErr: true,
			wantStderr: []string{"flag provided but not defined: -nope", "Usage: pgpoolx pins"}},
		{name: "help", args: []string{"-h"}, wantStderr: []string{"Usage: pgpoolx pins", "-rds-proxy", "-json", "-top N",
			"0 for all (default 30, all with -json)\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := pins(tc.args, strings.NewReader(tc.stdin), &stdout, &stderr)
			if tc.wantErr != (err != nil) {
				t.Fatalf("pins(%q) = %v, want error: %v\nstderr:\n%s", tc.args, err, tc.wantErr, &stderr)
			}
			for _, want := range tc.wantStdout {
				if !strings.Contains(stdout.String(), want+"\n") {
					t.Errorf("stdout lacks the line %q:\n%s", want, &stdout)
				}
			}
			for _, not := range tc.notStdout {
				if strings.Contains(stdout.String(), not) {
					t.Errorf("stdout has %q:\n%s", not, &stdout)
				}
			}
			for _, want := range tc.wantStderr {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr lacks %q:\n%s", want, &stderr)
				}
			}
			if len(tc.wantStderr) == 0 && stderr.Len() != 0 {
				t.Errorf("stderr %q, want nothing", &stderr)
			}
		})
	}
}

func TestPinsJSON(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := pins([]string{"--json", "--rds-proxy"}, strings.NewReader(pinLog), &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, &stderr)
	}
	var got struct {
		Pins int64
		Open int64
		Rows []struct {
			Reason        string
			Digest        string
			Pins, Open    int64
			PinnedSeconds float64 `json:"pinned_seconds"`
		}
		Pools []struct {
			PeakClients     int64 `json:"peak_clients"`
			PeakServerConns int64 `json:"peak_server_conns"`
		}
		RDSProxy struct {
			InitQuery string `json:"init_query"`
		} `json:"rds_proxy"`
		Skipped struct {
			NotJSON int64 `json:"not_json"`
		}
	}
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatalf("%v:\n%s", err, &stdout)
	}
	if got.Pins != 3 || got.Open != 1 || len(got.Rows) != 2 || got.Skipped.NotJSON != 1 {
		t.Fatalf("report:\n%s", &stdout)
	}
	if r := got.Rows[1]; r.Reason != "session_advisory_lock" || r.Digest != "select pg_advisory_lock($1)" || r.Pins != 2 || r.PinnedSeconds != 3.75 {
		t.Errorf("second row %+v", r)
	}
	if got.RDSProxy.InitQuery != "SET statement_timeout TO 5000" {
		t.Errorf("init_query %q", got.RDSProxy.InitQuery)
	}
	if len(got.Pools) != 1 || got.Pools[0].PeakClients != 25 || got.Pools[0].PeakServerConns != 3 {
		t.Errorf("pools %+v", got.Pools)
	}
}

// TestPinsProgress reads through progress as pins does, with a clock that
// moves 100ms a read.
func TestPinsProgress(t *testing.T) {
	for _, tc := range []struct {
		name     string
		on       bool
		total    int64
		reads    int // of 1 MiB
		wantShow []string
	}{
		{"known size", true, 128 << 20, 128, []string{"\rpgpoolx pins:   2% of 128 MiB", "\rpgpoolx pins:  51% of 128 MiB", "\rpgpoolx pins: 100% of 128 MiB"}},
		{"unknown size shows past 64 MiB", true, -1, 100, []string{"\rpgpoolx pins: 66 MiB read", "\rpgpoolx pins: 99 MiB read"}},
		{"small input", true, 16 << 20, 16, nil},
		{"not a terminal", false, 128 << 20, 128, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var w bytes.Buffer
			now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
			p := &progress{
				r: io.LimitReader(zeros{}, int64(tc.reads)<<20), w: &w, on: tc.on, total: tc.total,
				now: func() time.Time { now = now.Add(100 * time.Millisecond); return now },
			}
			p.next = now.Add(progressEvery)
			buf := make([]byte, 1<<20)
			for {
				if _, err := p.Read(buf); errors.Is(err, io.EOF) {
					break
				}
			}
			p.clear()
			out := w.String()
			for _, want := range tc.wantShow {
				if !strings.Contains(out, want) {
					t.Errorf("progress lacks %q: %q", want, out)
				}
			}
			if tc.wantShow == nil && out != "" {
				t.Errorf("progress shown: %q", out)
			}
			if tc.wantShow != nil && !strings.HasSuffix(out, "\r\x1b[K") {
				t.Errorf("progress not cleared at the end: %q", out)
			}
			// At most one update every 250ms: every third read.
			if n := strings.Count(out, "\rpgpoolx"); n > tc.reads/2 {
				t.Errorf("%d updates in %d reads", n, tc.reads)
			}
		})
	}
}

type zeros struct{}

func (zeros) Read(b []byte) (int, error) { clear(b); return len(b), nil }

func TestPinsInterrupted(t *testing.T) {
	interrupt := make(chan os.Signal, 1)
	interrupt <- syscall.SIGINT
	var stderr bytes.Buffer
	in := input{name: "test", r: strings.NewReader(pinLog), size: -1}
	p := &progress{w: &stderr, total: -1, now: time.Now}
	agg := pinreport.NewAggregator(pinreport.Options{})
	if err := readInput(agg, in, p, interrupt); !errors.Is(err, errInterrupted) {
		t.Fatalf("readInput after a signal = %v, want errInterrupted", err)
	}
	if r := agg.Report(); r.Lines != 0 {
		t.Errorf("%d lines read after the signal", r.Lines)
	}
}

func TestIsTerminal(t *testing.T) {
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	file, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	for _, v := range []any{&bytes.Buffer{}, null, file, strings.NewReader("")} {
		if isTerminal(v) {
			t.Errorf("isTerminal(%T) = true", v)
		}
	}
}

package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const pgbenchOutput = `pgbench (15.18 (Debian 15.18-0+deb12u1))
transaction type: <builtin: select only>
scaling factor: 1
query mode: simple
number of clients: 64
number of threads: 2
maximum number of tries: 1
duration: 3 s
number of transactions actually processed: 32205
number of failed transactions: 7 (0.022%)
latency average = 5.867 ms
initial connection time = 75.449 ms
tps = 10908.136542 (without initial connection time)
`

// pgbenchReconnectOutput is the summary of a -C run.
const pgbenchReconnectOutput = `pgbench (15.18 (Debian 15.18-0+deb12u1))
transaction type: <builtin: select only>
scaling factor: 10
query mode: simple
number of clients: 16
number of threads: 2
maximum number of tries: 1
duration: 6 s
number of transactions actually processed: 13637
number of failed transactions: 0 (0.000%)
latency average = 7.041 ms
average connection time = 0.830 ms
tps = 2272.552294 (including reconnection times)
`

func TestParseSummary(t *testing.T) {
	for _, tt := range []struct {
		out               string
		tps               float64
		processed, failed int64
	}{
		{pgbenchOutput, 10908.136542, 32205, 7},
		{pgbenchReconnectOutput, 2272.552294, 13637, 0},
	} {
		r, err := parseSummary(tt.out)
		if err != nil {
			t.Fatal(err)
		}
		if r.tps != tt.tps || r.processed != tt.processed || r.failed != tt.failed {
			t.Errorf("parseSummary = tps %v, processed %d, failed %d; want %v, %d, %d",
				r.tps, r.processed, r.failed, tt.tps, tt.processed, tt.failed)
		}
	}
	if _, err := parseSummary("pgbench (15)\n"); err == nil {
		t.Error("parseSummary of an output without results: no error")
	}
}

func TestFailureReason(t *testing.T) {
	for _, tt := range []struct{ stderr, want string }{
		{"pgbench: error: client 3 script 0 aborted in command 0 query 0: ERROR:  prepared statement \"P_0\" already exists\n" +
			"pgbench: fatal: Run was aborted; the above results are incomplete.\n",
			`ERROR: prepared statement "P_0" already exists`},
		{"pgbench: error: connection to server at \"127.0.0.1\", port 1 failed: Connection refused\n",
			`connection to server at "127.0.0.1", port 1 failed: Connection refused`},
		{"", "pgbench: exit status 1"},
	} {
		if got := failureReason(tt.stderr, errors.New("exit status 1")); got != tt.want {
			t.Errorf("failureReason(%q) = %q, want %q", tt.stderr, got, tt.want)
		}
	}
}

func TestReadLatencies(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"tx.123":   "0 0 1500 0 1700000000 1\n0 1 2500 0 1700000000 3\n1 0 failed 0 1700000000 4\n",
		"tx.123.1": "2 0 500 0 1700000000 2\n2 1 skipped 0 1700000000 5\n3 0 100000 0 1700000000 6\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	lat, err := readLatencies(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(lat) != 4 {
		t.Fatalf("readLatencies read %v, want 4 latencies", lat)
	}
	if p50, p99 := percentile(lat, 0.5), percentile(lat, 0.99); p50 != 1500*time.Microsecond || p99 != 100*time.Millisecond {
		t.Errorf("p50 %v, p99 %v; want 1.5ms, 100ms", p50, p99)
	}
	if _, err := readLatencies(t.TempDir()); err == nil {
		t.Error("readLatencies of an empty directory: no error")
	}
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- {
		d = append(d, time.Duration(i))
	}
	for _, tt := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50}, {0.99, 99}, {1, 100}, {0.001, 1}} {
		if got := percentile(d, tt.q); got != tt.want {
			t.Errorf("percentile(1..100, %v) = %v, want %v", tt.q, got, tt.want)
		}
	}
	if got := percentile(nil, 0.5); got != 0 {
		t.Errorf("percentile(nil) = %v", got)
	}
}

func TestParseStatCPU(t *testing.T) {
	// The command name may hold spaces and parentheses.
	stat := "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 150 0 0 20 0 3 0 100 0 0"
	got, err := parseStatCPU(stat)
	if err != nil || got != 4*time.Second {
		t.Errorf("parseStatCPU = %v, %v; want 4s", got, err)
	}
	for _, bad := range []string{"", "4242 (x) S 1 2", "4242 (x) S 1 2 3 4 5 6 7 8 9 10 x 150"} {
		if _, err := parseStatCPU(bad); err == nil {
			t.Errorf("parseStatCPU(%q): no error", bad)
		}
	}
}

func TestMedian(t *testing.T) {
	for _, tt := range []struct {
		xs   []float64
		want float64
	}{{[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5}, {[]float64{7}, 7}} {
		if got := median(tt.xs); got != tt.want {
			t.Errorf("median = %v, want %v", got, tt.want)
		}
	}
	if got := median(nil); got == got {
		t.Errorf("median(nil) = %v, want NaN", got)
	}
}

func TestOrder(t *testing.T) {
	first := map[target]bool{}
	for rep := range int(numTargets) {
		o := order(rep)
		first[o[0]] = true
		seen := map[target]bool{}
		for _, t := range o {
			seen[t] = true
		}
		if len(seen) != int(numTargets) {
			t.Errorf("order(%d) = %v, not every target once", rep, o)
		}
	}
	if len(first) != int(numTargets) {
		t.Errorf("over %d repetitions only %v ran first", numTargets, first)
	}
}

// sampleResults has a cell where all three ran, one PgBouncer fails, one
// where pgpoolx failed once of two runs, and one PostgreSQL alone skips.
func sampleResults() *results {
	set := settings{scale: 1, duration: 3 * time.Second, reps: 2, cells: []cell{
		{builtin: "select-only", mode: "simple", clients: 64},
		{builtin: "select-only", mode: "prepared", clients: 64},
		{builtin: "select-only", mode: "simple", clients: manyClients, skip: [numTargets]string{direct: skipDirectMany}},
	}}
	ok := func(tps float64, cpu time.Duration) outcome {
		return outcome{tps: tps, processed: 1000, p50: time.Millisecond, p99: 4 * time.Millisecond, cpu: cpu}
	}
	r := newResults(set)
	r.runs[0] = [numTargets][]outcome{
		{ok(1000, 0), ok(1200, 0)},
		{ok(800, 40*time.Millisecond), ok(800, 40*time.Millisecond)},
		{ok(900, 60*time.Millisecond), ok(700, 60*time.Millisecond)},
	}
	r.runs[1] = [numTargets][]outcome{
		{ok(1000, 0), ok(1000, 0)},
		{{failure: `ERROR: prepared statement "P_0" already exists`}, {failure: `ERROR: prepared statement "P_0" already exists`}},
		{ok(900, 50*time.Millisecond), {failure: "stalled: no end", stalled: true}},
	}
	r.runs[2] = [numTargets][]outcome{
		nil,
		{ok(500, 30*time.Millisecond), ok(500, 30*time.Millisecond)},
		{{failure: "stalled: no end", stalled: true}, {failure: "stalled: no end", stalled: true}},
	}
	return r
}

func TestWriteMarkdown(t *testing.T) {
	var b strings.Builder
	if err := sampleResults().writeMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		// tps 1100 / 800 / 800: pgpoolx/PgBouncer 1.00, pgpoolx/direct 0.73; CPU 40 vs 60 µs/tx.
		"| select-only `-M simple` | 64 | 1100 | 800 | 800 | 1.00 | 0.73 | 1.00 / 4.00 | 1.00 / 4.00 | 1.00 / 4.00 | 40.0 | 60.0 | 1.50 |",
		"| select-only `-M prepared` | 64 | 1000 | fails | 900* | – | 0.90 |",
		"| select-only `-M simple` | 1000 | not run | 500 | stalled | – | – |",
		`PgBouncer, select-only -M prepared, 64 clients: failed in 2 of 2 runs: ERROR: prepared statement "P_0" already exists`,
		"pgpoolx, select-only -M prepared, 64 clients: stalled in 1 of 2 runs",
		"pgpoolx, select-only -M simple, 64 clients: runs disagree, tps from 700 to 900",
		skipDirectMany,
		// PgBouncer 500 tps at 1,000 clients against 800 at 64; pgpoolx stalled.
		"select-only `-M simple` with 1000 clients: tps is – of the same workload's at 64 clients through pgpoolx, 0.62 through PgBouncer.",
		"TPC-B with `-M prepared`",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	// PostgreSQL alone's 1000 and 1200 tps are within the spread allowed.
	if n := strings.Count(out, "runs disagree"); n != 1 {
		t.Errorf("%d notes of runs that disagree, want 1:\n%s", n, out)
	}
}

func TestWriteMarkdownPgbouncerAbsent(t *testing.T) {
	r := sampleResults()
	r.absent[pgbouncer] = "pgbouncer not found on PATH"
	for ci := range r.runs {
		r.runs[ci][pgbouncer] = nil
	}
	var b strings.Builder
	if err := r.writeMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if !strings.Contains(out, "- PgBouncer did not run: pgbouncer not found on PATH\n") {
		t.Errorf("report does not say PgBouncer is absent:\n%s", out)
	}
	if !strings.Contains(out, "| select-only `-M simple` | 64 | 1100 | not run | 800 | – | 0.73 |") {
		t.Errorf("report without PgBouncer:\n%s", out)
	}
}

func TestPgpoolxRegressions(t *testing.T) {
	r := sampleResults()
	err := r.pgpoolxRegressions()
	// Cell 1 has one good pgpoolx run; cell 2 fails entirely, and
	// PostgreSQL alone did not run it.
	if err == nil || !strings.Contains(err.Error(), "1000 clients") || strings.Contains(err.Error(), "prepared") {
		t.Errorf("pgpoolxRegressions = %v", err)
	}
	r.runs[2][pgpoolx] = []outcome{{tps: 1, processed: 1}}
	if err := r.pgpoolxRegressions(); err != nil {
		t.Errorf("pgpoolxRegressions with every cell passed = %v", err)
	}
}

// fakePgbench writes a shell script standing in for pgbench.
func fakePgbench(t *testing.T, script string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pgbench")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestPgbenchRunDo(t *testing.T) {
	c := cell{builtin: "select-only", mode: "simple", clients: 2}
	for _, tt := range []struct {
		name, script string
		logs         bool
		want         func(outcome) bool
	}{
		{"ok", "cat <<'EOF'\n" + pgbenchOutput + "EOF\n", true,
			func(r outcome) bool { return r.ok() && r.processed == 32205 && r.p99 == 2500*time.Microsecond }},
		{"fails", "echo 'pgbench: error: client 1 script 0 aborted in command 1 query 0: ERROR:  boom' >&2; exit 2\n", false,
			func(r outcome) bool { return r.failure == "ERROR: boom" && !r.stalled }},
		{"stalls", "sleep 30\n", false,
			func(r outcome) bool { return r.stalled && strings.HasPrefix(r.failure, "stalled") }},
		{"no logs", "cat <<'EOF'\n" + pgbenchOutput + "EOF\n", false,
			func(r outcome) bool { return strings.Contains(r.failure, "no pgbench transaction log") }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			logDir := t.TempDir()
			if tt.logs {
				if err := os.WriteFile(filepath.Join(logDir, "tx.1"), []byte("0 0 1500 0 1 2\n0 1 2500 0 1 3\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			p := pgbenchRun{bin: fakePgbench(t, tt.script), host: "127.0.0.1", port: 1, db: "x", cell: c,
				duration: time.Second, logDir: logDir, slack: time.Second}
			start := time.Now()
			r, err := p.do(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if !tt.want(r) {
				t.Errorf("do = %+v", r)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("do took %v", d)
			}
		})
	}
}

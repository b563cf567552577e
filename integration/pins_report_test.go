package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestPinsReport runs pin scenarios through the built pgpoolx, twice into
// one log file as a restarted service would, and checks what `pgpoolx
// pins` makes of that log. The first process is killed while a temporary
// table pins a client, so the report must show that pin as still open.
func TestPinsReport(t *testing.T) {
	bin := buildPgpoolx(t, "pins-test")
	c := pg.Get(t)
	db := c.NewDatabase(t)
	addr := freeAddr(t)
	cfg := writeFile(t, "pgpoolx.yaml", fmt.Sprintf(`listen: %s
stats_period: 100ms
pinning:
  rds_proxy_report: true
databases:
  %s:
    host: %s
    port: %d
    user: postgres
    pool_size: 4
`, addr, db, c.Host(), c.Port()))
	logPath := filepath.Join(t.TempDir(), "pgpoolx.log")
	defer func() {
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("pgpoolx log:\n%s", b)
		}
	}()
	ctx := t.Context()
	dsn := fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable&default_query_exec_mode=simple_protocol", addr, db)
	connect := func() *pgx.Conn {
		t.Helper()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatalf("connect through pgpoolx: %v", err)
		}
		t.Cleanup(func() { conn.Close(context.WithoutCancel(ctx)) })
		return conn
	}
	run := func(conn *pgx.Conn, sql string) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}

	// The first run: pins that end, SETs RDS Proxy would pin for, and a
	// pin still open when the process dies.
	first := startLogging(t, bin, cfg, logPath)
	lock, listen, temp := connect(), connect(), connect()
	for range 2 {
		run(lock, "SELECT pg_advisory_lock(424242)")
		run(lock, "SELECT pg_advisory_unlock(424242)")
	}
	run(listen, "LISTEN pins_report")
	run(listen, "UNLISTEN pins_report")
	run(lock, "SET statement_timeout TO 5000")
	run(lock, "SET work_mem = '8MB'")
	run(lock, "SET app.tenant = '42'")
	run(temp, "CREATE TEMP TABLE pins_report_tt (id int)")
	// A "pool stats" line after the open pin gives it a duration. The
	// second one: the first may carry a timestamp from before the pin (it
	// was stamped, then waited for the log's lock), or the same millisecond.
	waitForLog(t, logPath, "two pool stats lines after the temp table's pin", func(log string) bool {
		pinned := strings.LastIndex(log, `"digest":"create temp table pins_report_tt (id int)"`)
		return pinned >= 0 && strings.Count(log[pinned:], `"msg":"pool stats"`) >= 2
	})
	first.kill(t)

	// The second run: client ids start again, so this client 1 is not the
	// first run's; its pin ends when it disconnects.
	second := startLogging(t, bin, cfg, logPath)
	again := connect()
	run(again, "SELECT pg_advisory_lock(434343)")
	if err := again.Close(ctx); err != nil {
		t.Fatal(err)
	}
	waitForLog(t, logPath, "the unpin at disconnect", func(log string) bool {
		return strings.Count(log, `"msg":"session unpinned"`) == 4
	})
	second.stop(t)

	// The report, as JSON.
	stdout, stderr, code := runCommand(t, bin, "pins", "--json", "--rds-proxy", logPath)
	if code != 0 || stderr != "" {
		t.Fatalf("pgpoolx pins --json: exit status %d, stderr:\n%s", code, stderr)
	}
	var report struct {
		Starts int64 `json:"pgpoolx_starts"`
		Pins   int64 `json:"pins"`
		Open   int64 `json:"open"`
		Rows   []struct {
			Reason        string  `json:"reason"`
			Digest        string  `json:"digest"`
			Pins          int64   `json:"pins"`
			Open          int64   `json:"open"`
			PinnedSeconds float64 `json:"pinned_seconds"`
			Transactions  int64   `json:"transactions"`
		} `json:"rows"`
		Reasons map[string]struct{ Hint string } `json:"reasons"`
		Pools   []struct {
			DB              string `json:"db"`
			PeakClients     int64  `json:"peak_clients"`
			PeakServerConns int64  `json:"peak_server_conns"`
		} `json:"pools"`
		RDSProxy struct {
			Rows []struct {
				Reason string `json:"reason"`
				Digest string `json:"digest"`
			} `json:"rows"`
			InitQuery string `json:"init_query"`
		} `json:"rds_proxy"`
		Skipped map[string]int64 `json:"skipped"`
	}
	if err := json.Unmarshal([]byte(stdout), &report); err != nil {
		t.Fatalf("%v:\n%s", err, stdout)
	}
	if report.Starts != 2 || report.Pins != 5 || report.Open != 1 {
		t.Errorf("starts %d, pins %d, open %d; want 2, 5, 1", report.Starts, report.Pins, report.Open)
	}
	type row struct {
		reason, digest string
		pins, open     int64
	}
	var rows []row
	for _, r := range report.Rows {
		rows = append(rows, row{r.Reason, r.Digest, r.Pins, r.Open})
		if r.PinnedSeconds <= 0 {
			t.Errorf("%s %q pinned for %vs, want more than 0", r.Reason, r.Digest, r.PinnedSeconds)
		}
		if report.Reasons[r.Reason].Hint == "" {
			t.Errorf("no hint for %s", r.Reason)
		}
	}
	wantRows := map[row]bool{
		{"session_advisory_lock", "select pg_advisory_lock($1)", 3, 0}:    true,
		{"listen", "listen pins_report", 1, 0}:                            true,
		{"temp_table", "create temp table pins_report_tt (id int)", 1, 1}: true,
	}
	if len(rows) != len(wantRows) {
		t.Errorf("rows %+v, want %v", rows, wantRows)
	}
	for _, r := range rows {
		if !wantRows[r] {
			t.Errorf("unexpected row %+v; want %v", r, wantRows)
		}
	}
	if len(report.Pools) != 1 || report.Pools[0].DB != db || report.Pools[0].PeakClients != 3 || report.Pools[0].PeakServerConns < 1 {
		t.Errorf("pools %+v, want %s with a peak of 3 clients", report.Pools, db)
	}
	rds := map[string]bool{}
	for _, r := range report.RDSProxy.Rows {
		rds[r.Reason+" "+r.Digest] = true
	}
	for _, want := range []string{
		"session_advisory_lock select pg_advisory_lock($1)",
		"listen listen pins_report",
		"temp_object create temp table pins_report_tt (id int)",
		"session_setting set statement_timeout to $1",
		"session_setting set work_mem = $1",
		"session_setting set app.tenant = $1",
	} {
		if !rds[want] {
			t.Errorf("RDS Proxy rows lack %q: %v", want, rds)
		}
	}
	const wantInit = "SET statement_timeout TO 5000; SET work_mem TO '8MB'"
	if report.RDSProxy.InitQuery != wantInit {
		t.Errorf("init_query %q, want %q", report.RDSProxy.InitQuery, wantInit)
	}
	if n := report.Skipped["not_json"] + report.Skipped["undecodable"] + report.Skipped["too_long"]; n != 0 {
		t.Errorf("%d lines of pgpoolx's own log skipped: %v", n, report.Skipped)
	}

	// The report, for people.
	stdout, stderr, code = runCommand(t, bin, "pins", "--rds-proxy", logPath)
	if code != 0 || stderr != "" {
		t.Fatalf("pgpoolx pins: exit status %d, stderr:\n%s", code, stderr)
	}
	for _, want := range []string{
		"5 pins (1 still open) in ",
		"REASON  ", "DIGEST  ", "PINNED TIME",
		"select pg_advisory_lock($1)",
		"Hint: ",
		"  " + db + "/postgres: 3 clients on ",
		"Suggested RDS Proxy initialization query",
		"\n  " + wantInit + "\n",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("pgpoolx pins output lacks %q:\n%s", want, stdout)
		}
	}
	t.Logf("pgpoolx pins --rds-proxy:\n%s", stdout)
}

// loggingPgpoolx is the built pgpoolx, running with its log appended to a
// file.
type loggingPgpoolx struct {
	cmd    *exec.Cmd
	exited chan error
}

// startLogging starts bin with config cfg, its log appended to logPath,
// and returns once it logged that it listens.
func startLogging(t *testing.T, bin, cfg, logPath string) *loggingPgpoolx {
	t.Helper()
	before := 0
	if b, err := os.ReadFile(logPath); err == nil {
		before = strings.Count(string(b), `"msg":"listening"`)
	}
	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close() // the child has its own descriptor
	p := &loggingPgpoolx{cmd: exec.Command(bin, "-config", cfg), exited: make(chan error, 1)}
	p.cmd.Stderr = f
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			<-p.exited
		}
	})
	waitForLog(t, logPath, "pgpoolx to listen", func(log string) bool {
		select {
		case err := <-p.exited:
			p.exited <- err
			t.Fatalf("pgpoolx exited before listening: %v", err)
		default:
		}
		return strings.Count(log, `"msg":"listening"`) > before
	})
	return p
}

// kill ends pgpoolx at once, as a crash or an OOM kill would: it logs
// nothing more.
func (p *loggingPgpoolx) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.exited
}

// stop ends pgpoolx with SIGTERM and checks it exits cleanly.
func (p *loggingPgpoolx) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		if err != nil {
			t.Errorf("pgpoolx after SIGTERM: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("pgpoolx still running 20s after SIGTERM")
	}
}

// waitForLog waits until the log at path satisfies cond.
func waitForLog(t *testing.T, path, what string, cond func(log string) bool) {
	t.Helper()
	waitFor(t, what, 20*time.Second, func() bool {
		b, err := os.ReadFile(path)
		return err == nil && cond(string(b))
	})
}

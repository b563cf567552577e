package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// outcome is what one pgbench run against one target measured.
type outcome struct {
	// failure is why the run produced no numbers ("" when it did).
	failure string
	stalled bool

	tps       float64 // without initial connection time
	processed int64
	failed    int64 // failed transactions (serialization, deadlock)
	p50, p99  time.Duration
	// cpu is the pooler's user+system CPU time over the run; zero for
	// direct runs.
	cpu time.Duration
}

func (r outcome) ok() bool { return r.failure == "" }

// cpuPerTx is the pooler's CPU time per transaction in microseconds.
func (r outcome) cpuPerTx() float64 {
	if r.processed == 0 {
		return math.NaN()
	}
	return float64(r.cpu.Microseconds()) / float64(r.processed)
}

var (
	pgbenchProcessed = regexp.MustCompile(`(?m)^number of transactions actually processed: (\d+)`)
	pgbenchFailed    = regexp.MustCompile(`(?m)^number of failed transactions: (\d+)`)
	// With -C, connecting is part of every transaction, and pgbench says so.
	pgbenchTPS = regexp.MustCompile(`(?m)^tps = ([0-9.]+) \((?:without initial connection time|including reconnection times)\)$`)
	// pgbenchError is the first thing pgbench says went wrong, e.g.
	// `pgbench: error: client 0 script 0 aborted in command 1 query 0: ERROR:  prepared statement "P_1" does not exist`.
	pgbenchError = regexp.MustCompile(`(?m)^pgbench: (?:error|fatal): (.*)$`)
)

// parseSummary reads what pgbench prints at the end of a run.
func parseSummary(stdout string) (r outcome, err error) {
	tps := pgbenchTPS.FindStringSubmatch(stdout)
	processed := pgbenchProcessed.FindStringSubmatch(stdout)
	if tps == nil || processed == nil {
		return outcome{}, errors.New("no tps or transaction count in pgbench's output")
	}
	if r.tps, err = strconv.ParseFloat(tps[1], 64); err != nil {
		return outcome{}, fmt.Errorf("pgbench tps: %w", err)
	}
	if r.processed, err = strconv.ParseInt(processed[1], 10, 64); err != nil {
		return outcome{}, fmt.Errorf("pgbench transaction count: %w", err)
	}
	if m := pgbenchFailed.FindStringSubmatch(stdout); m != nil {
		r.failed, _ = strconv.ParseInt(m[1], 10, 64)
	}
	return r, nil
}

// failureReason makes one short line of pgbench's complaint, for a note.
func failureReason(stderr string, err error) string {
	if m := pgbenchError.FindStringSubmatch(stderr); m != nil {
		reason := m[1]
		// "client 0 script 0 aborted in command 1 query 0: ERROR: ..."
		// says which client; the error after it is what matters.
		if i := strings.Index(reason, ": "); i >= 0 && strings.HasPrefix(reason, "client ") {
			reason = reason[i+2:]
		}
		reason = strings.Join(strings.Fields(reason), " ")
		const maxLen = 120
		if len(reason) > maxLen {
			reason = reason[:maxLen] + "..."
		}
		return reason
	}
	return fmt.Sprintf("pgbench: %v", err)
}

// pgbenchRun is one pgbench invocation against one address.
type pgbenchRun struct {
	bin      string
	host     string
	port     int
	db       string
	cell     cell
	duration time.Duration
	// logDir receives pgbench's per-transaction logs; it must be empty.
	logDir string
	// slack is how long past -T the run may take (0: stallSlack).
	slack time.Duration
}

// stallSlack is how long past its own -T a pgbench run may take before the
// harness calls it stalled and kills it: connecting a thousand clients and
// writing their logs takes a few seconds, a stall takes forever.
const stallSlack = 60 * time.Second

func (p pgbenchRun) args() []string {
	args := []string{
		"-n", // the harness vacuums, the same way for every target
		"-h", p.host, "-p", strconv.Itoa(p.port), "-U", dbUser,
		"-b", p.cell.builtin, "-M", p.cell.mode,
		"-c", strconv.Itoa(p.cell.clients), "-j", strconv.Itoa(min(threads, p.cell.clients)),
		"-T", strconv.Itoa(int(p.duration.Seconds())),
		"--log", "--log-prefix=" + filepath.Join(p.logDir, "tx"),
	}
	if p.cell.reconnect {
		args = append(args, "-C")
	}
	return append(args, p.db)
}

// do runs pgbench and reads its summary and transaction logs. A pgbench
// that fails or stalls is a run with a failure, not an error; the error is
// for ctx ending (Ctrl-C).
func (p pgbenchRun) do(ctx context.Context) (outcome, error) {
	slack := cmp.Or(p.slack, stallSlack)
	rctx, cancel := context.WithTimeout(ctx, p.duration+slack)
	defer cancel()
	cmd := exec.CommandContext(rctx, p.bin, p.args()...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = clientEnv()
	// Ctrl-C reaches the harness only, which then kills pgbench, and
	// anything it started, by process group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	switch {
	case ctx.Err() != nil:
		return outcome{}, ctx.Err()
	case rctx.Err() != nil:
		return outcome{failure: fmt.Sprintf("stalled: no end %v past its -T", slack), stalled: true}, nil
	case err != nil:
		return outcome{failure: failureReason(stderr.String(), err)}, nil
	}
	r, err := parseSummary(stdout.String())
	if err != nil {
		return outcome{failure: err.Error()}, nil
	}
	lat, err := readLatencies(p.logDir)
	if err != nil {
		return outcome{failure: err.Error()}, nil
	}
	r.p50, r.p99 = percentile(lat, 0.50), percentile(lat, 0.99)
	return r, nil
}

// readLatencies reads the latency of every successful transaction from the
// per-transaction logs pgbench wrote into dir (one file per thread), whose
// lines are `client_id transaction_no time script_no time_epoch time_us`
// with time in microseconds, or "failed" or "skipped" instead.
func readLatencies(dir string) ([]time.Duration, error) {
	files, err := filepath.Glob(filepath.Join(dir, "tx.*"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("no pgbench transaction log in %s", dir)
	}
	var lat []time.Duration
	for _, name := range files {
		if lat, err = appendLatencies(lat, name); err != nil {
			return nil, err
		}
	}
	return lat, nil
}

func appendLatencies(lat []time.Duration, name string) ([]time.Duration, error) {
	f, err := os.Open(name)
	if err != nil {
		return lat, fmt.Errorf("pgbench transaction log: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := bytes.Fields(sc.Bytes())
		if len(fields) < 3 {
			continue
		}
		us, err := strconv.ParseInt(string(fields[2]), 10, 64)
		if err != nil {
			continue // failed or skipped
		}
		lat = append(lat, time.Duration(us)*time.Microsecond)
	}
	if err := sc.Err(); err != nil {
		return lat, fmt.Errorf("pgbench transaction log %s: %w", filepath.Base(name), err)
	}
	return lat, nil
}

// percentile is the nearest-rank percentile q (0 < q <= 1) of d, which it
// sorts; zero when d is empty.
func percentile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	i := int(math.Ceil(q*float64(len(d)))) - 1
	return d[max(0, min(i, len(d)-1))]
}

// clientEnv is our environment without libpq's PG* variables, which could
// point pgbench elsewhere or ask for TLS, and with TLS off so that every
// target is reached the same way.
func clientEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	return append(env, "PGSSLMODE=disable")
}

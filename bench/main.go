// Command bench measures pgpoolx against PgBouncer and against PostgreSQL
// alone with pgbench, and prints a markdown table of medians and ratios:
//
//	go run ./bench [-quick] [-out FILE] [-pgpoolx PATH] [-pgbouncer PATH]
//
// It starts a throwaway PostgreSQL (internal/pgcluster, fsync off), fills
// it with `pgbench -i`, starts PgBouncer and pgpoolx in front of it with the
// same settings (transaction mode, pool size 20), then runs every cell of
// the matrix against each target in turn, the whole matrix several times
// with the targets in rotating order. Each run records pgbench's tps,
// failed transactions, the p50 and p99 latency from its per-transaction
// logs, and the pooler's CPU time from /proc. A pgbench that fails or
// stalls is a "fails" or "stalled" in the table, never a hang. Everything
// it starts is stopped on exit, Ctrl-C included.
//
// -quick runs a small matrix in about two minutes, as a smoke check in CI.
// Without PgBouncer installed it compares pgpoolx with PostgreSQL alone.
// It exits 1 when it cannot set up, or when pgpoolx fails a cell that
// PostgreSQL alone passed; speed never fails it. Linux only (/proc).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/pgpoolx/pgpoolx/internal/pgcluster"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		stop()
		os.Exit(1)
	}
}

// pgSettings are the throwaway cluster's postgresql.conf additions, on top
// of pgcluster's own (fsync off, loopback only).
var pgSettings = map[string]string{
	"fsync":              "off",
	"synchronous_commit": "off",
	"full_page_writes":   "off",
	// Above the most clients a direct run has (256), plus both pools.
	"max_connections": "400",
	"shared_buffers":  "256MB",
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	flags := flag.NewFlagSet("bench", flag.ContinueOnError)
	flags.SetOutput(stderr)
	quick := flags.Bool("quick", false, "a small matrix in about two minutes (a smoke check, not a measurement)")
	out := flags.String("out", "", "also write the markdown report to this file")
	pgpoolxBin := flags.String("pgpoolx", "", "the pgpoolx binary to measure (default: go build ./cmd/pgpoolx into a temporary directory)")
	pgbouncerBin := flags.String("pgbouncer", "", "the PgBouncer binary (default: pgbouncer on PATH or in /usr/sbin)")
	reps := flags.Int("reps", 0, "repetitions of the matrix (default: 3, or 1 with -quick)")
	duration := flags.Duration("duration", 0, "length of each pgbench run (default: 10s, or 3s with -quick)")
	switch err := flags.Parse(args); {
	case errors.Is(err, flag.ErrHelp):
		return nil
	case err != nil:
		return err
	case flags.NArg() > 0:
		return fmt.Errorf("unexpected arguments %q", flags.Args())
	}
	set := fullSettings()
	if *quick {
		set = quickSettings()
	}
	if *reps > 0 {
		set.reps = *reps
	}
	if *duration > 0 {
		set.duration = max(*duration, time.Second).Truncate(time.Second)
	}
	progress := func(format string, a ...any) { fmt.Fprintf(stderr, "bench: "+format+"\n", a...) }
	start := time.Now()

	res := newResults(set)
	fdLimit := raiseFileLimit()
	for i, c := range set.cells {
		// Each process of a run holds a descriptor per client.
		if need := uint64(c.clients) + 200; fdLimit < need {
			for t := range numTargets {
				if set.cells[i].skip[t] == "" {
					set.cells[i].skip[t] = fmt.Sprintf("%d clients need more open files than the limit of %d", c.clients, fdLimit)
				}
			}
		}
	}

	pgbench, err := findPgbench()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "pgpoolx-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	// PgBouncer may run as another OS user; it reads only what it is given
	// before switching, but pgbench's logs and our configs live here too.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}

	pgxBin, pgxVersion := *pgpoolxBin, ""
	if pgxBin == "" {
		progress("building pgpoolx")
		if pgxBin, err = buildPgpoolx(ctx, tmp); err != nil {
			return err
		}
		pgxVersion = " built from " + version(ctx, "git", "describe", "--always", "--dirty")
	}
	if pgxBin, err = filepath.Abs(pgxBin); err != nil {
		return err
	}

	progress("starting PostgreSQL")
	cluster, err := pgcluster.Start(ctx, pgcluster.Options{Settings: pgSettings})
	if err != nil {
		return err
	}
	defer func() {
		if stopErr := cluster.Stop(); stopErr != nil {
			err = errors.Join(err, fmt.Errorf("stop PostgreSQL: %w", stopErr))
		}
	}()
	if err := cluster.CreateDatabase(ctx, dbName); err != nil {
		return err
	}
	progress("pgbench -i -s %d", set.scale)
	if err := initPgbench(ctx, pgbench, cluster.Host(), cluster.Port(), set.scale); err != nil {
		return err
	}

	var daemons [numTargets]*daemon
	defer func() {
		for _, d := range daemons {
			if d != nil {
				d.stop()
			}
		}
	}()
	progress("starting pgpoolx")
	if daemons[pgpoolx], err = startPgpoolx(ctx, pgxBin, tmp, cluster.Host(), cluster.Port()); err != nil {
		return err
	}
	pgbBin, err := findPgbouncer(*pgbouncerBin)
	if err == nil {
		progress("starting PgBouncer")
		daemons[pgbouncer], err = startPgbouncer(ctx, pgbBin, tmp, cluster.Host(), cluster.Port())
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// The comparison with PostgreSQL alone is still worth having.
		res.absent[pgbouncer] = err.Error()
		progress("no PgBouncer: %v", err)
	}

	res.header = []string{
		fmt.Sprintf("%s, %s/%s, %d CPUs.", time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.GOOS, runtime.GOARCH, runtime.NumCPU()),
		fmt.Sprintf("%s; %s; %s; pgpoolx %s%s.",
			postgresVersion(ctx),
			version(ctx, pgbench, "--version"),
			pgbouncerVersion(ctx, pgbBin, res.absent[pgbouncer]),
			strings.TrimPrefix(version(ctx, pgxBin, "-version"), "pgpoolx "), pgxVersion),
	}

	h := harness{pgbench: pgbench, cluster: cluster, tmp: tmp, set: set, res: res, daemons: daemons, progress: progress}
	runErr := h.matrix(ctx)
	if runErr != nil && ctx.Err() == nil {
		return runErr
	}
	res.interrupted = runErr != nil

	if err := res.writeMarkdown(stdout); err != nil {
		return err
	}
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			return err
		}
		if err := errors.Join(res.writeMarkdown(f), f.Close()); err != nil {
			return fmt.Errorf("write %s: %w", *out, err)
		}
	}
	if runErr != nil {
		return fmt.Errorf("interrupted after %v", time.Since(start).Round(time.Second))
	}
	progress("done in %v", time.Since(start).Round(time.Second))
	return res.pgpoolxRegressions()
}

// pgpoolxRegressions is an error naming the cells pgpoolx failed while
// PostgreSQL alone passed them: a bug, not a speed.
func (r *results) pgpoolxRegressions() error {
	var bad []string
	for ci, c := range r.set.cells {
		d, px := r.summarize(ci, direct), r.summarize(ci, pgpoolx)
		if px.status() == "" || px.skipped != "" || px.runs == 0 {
			continue
		}
		if d.status() == "" || d.skipped != "" {
			bad = append(bad, fmt.Sprintf("%s (%s)", c, px.failure))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("pgpoolx failed where PostgreSQL alone did not fail: %s", strings.Join(bad, "; "))
	}
	return nil
}

// harness runs the matrix.
type harness struct {
	pgbench  string
	cluster  *pgcluster.Cluster
	tmp      string
	set      settings
	res      *results
	daemons  [numTargets]*daemon // nil for direct and for an absent pooler
	progress func(format string, a ...any)
}

// matrix runs every repetition of every cell against every target,
// interleaved: the targets take turns within a cell, and every cell runs
// once before any runs again. It returns only ctx's error.
func (h *harness) matrix(ctx context.Context) error {
	total, n := 0, 0
	for _, c := range h.set.cells {
		for t := range numTargets {
			if c.skip[t] == "" && h.res.absent[t] == "" {
				total++
			}
		}
	}
	total *= h.set.reps
	for rep := range h.set.reps {
		for ci, c := range h.set.cells {
			for _, t := range order(rep) {
				if c.skip[t] != "" || h.res.absent[t] != "" {
					continue
				}
				n++
				r, err := h.one(ctx, c, t)
				if err != nil {
					return err
				}
				h.res.runs[ci][t] = append(h.res.runs[ci][t], r)
				h.progress("[%d/%d] %s, %s: %s", n, total, c, t, r)
			}
		}
	}
	return nil
}

func (r outcome) String() string {
	if !r.ok() {
		return r.failure
	}
	s := fmt.Sprintf("%.0f tps, p50 %.2f ms, p99 %.2f ms", r.tps, ms(r.p50), ms(r.p99))
	if r.cpu > 0 {
		s += fmt.Sprintf(", %.1f µs CPU/tx", r.cpuPerTx())
	}
	return s
}

// one runs pgbench once for cell c against target t.
func (h *harness) one(ctx context.Context, c cell, t target) (outcome, error) {
	if c.builtin == "tpcb-like" {
		// What pgbench does before a run unless -n, the same for every
		// target, on a direct connection: TPC-B's tables do not grow
		// from run to run.
		for _, sql := range []string{"TRUNCATE pgbench_history", "VACUUM pgbench_branches", "VACUUM pgbench_tellers"} {
			if err := h.cluster.Exec(ctx, dbName, sql); err != nil {
				if ctx.Err() != nil {
					return outcome{}, ctx.Err()
				}
				return outcome{failure: "before the run: " + err.Error()}, nil
			}
		}
	}
	logDir, err := os.MkdirTemp(h.tmp, "run-")
	if err != nil {
		return outcome{}, err
	}
	defer os.RemoveAll(logDir)

	p := pgbenchRun{bin: h.pgbench, db: dbName, cell: c, duration: h.set.duration, logDir: logDir,
		host: h.cluster.Host(), port: h.cluster.Port()}
	d := h.daemons[t]
	if d != nil {
		if !d.alive() {
			return outcome{failure: fmt.Sprintf("%s is no longer running; its log:\n%s", d.name, d.logTail(10))}, nil
		}
		p.host, p.port = splitAddr(d.addr)
	}
	var before time.Duration
	if d != nil {
		if before, err = d.cpu(); err != nil {
			return outcome{failure: err.Error()}, nil
		}
	}
	r, err := p.do(ctx)
	if err != nil || d == nil || !r.ok() {
		return r, err
	}
	after, err := d.cpu()
	if err != nil {
		return outcome{failure: err.Error()}, nil
	}
	r.cpu = after - before
	return r, nil
}

// buildPgpoolx builds ./cmd/pgpoolx of this module into dir.
func buildPgpoolx(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "pgpoolx")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/pgpoolx/pgpoolx/cmd/pgpoolx")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build pgpoolx (run from inside the module, or pass -pgpoolx): %w\n%s", err, out)
	}
	return bin, nil
}

// findPgbench prefers the pgbench next to the server binaries (same
// version, no wrapper script), then PATH.
func findPgbench() (string, error) {
	if dir, err := pgcluster.BinDir(); err == nil {
		p := filepath.Join(dir, "pgbench")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath("pgbench")
	if err != nil {
		return "", fmt.Errorf("pgbench not found (Debian: apt-get install postgresql-contrib): %w", err)
	}
	return p, nil
}

func initPgbench(ctx context.Context, pgbench, host string, port, scale int) error {
	cmd := exec.CommandContext(ctx, pgbench, "-i", "-q", "-s", fmt.Sprint(scale),
		"-h", host, "-p", fmt.Sprint(port), "-U", dbUser, dbName)
	cmd.Env = clientEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pgbench -i: %w\n%s", err, out)
	}
	return nil
}

func postgresVersion(ctx context.Context) string {
	dir, err := pgcluster.BinDir()
	if err != nil {
		return "unknown"
	}
	return version(ctx, filepath.Join(dir, "postgres"), "--version")
}

func pgbouncerVersion(ctx context.Context, bin, absent string) string {
	if absent != "" || bin == "" {
		return "no PgBouncer"
	}
	return version(ctx, bin, "--version")
}

// raiseFileLimit raises the soft limit on open files to the hard one, for
// us and the processes we start, and returns it.
func raiseFileLimit() uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 1024
	}
	// The Go runtime has raised our own soft limit already, but os/exec
	// gives children the limit we started with unless we set it ourselves.
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	return lim.Cur
}

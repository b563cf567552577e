package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// results are every run of a harness invocation, by cell and target, in
// the order they ran.
type results struct {
	set  settings
	runs [][numTargets][]outcome
	// absent says why a target ran nothing at all (PgBouncer not found).
	absent [numTargets]string
	// header lines describe the machine and the versions.
	header []string
	// interrupted: Ctrl-C came before the matrix was done.
	interrupted bool
}

func newResults(set settings) *results {
	return &results{set: set, runs: make([][numTargets][]outcome, len(set.cells))}
}

// summary is the medians of one cell's runs against one target.
type summary struct {
	runs, ok         int
	stalled          bool
	failure          string // the first failed run's reason
	tps, p50, p99    float64
	cpuPerTx, failed float64
	minTPS, maxTPS   float64 // over the runs that did not fail
	skipped          string  // why it was not run
}

// noisySpread is the ratio of a target's best run to its worst above
// which the report says the runs disagree: a median of such runs says
// less than its digits suggest (one client on a small VM swings 2x).
const noisySpread = 1.25

func (r *results) summarize(ci int, t target) summary {
	c := r.set.cells[ci]
	s := summary{skipped: c.skip[t]}
	if r.absent[t] != "" {
		s.skipped = r.absent[t]
	}
	var tps, p50, p99, cpu, failed []float64
	for _, x := range r.runs[ci][t] {
		s.runs++
		if !x.ok() {
			s.stalled = s.stalled || x.stalled
			if s.failure == "" {
				s.failure = x.failure
			}
			continue
		}
		s.ok++
		tps = append(tps, x.tps)
		p50 = append(p50, ms(x.p50))
		p99 = append(p99, ms(x.p99))
		cpu = append(cpu, x.cpuPerTx())
		failed = append(failed, float64(x.failed))
	}
	if len(tps) > 0 {
		s.minTPS, s.maxTPS = slices.Min(tps), slices.Max(tps)
	}
	s.tps, s.p50, s.p99 = median(tps), median(p50), median(p99)
	s.cpuPerTx, s.failed = median(cpu), median(failed)
	return s
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// median of xs (NaN for none); xs is sorted in place.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

// status is what a table cell shows instead of numbers, or "".
func (s summary) status() string {
	switch {
	case s.skipped != "":
		return "not run"
	case s.runs == 0:
		return "not run"
	case s.ok > 0:
		return ""
	case s.stalled:
		return "stalled"
	default:
		return "fails"
	}
}

// mark flags numbers that come from only some of the runs.
func (s summary) mark() string {
	if s.ok > 0 && s.ok < s.runs {
		return "*"
	}
	return ""
}

func (s summary) tpsText() string {
	if st := s.status(); st != "" {
		return st
	}
	return fmt.Sprintf("%.0f%s", s.tps, s.mark())
}

func (s summary) latencyText() string {
	if st := s.status(); st != "" {
		return st
	}
	return fmt.Sprintf("%.2f / %.2f%s", s.p50, s.p99, s.mark())
}

func (s summary) cpuText() string {
	if st := s.status(); st != "" {
		return st
	}
	return fmt.Sprintf("%.1f%s", s.cpuPerTx, s.mark())
}

// ratio is a/b of two summaries' values, or "–" when either has none.
func ratio(a, b summary, value func(summary) float64) string {
	if a.status() != "" || b.status() != "" {
		return "–"
	}
	x, y := value(a), value(b)
	if math.IsNaN(x) || math.IsNaN(y) || y == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", x/y)
}

func tpsOf(s summary) float64 { return s.tps }
func cpuOf(s summary) float64 { return s.cpuPerTx }

// writeMarkdown writes the report: what ran where, the table of medians,
// and notes on whatever did not run or failed.
func (r *results) writeMarkdown(w io.Writer) error {
	var b strings.Builder
	b.WriteString("# pgpoolx benchmark\n\n")
	for _, h := range r.header {
		b.WriteString(h + "\n")
	}
	fmt.Fprintf(&b, "\npgbench scale %d, `-j %d`, %v runs, %d repetition(s) of the matrix with the targets in rotating order, medians. "+
		"Both poolers: transaction mode, pool size %d, on loopback; PostgreSQL with `fsync=off`.\n\n",
		r.set.scale, threads, r.set.duration, r.set.reps, poolSize)
	if r.interrupted {
		b.WriteString("**Interrupted**: the matrix did not finish; these are the runs done so far.\n\n")
	}

	b.WriteString("| workload | clients | tps direct | tps PgBouncer | tps pgpoolx | pgpoolx / PgBouncer | pgpoolx / direct " +
		"| p50 / p99 ms direct | p50 / p99 ms PgBouncer | p50 / p99 ms pgpoolx " +
		"| CPU µs/tx PgBouncer | CPU µs/tx pgpoolx | CPU pgpoolx / PgBouncer |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	var notes []string
	for ci, c := range r.set.cells {
		var s [numTargets]summary
		for t := range numTargets {
			s[t] = r.summarize(ci, t)
			notes = append(notes, s[t].notes(c, t)...)
		}
		d, pb, px := s[direct], s[pgbouncer], s[pgpoolx]
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			c.workload(), c.clients,
			d.tpsText(), pb.tpsText(), px.tpsText(),
			ratio(px, pb, tpsOf), ratio(px, d, tpsOf),
			d.latencyText(), pb.latencyText(), px.latencyText(),
			pb.cpuText(), px.cpuText(), ratio(px, pb, cpuOf))
	}

	b.WriteString("\nNotes:\n\n")
	for t, reason := range r.absent {
		if reason != "" {
			fmt.Fprintf(&b, "- %s did not run: %s\n", target(t), reason)
		}
	}
	notes = append(notes, r.scaleNotes()...)
	for _, n := range dedupe(notes) {
		b.WriteString("- " + n + "\n")
	}
	b.WriteString("- " + trapNote + "\n")
	b.WriteString("- `*`: the median of the runs that did not fail; the others are in the notes above.\n")
	b.WriteString("- tps excludes connection time (pgbench's own figure), except with `-C`, where every transaction connects anew; p50 / p99 are the latencies of every " +
		"transaction in pgbench's `--log`; CPU µs/tx is the pooler process's user + system time from " +
		"`/proc/PID/stat` over the run (client connections included) divided by the transactions pgbench " +
		"reports. pgbench, PostgreSQL and the pooler share the machine's CPUs.\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// scaleNotes compare each cell of many clients with the same workload at
// 64 clients: how much of its throughput each pooler keeps as the crowd
// waiting for the pool grows.
func (r *results) scaleNotes() []string {
	var notes []string
	for ci, c := range r.set.cells {
		if c.clients < manyClients {
			continue
		}
		base := slices.IndexFunc(r.set.cells, func(b cell) bool {
			return b.builtin == c.builtin && b.mode == c.mode && b.reconnect == c.reconnect && b.clients == 64
		})
		if base < 0 {
			continue
		}
		keep := func(t target) string { return ratio(r.summarize(ci, t), r.summarize(base, t), tpsOf) }
		notes = append(notes, fmt.Sprintf("%s with %d clients: tps is %s of the same workload's at 64 clients "+
			"through pgpoolx, %s through PgBouncer.", c.workload(), c.clients, keep(pgpoolx), keep(pgbouncer)))
	}
	return notes
}

// notes says why a target's cell shows no numbers, or only some.
func (s summary) notes(c cell, t target) []string {
	switch {
	case s.skipped != "":
		if s.skipped == c.skip[t] {
			return []string{s.skipped + "."}
		}
		return nil // absent: said once, not per cell
	case s.runs == 0:
		return nil
	}
	var notes []string
	if s.ok < s.runs {
		notes = append(notes, fmt.Sprintf("%s, %s: %s in %d of %d runs: %s",
			t, c, map[bool]string{true: "stalled", false: "failed"}[s.stalled], s.runs-s.ok, s.runs, s.failure))
	}
	if s.ok > 1 && s.minTPS > 0 && s.maxTPS/s.minTPS > noisySpread {
		notes = append(notes, fmt.Sprintf("%s, %s: runs disagree, tps from %.0f to %.0f", t, c, s.minTPS, s.maxTPS))
	}
	if s.ok > 0 && s.failed > 0 {
		notes = append(notes, fmt.Sprintf("%s, %s: %.0f failed transactions (median)", t, c, s.failed))
	}
	return notes
}

func dedupe(xs []string) []string {
	var out []string
	for _, x := range xs {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

package integration

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/pgpoolx/pgpoolx/metrics"
)

// scrape reads /metrics from base, an httptest server of metrics.Handler.
func scrape(t testing.TB, base string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return mfs
}

// metricSum adds up the series of family name whose labels include
// labels: the values of counters and gauges, the sample counts of
// histograms (name_count then names the family name). A family or series
// not there yet counts 0.
func metricSum(mfs map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	family, histCount := name, false
	if base, ok := strings.CutSuffix(name, "_count"); ok && mfs[name] == nil {
		family, histCount = base, true
	}
	var sum float64
series:
	for _, m := range mfs[family].GetMetric() {
		for k, v := range labels {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == k {
					found = lp.GetValue() == v
					break
				}
			}
			if !found {
				continue series
			}
		}
		switch {
		case histCount:
			sum += float64(m.GetHistogram().GetSampleCount())
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Histogram != nil:
			sum += m.GetHistogram().GetSampleSum()
		}
	}
	return sum
}

// poolCounters are the counters TestMetricsDuringPgbench follows. Each is
// read for the test's database, summed over its other labels; for the
// acquire wait histogram its count and (under the family name) its sum.
var poolCounters = []string{
	"pgpoolx_transactions_total",
	"pgpoolx_queries_total",
	"pgpoolx_transaction_seconds_total",
	"pgpoolx_query_seconds_total",
	"pgpoolx_client_received_bytes_total",
	"pgpoolx_client_sent_bytes_total",
	"pgpoolx_pins_total",
	"pgpoolx_errors_total",
	"pgpoolx_acquire_wait_seconds_count",
	"pgpoolx_acquire_wait_seconds",
}

// pinScript is a pgbench script whose every transaction pins its session
// (a session advisory lock) and unpins it: two statements, each an
// implicit transaction of its own.
const pinScript = `\set k random(1, 1000000)
SELECT pg_advisory_lock(:k);
SELECT pg_advisory_unlock(:k);
`

// TestMetricsDuringPgbench scrapes /metrics while pgbench runs through
// the pooler, first its select-only script, then a script that pins every
// transaction. Counters never go back; afterwards their increase matches
// what pgbench reports it ran and what the pooler logged.
func TestMetricsDuringPgbench(t *testing.T) {
	pgbench := clientBinary(t, "pgbench")
	const (
		poolSize = 4
		clients  = 4
	)
	p := startPooler(t, "", fmt.Sprintf("pool_size: %d", poolSize))
	web := httptest.NewServer(metrics.Handler(p.srv))
	t.Cleanup(web.Close)
	labels := map[string]string{"database": p.db, "user": "postgres"}

	// Initialise straight against PostgreSQL: only the runs go through
	// the pooler.
	direct := libpqEnv(t, net.JoinHostPort(p.cluster.Host(), strconv.Itoa(p.cluster.Port())), p.db)
	if out, err := runWithEnv(t, pgbench, direct, "-i", "-s", "1", "-q"); err != nil {
		t.Fatalf("pgbench -i: %v\n%s", err, out)
	}
	script := writeFile(t, "pin.sql", pinScript)

	read := func(mfs map[string]*dto.MetricFamily) map[string]float64 {
		v := map[string]float64{}
		for _, name := range poolCounters {
			v[name] = metricSum(mfs, name, labels)
		}
		return v
	}
	scrapes := 0
	last := read(scrape(t, web.URL))
	// run runs pgbench through the pooler, scraping every 20ms until it
	// exits, and returns the transactions pgbench reports and the
	// counters' increase over the run.
	run := func(name string, args ...string) (processed int, delta map[string]float64) {
		t.Helper()
		start := last
		cmd := exec.CommandContext(t.Context(), pgbench, append([]string{"-n", "-M", "simple",
			"-c", strconv.Itoa(clients), "-j", "2"}, args...)...)
		cmd.Env = libpqEnv(t, p.addr, p.db)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		during := 0
		for done := false; !done; {
			var err error
			select {
			case err = <-exited:
				done = true
			case <-tick.C:
			}
			if err != nil {
				t.Fatalf("pgbench %s: %v\nstdout:\n%s\nstderr:\n%s", name, err, &stdout, tailLines(stderr.String(), 40))
			}
			mfs := scrape(t, web.URL)
			scrapes++
			if !done {
				during++
			}
			now := read(mfs)
			for _, c := range poolCounters {
				if now[c] < last[c] {
					t.Errorf("%s: %s went down from %v to %v", name, c, last[c], now[c])
				}
			}
			last = now
			var servers float64
			for _, state := range []string{"active", "idle", "login"} {
				servers += metricSum(mfs, "pgpoolx_server_connections", map[string]string{"database": p.db, "state": state})
			}
			if servers > poolSize {
				t.Errorf("%s: %v server connections, pool_size is %d", name, servers, poolSize)
			}
		}
		out := stdout.String()
		m := pgbenchProcessed.FindStringSubmatch(out)
		failed := pgbenchFailed.FindStringSubmatch(out)
		if m == nil || failed == nil {
			t.Fatalf("pgbench %s: unexpected output:\n%s", name, out)
		}
		if failed[1] != "0" {
			t.Errorf("pgbench %s: %s failed transactions", name, failed[1])
		}
		processed, _ = strconv.Atoi(m[1])
		delta = map[string]float64{}
		for _, c := range poolCounters {
			delta[c] = last[c] - start[c]
		}
		t.Logf("pgbench %s: %d transactions; %d scrapes during the run; counters rose by %v", name, processed, during, delta)
		return processed, delta
	}

	t.Run("select-only", func(t *testing.T) {
		processed, d := run("select-only", "-S", "-t", "500")
		if processed != clients*500 {
			t.Fatalf("pgbench processed %d transactions, want %d", processed, clients*500)
		}
		// Each pgbench transaction is one statement, so one transaction
		// for the pooler. With its builtin script, pgbench also asks its
		// first connection for the scale and the partitioning of
		// pgbench_accounts before the run: a few more, here bounded by 5.
		if x := d["pgpoolx_transactions_total"]; x < float64(processed) || x > float64(processed)+5 {
			t.Errorf("transactions_total rose by %v, want %d to %d", x, processed, processed+5)
		}
		// A simple query of one statement completes one statement and one
		// transaction; each transaction first waited for a server
		// connection (with nothing to wait for, the histogram still counts
		// it), and each client's login may have too.
		if d["pgpoolx_queries_total"] != d["pgpoolx_transactions_total"] {
			t.Errorf("queries_total rose by %v, transactions_total by %v; want the same", d["pgpoolx_queries_total"], d["pgpoolx_transactions_total"])
		}
		if w, x := d["pgpoolx_acquire_wait_seconds_count"], d["pgpoolx_transactions_total"]; w < x || w > x+clients+1 {
			t.Errorf("acquire_wait_seconds count rose by %v, want %v to %v (a wait a transaction, and one a login)", w, x, x+clients+1)
		}
		// Every query is at least its text from the client, and at least a
		// ReadyForQuery (6 bytes) goes back.
		minQuery := len("Q\x00\x00\x00\x00SELECT abalance FROM pgbench_accounts WHERE aid = 1;\x00")
		if got := d["pgpoolx_client_received_bytes_total"]; got < float64(processed*minQuery) {
			t.Errorf("client_received_bytes_total rose by %v, want at least %d", got, processed*minQuery)
		}
		if got := d["pgpoolx_client_sent_bytes_total"]; got < float64(processed*6) {
			t.Errorf("client_sent_bytes_total rose by %v, want at least %d", got, processed*6)
		}
		if d["pgpoolx_pins_total"] != 0 || d["pgpoolx_errors_total"] != 0 {
			t.Errorf("pins_total rose by %v and errors_total by %v, want 0", d["pgpoolx_pins_total"], d["pgpoolx_errors_total"])
		}
		if d["pgpoolx_transaction_seconds_total"] <= 0 || d["pgpoolx_query_seconds_total"] <= 0 || d["pgpoolx_acquire_wait_seconds"] < 0 {
			t.Errorf("time counters: %v", d)
		}
	})

	t.Run("pin each transaction", func(t *testing.T) {
		pinLogs := p.logCount("session pinned")
		processed, d := run("pin", "-f", script, "-t", "100")
		if processed != clients*100 {
			t.Fatalf("pgbench processed %d transactions, want %d", processed, clients*100)
		}
		// Two statements a pgbench transaction, each an implicit
		// transaction; a custom script has pgbench ask nothing else.
		if x := d["pgpoolx_transactions_total"]; x != float64(2*processed) {
			t.Errorf("transactions_total rose by %v, want %d", x, 2*processed)
		}
		if d["pgpoolx_queries_total"] != d["pgpoolx_transactions_total"] {
			t.Errorf("queries_total rose by %v, transactions_total by %v; want the same", d["pgpoolx_queries_total"], d["pgpoolx_transactions_total"])
		}
		pinned := p.logCount("session pinned") - pinLogs
		if d["pgpoolx_pins_total"] != float64(pinned) {
			t.Errorf("pins_total rose by %v, and %d \"session pinned\" lines were logged", d["pgpoolx_pins_total"], pinned)
		}
		// The lock pins the session and the unlock frees it, so every
		// transaction pins once.
		if pinned != processed {
			t.Errorf("%d \"session pinned\" lines for %d transactions that each took and released a lock", pinned, processed)
		}
		// The lock takes a server connection, the unlock runs on it while
		// pinned: one wait a pgbench transaction (and maybe one a login).
		if w := d["pgpoolx_acquire_wait_seconds_count"]; w < float64(processed) || w > float64(processed+clients+1) {
			t.Errorf("acquire_wait_seconds count rose by %v, want %d to %d", w, processed, processed+clients+1)
		}
		if d["pgpoolx_errors_total"] != 0 {
			t.Errorf("errors_total rose by %v, want 0", d["pgpoolx_errors_total"])
		}
	})

	mfs := scrape(t, web.URL)
	if got := metricSum(mfs, "pgpoolx_pins_total", map[string]string{"database": p.db, "reason": "session_advisory_lock"}); got != float64(p.logCount("session pinned")) {
		t.Errorf("pins_total{reason=session_advisory_lock} = %v, and %d \"session pinned\" lines were logged in all", got, p.logCount("session pinned"))
	}
	if got := metricSum(mfs, "pgpoolx_info", map[string]string{"version": "test"}); got != 1 {
		t.Errorf("pgpoolx_info{version=\"test\"} = %v, want 1", got)
	}
	// pgbench has gone: once the pooler has seen its clients leave, the
	// gauges fall back to nothing.
	waitFor(t, "no clients and no pinned sessions in /metrics", 10*time.Second, func() bool {
		mfs := scrape(t, web.URL)
		return metricSum(mfs, "pgpoolx_client_connections", labels) == 0 && metricSum(mfs, "pgpoolx_pinned_sessions", labels) == 0
	})
	t.Logf("%d scrapes in all", scrapes)
}

// httpGet returns the status and body of GET url.
func httpGet(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// TestMetricsHealthAndReadiness: /healthz says the process is alive,
// /readyz whether every configured database can be reached, and names
// the one that cannot.
func TestMetricsHealthAndReadiness(t *testing.T) {
	p := startPooler(t, "", "")
	web := httptest.NewServer(metrics.Handler(p.srv))
	t.Cleanup(web.Close)

	assert := func(when, path string, wantCode int, want ...string) {
		t.Helper()
		code, body := httpGet(t, web.URL+path)
		if code != wantCode {
			t.Errorf("%s: GET %s: %d %q, want %d", when, path, code, body, wantCode)
		}
		for _, w := range want {
			if !strings.Contains(body, w) {
				t.Errorf("%s: GET %s: body %q does not contain %q", when, path, body, w)
			}
		}
	}
	assert("PostgreSQL up", "/healthz", http.StatusOK, "ok")
	assert("PostgreSQL up", "/readyz", http.StatusOK, "ok")

	// A second database whose port refuses connections.
	_, port, err := net.SplitHostPort(freeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	closedPort, _ := strconv.Atoi(port)
	writeConfig(t, p, "", dbEntry{name: p.db}, dbEntry{name: "offline", port: closedPort})
	reload(t, p)
	assert("a database unreachable", "/healthz", http.StatusOK, "ok")
	assert("a database unreachable", "/readyz", http.StatusServiceUnavailable, `database "offline"`, "refused")
	if _, body := httpGet(t, web.URL+"/readyz"); strings.Contains(body, p.db) {
		t.Errorf("/readyz names the reachable database %s: %q", p.db, body)
	}

	writeConfig(t, p, "", dbEntry{name: p.db})
	reload(t, p)
	assert("the unreachable database removed", "/readyz", http.StatusOK, "ok")
}

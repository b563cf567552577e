// Package metrics serves pgpoolx's HTTP endpoints: /metrics in the
// Prometheus text format, /healthz (the process is alive) and /readyz (it
// can reach every configured database). Values are read from the pooler
// at scrape time; nothing here is on the path of a query.
package metrics

import (
	"context"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pgpoolx/pgpoolx/stats"
)

// Source is the pooler as the endpoints see it.
type Source interface {
	Pools() []stats.Pool
	Version() string
	// Ready returns nil when every configured database can be reached.
	Ready(ctx context.Context) error
}

// Handler returns the HTTP handler of the admin endpoint.
func Handler(src Source) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&collector{src: src},
	)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	// Profiles, for finding where time and memory go under load.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := src.Ready(ctx); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("not ready: " + err.Error() + "\n"))
			return
		}
		w.Write([]byte("ok\n"))
	})
	return mux
}

var (
	poolLabels = []string{"database", "user"}

	descClients = prometheus.NewDesc("pgpoolx_client_connections",
		"Client connections by state: active (holding a server connection), waiting (for one), idle.",
		append(poolLabels, "state"), nil)
	descServers = prometheus.NewDesc("pgpoolx_server_connections",
		"Server connections by state: active (lent to a client), idle, login (being opened).",
		append(poolLabels, "state"), nil)
	descPinned = prometheus.NewDesc("pgpoolx_pinned_sessions",
		"Client sessions pinned to a server connection now.", poolLabels, nil)
	descParked = prometheus.NewDesc("pgpoolx_parked_clients",
		"Idle clients whose read and write buffers went back to a pool.", poolLabels, nil)
	descWait = prometheus.NewDesc("pgpoolx_acquire_wait_seconds",
		"How long clients waited for a server connection.", poolLabels, nil)
	descXacts = prometheus.NewDesc("pgpoolx_transactions_total",
		"Transactions (and implicit single-statement transactions) completed.", poolLabels, nil)
	descQueries = prometheus.NewDesc("pgpoolx_queries_total",
		"Statements completed (CommandComplete, EmptyQueryResponse or ErrorResponse).", poolLabels, nil)
	descXactTime = prometheus.NewDesc("pgpoolx_transaction_seconds_total",
		"Time spent in transactions.", poolLabels, nil)
	descQueryTime = prometheus.NewDesc("pgpoolx_query_seconds_total",
		"Time from a client's request to its ReadyForQuery.", poolLabels, nil)
	descReceived = prometheus.NewDesc("pgpoolx_client_received_bytes_total",
		"Bytes received from clients.", poolLabels, nil)
	descSent = prometheus.NewDesc("pgpoolx_client_sent_bytes_total",
		"Bytes sent to clients.", poolLabels, nil)
	descPins = prometheus.NewDesc("pgpoolx_pins_total",
		"Sessions pinned, by reason.", append(poolLabels, "reason"), nil)
	descErrors = prometheus.NewDesc("pgpoolx_errors_total",
		"Errors sent to clients, by SQLSTATE class (the code's first two characters).", append(poolLabels, "class"), nil)
	descPrepared = prometheus.NewDesc("pgpoolx_prepared_statements",
		"Statements prepared on the pool's server connections.", poolLabels, nil)
	descInitFailures = prometheus.NewDesc("pgpoolx_init_query_failures_total",
		"New server connections whose init query failed.", poolLabels, nil)
	descPaused = prometheus.NewDesc("pgpoolx_pool_paused",
		"1 while the pool is paused (PAUSE or KILL).", poolLabels, nil)
	descInfo = prometheus.NewDesc("pgpoolx_info", "pgpoolx's version.", []string{"version"}, nil)
)

// collector turns a snapshot of the pools into metrics at each scrape.
type collector struct{ src Source }

func (c *collector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(descInfo, prometheus.GaugeValue, 1, c.src.Version())
	for _, p := range c.src.Pools() {
		l := []string{p.Database, p.User}
		gauge := func(d *prometheus.Desc, v float64, extra ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append(l, extra...)...)
		}
		counter := func(d *prometheus.Desc, v float64, extra ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, append(l, extra...)...)
		}
		gauge(descClients, float64(p.ClientsActive), "active")
		gauge(descClients, float64(p.ClientsWaiting), "waiting")
		gauge(descClients, float64(p.ClientsIdle), "idle")
		gauge(descServers, float64(p.ServersActive), "active")
		gauge(descServers, float64(p.ServersIdle), "idle")
		gauge(descServers, float64(p.ServersLogin), "login")
		gauge(descPinned, float64(p.ClientsPinned))
		gauge(descParked, float64(p.ClientsParked))
		gauge(descPrepared, float64(p.PreparedStatements))
		paused := 0.0
		if p.Paused {
			paused = 1
		}
		gauge(descPaused, paused)

		t := p.Totals
		counter(descXacts, float64(t.Xacts))
		counter(descQueries, float64(t.Queries))
		counter(descXactTime, t.XactTime.Seconds())
		counter(descQueryTime, t.QueryTime.Seconds())
		counter(descReceived, float64(t.BytesIn))
		counter(descSent, float64(t.BytesOut))
		counter(descInitFailures, float64(p.InitQueryFailures))
		for reason, n := range t.Pins {
			counter(descPins, float64(n), reason)
		}
		for class, n := range t.Errors {
			counter(descErrors, float64(n), class)
		}
		ch <- waitHistogram(t, l)
	}
}

// waitHistogram makes the acquire wait histogram of a pool. The sum is
// the total wait time, whose microsecond precision is plenty here.
func waitHistogram(t stats.Totals, labels []string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(stats.WaitBuckets))
	var cum uint64
	for i, le := range stats.WaitBuckets {
		if i < len(t.Waits) {
			cum += t.Waits[i]
		}
		buckets[le] = cum
	}
	return prometheus.MustNewConstHistogram(descWait, t.WaitCount(), t.WaitTime.Seconds(), buckets, labels...)
}

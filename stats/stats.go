// Package stats holds what pgpoolx counts and reports: the counters each
// pool's clients add to, and the snapshot types the admin console and the
// Prometheus endpoint both read. It does no I/O.
package stats

import (
	"maps"
	"sync"
	"sync/atomic"
	"time"
)

// WaitBuckets are the upper bounds, in seconds, of the acquire wait
// histogram: how long a client waited for a server connection.
var WaitBuckets = [...]float64{0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30}

// Counters are one pool's traffic counters. Clients add to them at
// transaction boundaries, not per message, so they cost the hot path a
// few atomic adds per transaction.
type Counters struct {
	Xacts, Queries    atomic.Uint64
	BytesIn, BytesOut atomic.Uint64 // from clients, to clients
	XactMicros        atomic.Uint64 // time clients held a server connection
	QueryMicros       atomic.Uint64 // time from a request to its ReadyForQuery
	WaitMicros        atomic.Uint64 // time clients waited for a server connection
	waits             [len(WaitBuckets) + 1]atomic.Uint64

	mu     sync.Mutex
	pins   map[string]uint64 // by reason
	errors map[string]uint64 // by SQLSTATE class
}

// Waited records one wait for a server connection.
func (c *Counters) Waited(d time.Duration) {
	c.WaitMicros.Add(uint64(d.Microseconds()))
	s := d.Seconds()
	i := 0
	for i < len(WaitBuckets) && s > WaitBuckets[i] {
		i++
	}
	c.waits[i].Add(1)
}

// Pinned counts a session pinned for reason.
func (c *Counters) Pinned(reason string) {
	c.mu.Lock()
	if c.pins == nil {
		c.pins = map[string]uint64{}
	}
	c.pins[reason]++
	c.mu.Unlock()
}

// Error counts an ErrorResponse sent to a client, by the class (first two
// characters) of its SQLSTATE.
func (c *Counters) Error(sqlstate string) {
	class := "??"
	if len(sqlstate) >= 2 {
		class = sqlstate[:2]
	}
	c.mu.Lock()
	if c.errors == nil {
		c.errors = map[string]uint64{}
	}
	c.errors[class]++
	c.mu.Unlock()
}

// Totals is a snapshot of Counters.
type Totals struct {
	Xacts, Queries      uint64
	BytesIn, BytesOut   uint64
	XactTime, QueryTime time.Duration
	WaitTime            time.Duration
	// Waits counts the waits per bucket of WaitBuckets (not cumulative);
	// the last element counts those longer than every bucket.
	Waits  []uint64
	Pins   map[string]uint64
	Errors map[string]uint64
}

// Snapshot reads the counters.
func (c *Counters) Snapshot() Totals {
	t := Totals{
		Xacts:     c.Xacts.Load(),
		Queries:   c.Queries.Load(),
		BytesIn:   c.BytesIn.Load(),
		BytesOut:  c.BytesOut.Load(),
		XactTime:  time.Duration(c.XactMicros.Load()) * time.Microsecond,
		QueryTime: time.Duration(c.QueryMicros.Load()) * time.Microsecond,
		WaitTime:  time.Duration(c.WaitMicros.Load()) * time.Microsecond,
		Waits:     make([]uint64, len(c.waits)),
	}
	for i := range c.waits {
		t.Waits[i] = c.waits[i].Load()
	}
	c.mu.Lock()
	t.Pins, t.Errors = maps.Clone(c.pins), maps.Clone(c.errors)
	c.mu.Unlock()
	return t
}

// Add returns the sum of two snapshots (of pools of one database, say).
func (t Totals) Add(u Totals) Totals {
	s := Totals{
		Xacts: t.Xacts + u.Xacts, Queries: t.Queries + u.Queries,
		BytesIn: t.BytesIn + u.BytesIn, BytesOut: t.BytesOut + u.BytesOut,
		XactTime: t.XactTime + u.XactTime, QueryTime: t.QueryTime + u.QueryTime,
		WaitTime: t.WaitTime + u.WaitTime,
		Pins:     sumMaps(t.Pins, u.Pins), Errors: sumMaps(t.Errors, u.Errors),
	}
	s.Waits = make([]uint64, max(len(t.Waits), len(u.Waits)))
	for i := range s.Waits {
		if i < len(t.Waits) {
			s.Waits[i] += t.Waits[i]
		}
		if i < len(u.Waits) {
			s.Waits[i] += u.Waits[i]
		}
	}
	return s
}

func sumMaps(a, b map[string]uint64) map[string]uint64 {
	if len(a) == 0 && len(b) == 0 {
		return nil
	}
	s := maps.Clone(a)
	if s == nil {
		s = map[string]uint64{}
	}
	for k, v := range b {
		s[k] += v
	}
	return s
}

// WaitCount is how many waits Waits holds.
func (t Totals) WaitCount() uint64 {
	var n uint64
	for _, w := range t.Waits {
		n += w
	}
	return n
}

// Rates are per-second averages over a recent period, PgBouncer-style:
// counts per second, bytes per second, and mean times per transaction,
// per query and per wait.
type Rates struct {
	Xacts, Queries, BytesIn, BytesOut float64
	XactTime, QueryTime, WaitTime     time.Duration
}

// RatesBetween computes the averages from an earlier snapshot to a later
// one, elapsed apart.
func RatesBetween(earlier, later Totals, elapsed time.Duration) Rates {
	secs := elapsed.Seconds()
	if secs <= 0 {
		return Rates{}
	}
	per := func(n uint64) float64 { return float64(n) / secs }
	mean := func(d time.Duration, n uint64) time.Duration {
		if n == 0 {
			return 0
		}
		return d / time.Duration(n)
	}
	xacts, queries := later.Xacts-earlier.Xacts, later.Queries-earlier.Queries
	waits := later.WaitCount() - earlier.WaitCount()
	return Rates{
		Xacts:     per(xacts),
		Queries:   per(queries),
		BytesIn:   per(later.BytesIn - earlier.BytesIn),
		BytesOut:  per(later.BytesOut - earlier.BytesOut),
		XactTime:  mean(later.XactTime-earlier.XactTime, xacts),
		QueryTime: mean(later.QueryTime-earlier.QueryTime, queries),
		WaitTime:  mean(later.WaitTime-earlier.WaitTime, waits),
	}
}

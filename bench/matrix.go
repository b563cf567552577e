package main

import (
	"fmt"
	"time"
)

// target is what pgbench talks to in a run.
type target int

const (
	direct target = iota // PostgreSQL itself
	pgbouncer
	pgpoolx
	numTargets
)

var targetNames = [numTargets]string{"direct", "PgBouncer", "pgpoolx"}

func (t target) String() string { return targetNames[t] }

// cell is one workload of the matrix, run against every target.
type cell struct {
	builtin string // pgbench -b: select-only or tpcb-like
	mode    string // pgbench -M: simple, extended or prepared
	clients int
	// reconnect is pgbench -C: a new connection for every transaction,
	// as short-lived scripts and functions make; logins are then the
	// pooler's main work.
	reconnect bool
	// skip says why a target does not run this cell, by target.
	skip [numTargets]string
}

func (c cell) String() string {
	clients := "clients"
	if c.clients == 1 {
		clients = "client"
	}
	reconnect := ""
	if c.reconnect {
		reconnect = " -C"
	}
	return fmt.Sprintf("%s -M %s%s, %d %s", c.builtin, c.mode, reconnect, c.clients, clients)
}

// workload names the cell's pgbench options in the report's first column.
func (c cell) workload() string {
	w := fmt.Sprintf("%s `-M %s`", c.builtin, c.mode)
	if c.reconnect {
		w += " `-C`"
	}
	return w
}

// settings are one run of the harness: the matrix and how long it runs.
type settings struct {
	scale    int           // pgbench -i -s
	duration time.Duration // pgbench -T of each run
	reps     int           // repetitions of the whole matrix, interleaved
	cells    []cell
}

const (
	// poolSize is both poolers' server connections per (database, user).
	poolSize = 20
	// threads is pgbench -j (fewer when there are fewer clients).
	threads = 2
	// manyClients is a client count for CPU per transaction when most
	// clients wait for a server connection.
	manyClients = 1000
	// crowdClients is the largest client count: how throughput and
	// latency hold up when thousands of clients share the pool.
	crowdClients = 5000
	// maxClients is the poolers' max_client_conn: above every cell's.
	maxClients = crowdClients + 100
)

// Why targets sit out cells; the report prints these as notes.
const (
	skipDirectMany = "PostgreSQL itself is not run with 1,000 or more clients: that many backends on a small " +
		"machine measure the machine, and max_connections would have to be raised past them"
)

// trapNote is why TPC-B with -M prepared is not in the matrix at all.
const trapNote = "TPC-B with `-M prepared` at 64 or more clients is not run: pgbench prepares `BEGIN` with a " +
	"blocking call while its other clients hold every pooled server connection, which can stall any " +
	"transaction pooler (pgbench's own deadlock, not the pooler's)."

func fullSettings() settings {
	return settings{
		scale:    10,
		duration: 10 * time.Second,
		reps:     3,
		cells: []cell{
			selectOnly("simple", 64),
			selectOnly("extended", 64),
			selectOnly("prepared", 64),
			selectOnly("simple", 256),
			{builtin: "tpcb-like", mode: "simple", clients: 256},
			selectOnly("simple", 1),
			{builtin: "select-only", mode: "simple", clients: manyClients,
				skip: [numTargets]string{direct: skipDirectMany}},
			{builtin: "select-only", mode: "simple", clients: crowdClients,
				skip: [numTargets]string{direct: skipDirectMany}},
			{builtin: "select-only", mode: "simple", clients: 16, reconnect: true},
		},
	}
}

// quickSettings finish in about two minutes: a smoke check that every
// piece works (PgBouncer's failure with -M prepared included), not a
// measurement.
func quickSettings() settings {
	return settings{scale: 1, duration: 3 * time.Second, reps: 1, cells: []cell{
		selectOnly("simple", 64),
		selectOnly("prepared", 64),
		{builtin: "tpcb-like", mode: "simple", clients: 32},
	}}
}

func selectOnly(mode string, clients int) cell {
	return cell{builtin: "select-only", mode: mode, clients: clients}
}

// order is the order of the targets in repetition rep: rotated each time,
// so that no target always runs first (on a cold cache) or right after
// another's load.
func order(rep int) [numTargets]target {
	var o [numTargets]target
	for i := range o {
		o[i] = target((i + rep) % int(numTargets))
	}
	return o
}

// Package session keeps one client's session as plain state, with no I/O.
//
// Tracker follows the protocol conversation between a client and the server
// connection it holds, and answers the question a transaction pooler lives
// on: may the server connection go back to the pool now?
package session

import "github.com/pgpoolx/pgpoolx/wire"

// group is the run of client messages answered by one ReadyForQuery: a
// simple Query, a FunctionCall, or extended-protocol messages up to a Sync.
type group struct {
	closed       bool // the Sync, Query or FunctionCall that ends it was sent
	closedBySync bool

	// Parse and Close messages sent in this group, the client's and those
	// pgpoolx put in, and how many of their replies came back. The server
	// answers in order, so the n-th ParseComplete answers the n-th Parse.
	parses       []ParseRef // in order
	parsesSeen   int
	closesSent   int
	closesSeen   int
	eatParses    []int // ordinals of ParseCompletes that are pgpoolx's
	eatCloses    []int // ordinals of CloseCompletes that are pgpoolx's
	failedParses int   // parses[failedParses:] died with an error
}

// ParseRef is one Parse sent to the server: the server-side statement
// name ("" for the unnamed statement) and, for a client's own Parse (not
// one pgpoolx put in), the client's name for it.
type ParseRef struct {
	Server   string
	Client   string
	Injected bool
	// Duplicate marks a client's Parse of a name it already uses, sent so
	// that the server refuses it; the statement itself stays.
	Duplicate bool
	// Token identifies an unnamed statement (Server ""), so a failure
	// forgets that one and not a later one.
	Token uint64
}

// Tracker counts what a client has sent against what the server answered.
type Tracker struct {
	groups   []group // oldest first from head on; only the last may be open
	head     int     // groups before head are answered
	txStatus byte
	// copyIn: the server is in COPY FROM STDIN mode, where it ignores Sync
	// (libpq sends Execute, Sync, the data, CopyDone and another Sync, and
	// gets one ReadyForQuery).
	copyIn bool
}

// NewTracker returns a tracker for a client outside any transaction.
func NewTracker() Tracker { return Tracker{txStatus: wire.TxIdle} }

// ClientSent records a message the client is about to send to the server.
// For a Parse, stmt says which statement it prepares.
func (t *Tracker) ClientSent(typ byte, stmt ParseRef) {
	switch typ {
	case wire.CopyDone, wire.CopyFail:
		t.copyIn = false
		return
	case wire.CopyData, wire.Flush, wire.Terminate:
		// Copy data belongs to the command already under way; a Flush
		// asks for replies but starts nothing by itself.
		return
	case wire.Sync:
		if t.copyIn {
			return // ignored by the server
		}
	}
	g := t.open()
	switch typ {
	case wire.Sync:
		g.closed, g.closedBySync = true, true
	case wire.Query, wire.FunctionCall:
		g.closed = true
	case wire.Parse:
		g.parses = append(g.parses, stmt)
	case wire.Close:
		g.closesSent++
	}
}

// InjectedParse records a Parse that pgpoolx sends on its own before the
// client's next message; its ParseComplete is not the client's.
func (t *Tracker) InjectedParse(stmt ParseRef) {
	g := t.open()
	g.eatParses = append(g.eatParses, len(g.parses))
	stmt.Injected = true
	g.parses = append(g.parses, stmt)
}

// InjectedClose records a Close that pgpoolx sends on its own before the
// client's next message; its CloseComplete is not the client's.
func (t *Tracker) InjectedClose() {
	g := t.open()
	g.eatCloses = append(g.eatCloses, g.closesSent)
	g.closesSent++
}

// open returns the open group, starting one if needed. The groups array
// and the slices in its elements are reused, so a steady stream of
// transactions allocates nothing.
func (t *Tracker) open() *group {
	if n := len(t.groups); n > t.head && !t.groups[n-1].closed {
		return &t.groups[n-1]
	}
	n := len(t.groups)
	if n < cap(t.groups) {
		t.groups = t.groups[:n+1]
		g := &t.groups[n]
		*g = group{parses: g.parses[:0], eatParses: g.eatParses[:0], eatCloses: g.eatCloses[:0]}
		return g
	}
	t.groups = append(t.groups, group{})
	return &t.groups[n]
}

// Tracks reports whether ServerSent does anything with a server message
// of this type; for any other it returns true and changes nothing, so
// callers may skip it.
func Tracks(typ byte) bool {
	switch typ {
	case wire.ReadyForQuery, wire.ParseComplete, wire.CloseComplete, wire.ErrorResponse, wire.CopyInResponse:
		return true
	}
	return false
}

// ServerSent records a message from the server and reports whether it is
// for the client (false: pgpoolx made the request and eats the reply).
func (t *Tracker) ServerSent(typ byte, txStatus byte) (forward bool) {
	if typ == wire.CopyInResponse {
		t.copyIn = true
		// A Sync the client sent right after its Execute reached the
		// server in copy mode and was ignored: the group stays open until
		// the Sync after the data.
		if n := len(t.groups); n > t.head && n-1 == t.head && t.groups[n-1].closedBySync {
			t.groups[n-1].closed, t.groups[n-1].closedBySync = false, false
		}
		return true
	}
	if typ == wire.ReadyForQuery {
		t.txStatus = txStatus
		t.copyIn = false
		if t.head < len(t.groups) {
			t.head++
		}
		if t.head == len(t.groups) {
			t.groups, t.head = t.groups[:0], 0 // reuse the array
		}
		return true
	}
	if t.head == len(t.groups) {
		return true
	}
	g := &t.groups[t.head]
	switch typ {
	case wire.ParseComplete:
		ord := g.parsesSeen
		g.parsesSeen++
		if len(g.eatParses) > 0 && g.eatParses[0] == ord {
			g.eatParses = g.eatParses[1:]
			return false
		}
	case wire.CloseComplete:
		ord := g.closesSeen
		g.closesSeen++
		if len(g.eatCloses) > 0 && g.eatCloses[0] == ord {
			g.eatCloses = g.eatCloses[1:]
			return false
		}
	case wire.ErrorResponse:
		// The server skips the rest of the group: parses not yet answered
		// never happen.
		g.failedParses = g.parsesSeen
	}
	return true
}

// FailedParses returns the Parses the server skipped or refused in the
// current group after an error. Call it after ServerSent returned for an
// ErrorResponse.
func (t *Tracker) FailedParses() []ParseRef {
	if t.head == len(t.groups) {
		return nil
	}
	g := &t.groups[t.head]
	return g.parses[g.failedParses:]
}

// StartsGroup reports whether the next client message opens a new group.
func (t *Tracker) StartsGroup() bool {
	n := len(t.groups)
	return n == t.head || t.groups[n-1].closed
}

// Pending reports how many ReadyForQuery messages the client still awaits.
func (t *Tracker) Pending() int {
	n := len(t.groups) - t.head
	if !t.StartsGroup() {
		n--
	}
	return n
}

// TxStatus is the status of the last ReadyForQuery.
func (t *Tracker) TxStatus() byte { return t.txStatus }

// Idle reports whether the client is between transactions with nothing in
// flight: every Query and Sync answered, no open batch, not in a
// transaction. Only then may a transaction pooler take its server away.
func (t *Tracker) Idle() bool {
	return len(t.groups) == t.head && t.txStatus == wire.TxIdle
}

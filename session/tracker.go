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
	closed bool // the Sync, Query or FunctionCall that ends it was sent
	// swallowParse is set when pgpoolx put a Parse of the client's unnamed
	// statement first in this group; its ParseComplete is not the client's.
	swallowParse bool
	replied      bool // a reply to the group's first message was seen
}

// Tracker counts what a client has sent against what the server answered.
// The zero value is a client that has sent nothing, outside a transaction.
type Tracker struct {
	groups   []group // oldest first from head on; only the last may be open
	head     int     // groups before head are answered
	txStatus byte
}

// NewTracker returns a tracker for a client outside any transaction.
func NewTracker() Tracker { return Tracker{txStatus: wire.TxIdle} }

// ClientSent records a message the client is about to send to the server.
func (t *Tracker) ClientSent(typ byte) {
	switch typ {
	case wire.CopyData, wire.CopyDone, wire.CopyFail, wire.Flush, wire.Terminate:
		// Copy messages belong to the command already under way; a Flush
		// asks for replies but starts nothing by itself.
		return
	}
	if !t.openGroup() {
		t.groups = append(t.groups, group{})
	}
	switch typ {
	case wire.Query, wire.Sync, wire.FunctionCall:
		t.groups[len(t.groups)-1].closed = true
	}
}

// InjectedParse records that pgpoolx sent a Parse of the client's unnamed
// statement as the first message of the group the client is starting. It
// must be called before ClientSent for the client's own first message.
func (t *Tracker) InjectedParse() {
	t.groups = append(t.groups, group{swallowParse: true})
}

// StartsGroup reports whether the next client message opens a new group.
func (t *Tracker) StartsGroup() bool { return !t.openGroup() }

func (t *Tracker) openGroup() bool {
	return len(t.groups) > t.head && !t.groups[len(t.groups)-1].closed
}

// ServerSent records a message from the server and reports whether it is
// for the client (false: pgpoolx made the request and eats the reply).
func (t *Tracker) ServerSent(typ byte, txStatus byte) (forward bool) {
	switch typ {
	case wire.NoticeResponse, wire.Notification, wire.ParameterStatus:
		return true // asynchronous: not a reply to any one message
	case wire.ReadyForQuery:
		t.txStatus = txStatus
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
	if g.replied {
		return true
	}
	g.replied = true
	return !(g.swallowParse && typ == wire.ParseComplete)
}

// Pending reports how many ReadyForQuery messages the client still awaits.
func (t *Tracker) Pending() int {
	n := len(t.groups) - t.head
	if t.openGroup() {
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

// Package pinreport reads pgpoolx's JSON logs and sums up its pins: how
// often each statement pinned a session and for how long, what AWS RDS
// Proxy would pin for, and how many server connections pooling saved. It
// streams: memory is bounded whatever the length of the log.
package pinreport

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"time"
	"unicode/utf8"
)

// Limits that keep memory bounded on any log.
const (
	// DefaultMaxRows is how many distinct (reason, digest) rows are kept;
	// the pins of further digests are counted in one OtherDigests row per
	// reason.
	DefaultMaxRows = 100_000
	// DefaultMaxOpenPins is how many pins may be open at once and still
	// be paired with their end; pgpoolx's own max_client_conn defaults to
	// a tenth of it.
	DefaultMaxOpenPins = 100_000
	// DefaultMaxLineBytes is the longest line read; longer ones are
	// skipped without being held in memory.
	DefaultMaxLineBytes = 1 << 20

	maxReasons     = 1000   // distinct reasons with a hint, and overflow rows
	maxPools       = 10_000 // (db, user) pairs with stats
	maxInitQueries = 1000   // distinct init_query suggestions
	maxFieldBytes  = 2048   // longer reasons, digests, hints ... are cut
)

// Row labels that stand in for a digest.
const (
	// OtherDigests is the digest of the row that counts a reason's pins
	// once DefaultMaxRows distinct rows exist.
	OtherDigests = "(other digests)"
	// OtherReasons is the reason of the row that counts pins of further
	// reasons once even the OtherDigests rows are too many.
	OtherReasons = "(other reasons)"
	// NoPinLine is the digest of the row that counts the ends of pins
	// whose start the log does not hold (it began before the log did).
	NoPinLine = "(start not in log)"
)

// Options sets the limits of an Aggregator; zero fields take the defaults.
type Options struct {
	MaxRows      int
	MaxOpenPins  int
	MaxLineBytes int
}

func (o Options) withDefaults() Options {
	if o.MaxRows <= 0 {
		o.MaxRows = DefaultMaxRows
	}
	if o.MaxOpenPins <= 0 {
		o.MaxOpenPins = DefaultMaxOpenPins
	}
	if o.MaxLineBytes <= 0 {
		o.MaxLineBytes = DefaultMaxLineBytes
	}
	return o
}

// span is the first and last time something was seen.
type span struct{ first, last time.Time }

func (s *span) see(t time.Time) {
	if t.IsZero() {
		return
	}
	if s.first.IsZero() || t.Before(s.first) {
		s.first = t
	}
	if t.After(s.last) {
		s.last = t
	}
}

type pinRow struct {
	reason, digest string
	span
	pins, open, transactions int64
	pinned                   time.Duration
}

type rdsRow struct {
	reason, digest string
	span
	count int64
}

// openPin is a pin whose end has not been read yet.
type openPin struct {
	row   *pinRow
	start time.Time
}

// Aggregator sums up log lines fed to it one at a time. It is not safe for
// concurrent use.
type Aggregator struct {
	opts Options
	dec  decoder
	key  []byte // scratch for map keys

	lines, notJSON, tooLong, undecodable, other int64

	first   time.Time
	last    time.Time // the latest time stamp read and parsed
	lastRaw []byte    // the latest time stamp read, when not parsed yet
	starts  int64

	pins, unpins int64
	pinRows      map[string]*pinRow // by appendKey(reason, digest)
	rowsCapped   int64
	open         map[uint64]openPin
	untracked    int64
	reasons      map[string]ReasonText

	pools        map[string]*Pool // by appendKey(db, user)
	poolsDropped int64

	rdsRows      map[string]*rdsRow // by appendKey(reason, digest)
	rdsCapped    int64
	rdsReasons   map[string]ReasonText
	initQueries  map[string]*int64
	initsDropped int64
}

// NewAggregator returns an empty Aggregator.
func NewAggregator(opts Options) *Aggregator {
	return &Aggregator{
		opts:        opts.withDefaults(),
		pinRows:     map[string]*pinRow{},
		open:        map[uint64]openPin{},
		reasons:     map[string]ReasonText{},
		pools:       map[string]*Pool{},
		rdsRows:     map[string]*rdsRow{},
		rdsReasons:  map[string]ReasonText{},
		initQueries: map[string]*int64{},
	}
}

// Read sums up the log r holds, line by line, and returns the report. On a
// read error it returns the report of what was read before it, and the
// error.
func Read(r io.Reader, opts Options) (*Report, error) {
	a := NewAggregator(opts)
	err := a.ReadLog(r)
	return a.Report(), err
}

// ReadLog feeds every line of r to the Aggregator. Lines longer than
// MaxLineBytes are counted and skipped as they stream by.
func (a *Aggregator) ReadLog(r io.Reader) error {
	br := bufio.NewReaderSize(r, a.opts.MaxLineBytes+len("\r\n"))
	for {
		b, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			a.lines++
			a.tooLong++
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
		} else if len(b) > 0 {
			a.Line(b)
		}
		switch {
		case errors.Is(err, io.EOF):
			return nil
		case err != nil:
			return err
		}
	}
}

// Line feeds one line, with or without its line end, to the Aggregator.
// It keeps nothing of b.
func (a *Aggregator) Line(b []byte) {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	a.lines++
	if len(b) == 0 {
		return
	}
	if len(b) > a.opts.MaxLineBytes {
		a.tooLong++
		return
	}
	e := entry{kind: classify(b)}
	if e.kind >= kindPinned {
		e = a.dec.decode(b, e.kind)
	}
	switch e.kind {
	case kindNotJSON:
		a.notJSON++
		return
	case kindUndecodable:
		a.undecodable++
		return
	case kindOther:
		a.other++
		a.noteRawTS(rawTS(b))
		return
	case kindListening:
		a.restart()
	case kindPinned:
		a.pinned(&e)
	case kindUnpinned:
		a.unpinned(&e)
	case kindRDS:
		a.rds(&e)
	case kindStats:
		a.stats(&e)
	}
	if !e.ts.IsZero() {
		a.noteTS(e.ts)
	}
}

// noteRawTS remembers the time stamp of a line the report does not read,
// unparsed: most lines' time stamps are never needed.
func (a *Aggregator) noteRawTS(raw []byte) {
	if len(raw) == 0 || len(raw) > 64 {
		return
	}
	if a.first.IsZero() {
		if t, ok := parseTS(raw); ok {
			a.noteTS(t)
		}
		return
	}
	a.lastRaw = append(a.lastRaw[:0], raw...)
}

func (a *Aggregator) noteTS(t time.Time) {
	if a.first.IsZero() {
		a.first = t
	}
	a.last, a.lastRaw = t, a.lastRaw[:0]
}

// lastTS returns the latest time stamp read, or the zero time.
func (a *Aggregator) lastTS() time.Time {
	if len(a.lastRaw) > 0 {
		if t, ok := parseTS(a.lastRaw); ok {
			a.last = t
		}
		a.lastRaw = a.lastRaw[:0]
	}
	return a.last
}

// restart handles a pgpoolx start: client ids begin again, so the pins
// still open ended, at the latest, with the last line before it.
func (a *Aggregator) restart() {
	a.starts++
	end := a.lastTS()
	for _, op := range a.open {
		op.closeAt(end)
	}
	clear(a.open)
}

// closeAt counts a pin whose end is not in the log as open, pinned until
// end.
func (op openPin) closeAt(end time.Time) {
	op.row.open++
	if !op.start.IsZero() && end.After(op.start) {
		op.row.pinned += end.Sub(op.start)
	}
}

func (a *Aggregator) pinned(e *entry) {
	a.pins++
	ts := e.ts
	if ts.IsZero() {
		ts = a.lastTS()
	}
	r := lookup(a, a.pinRows, e.reason, e.digest, &a.rowsCapped, newPinRow)
	r.pins++
	r.see(ts)
	noteReason(a.reasons, e.reason, e.detail, e.hint)
	if !e.hasClientID {
		a.untracked++
		return
	}
	if old, ok := a.open[e.clientID]; ok {
		// Its end is not in the log (lost, or another process's).
		old.closeAt(ts)
		delete(a.open, e.clientID)
	}
	if len(a.open) >= a.opts.MaxOpenPins {
		a.untracked++
		return
	}
	a.open[e.clientID] = openPin{row: r, start: ts}
}

func (a *Aggregator) unpinned(e *entry) {
	a.unpins++
	op, ok := a.open[e.clientID]
	if !ok || !e.hasClientID {
		// Paired with nothing: count it, with its own duration, apart.
		r := lookup(a, a.pinRows, e.reason, []byte(NoPinLine), &a.rowsCapped, newPinRow)
		r.pins++
		r.see(e.ts)
		r.pinned += e.pinnedFor
		r.transactions += e.transactions
		return
	}
	delete(a.open, e.clientID)
	d := e.pinnedFor
	if !e.hasPinnedFor && !op.start.IsZero() && e.ts.After(op.start) {
		d = e.ts.Sub(op.start)
	}
	op.row.pinned += d
	op.row.transactions += e.transactions
}

func (a *Aggregator) rds(e *entry) {
	r := lookup(a, a.rdsRows, e.reason, e.digest, &a.rdsCapped, newRDSRow)
	r.count++
	r.see(e.ts)
	noteReason(a.rdsReasons, e.reason, e.detail, e.hint)
	if q := e.initQuery; len(q) > 0 {
		if n := a.initQueries[string(q)]; n != nil {
			*n++
		} else if len(a.initQueries) < maxInitQueries && len(q) <= maxFieldBytes {
			n := int64(1)
			a.initQueries[string(q)] = &n
		} else {
			a.initsDropped++
		}
	}
}

func (a *Aggregator) stats(e *entry) {
	db, user := clipBytes(e.db), clipBytes(e.user)
	a.key = appendKey(a.key[:0], db, user)
	p := a.pools[string(a.key)]
	if p == nil {
		if len(a.pools) >= maxPools {
			a.poolsDropped++
			return
		}
		p = &Pool{DB: string(db), User: string(user)}
		a.pools[string(a.key)] = p
	}
	p.Samples++
	p.PeakClients = max(p.PeakClients, e.clients)
	p.PeakPinned = max(p.PeakPinned, e.clientsPinned)
	p.PeakWaiting = max(p.PeakWaiting, e.clientsWaiting)
	p.PeakServerConns = max(p.PeakServerConns, e.serverConns)
}

func newPinRow(reason, digest string) *pinRow { return &pinRow{reason: reason, digest: digest} }
func newRDSRow(reason, digest string) *rdsRow { return &rdsRow{reason: reason, digest: digest} }

// appendKey appends a map key for the pair (x, y) to dst: x's length,
// then both.
func appendKey(dst, x, y []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(x)))
	dst = append(dst, x...)
	return append(dst, y...)
}

// lookup returns the row for (reason, digest), adding it with newRow if
// m holds fewer than MaxRows rows. Past the limit, it counts in *capped
// and returns the reason's OtherDigests row, or past that too the one
// OtherReasons row. Looking up a row that exists allocates nothing.
func lookup[V any](a *Aggregator, m map[string]*V, reason, digest []byte, capped *int64, newRow func(reason, digest string) *V) *V {
	reason, digest = clipBytes(reason), clipBytes(digest)
	a.key = appendKey(a.key[:0], reason, digest)
	if v := m[string(a.key)]; v != nil {
		return v
	}
	if len(m) >= a.opts.MaxRows {
		*capped++
		digest = []byte(OtherDigests)
		a.key = appendKey(a.key[:0], reason, digest)
		if m[string(a.key)] == nil && len(m) >= a.opts.MaxRows+maxReasons {
			reason = []byte(OtherReasons)
			a.key = appendKey(a.key[:0], reason, digest)
		}
		if v := m[string(a.key)]; v != nil {
			return v
		}
	}
	v := newRow(string(reason), string(digest))
	m[string(a.key)] = v
	return v
}

// noteReason keeps the latest detail and hint logged for a reason.
func noteReason(m map[string]ReasonText, reason, detail, hint []byte) {
	reason = clipBytes(reason)
	old, ok := m[string(reason)]
	switch {
	case ok && (old.Detail == string(detail) && old.Hint == string(hint) || len(detail) == 0 && len(hint) == 0):
		return
	case !ok && len(m) >= maxReasons:
		return
	}
	m[string(reason)] = ReasonText{Detail: clip(string(detail)), Hint: clip(string(hint))}
}

func clipBytes(b []byte) []byte {
	if len(b) <= maxFieldBytes {
		return b
	}
	return []byte(clip(string(b)))
}

// clip bounds a string kept from the log. A longer one is cut at a rune
// boundary and ends with a hash of the whole, so that two long digests
// that differ only past the cut stay two rows.
func clip(s string) string {
	if len(s) <= maxFieldBytes {
		return s
	}
	h := fnv.New64a()
	io.WriteString(h, s)
	cut := maxFieldBytes - 32
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	// A new string: the cut must not keep the long one alive.
	return fmt.Sprintf("%s… (%d bytes, %016x)", s[:cut], len(s), h.Sum64())
}

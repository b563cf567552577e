package pinreport

import (
	"cmp"
	"maps"
	"slices"
	"strings"
	"time"
)

// Report is what a log says about pins.
type Report struct {
	Lines    int64     // lines read
	From, To time.Time // the first and last time stamps read (zero if none)
	Starts   int64     // pgpoolx processes started ("listening" lines)

	Pins   int64 // "session pinned" lines
	Unpins int64 // "session unpinned" lines
	Open   int64 // pins whose end the log does not hold
	Rows   []Row // by pinned time, then pins, most first
	// Reasons holds the detail and hint last logged for each reason.
	Reasons map[string]ReasonText

	Pools []Pool // by db, then user

	RDS        []RDSRow // by count, most first
	RDSReasons map[string]ReasonText
	// InitQueries are the distinct init_query suggestions, by statement.
	InitQueries []InitQuery
	// InitQuery combines one suggestion per setting into RDS Proxy's
	// initialization query: the one suggested most often (the
	// alphabetically first on a tie), in order of the setting's name.
	InitQuery string
	// Conflicts lists the settings with more than one suggested value.
	Conflicts []Conflict

	Skipped Skipped
	Limits  Limits
}

// Row sums up the pins of one reason and statement digest.
type Row struct {
	Reason, Digest string
	Pins           int64 // pins that began (for NoPinLine: that ended)
	Open           int64 // of them, those whose end the log does not hold
	// PinnedTime is how long they held their server connections; an open
	// pin counts up to the last time stamp before its process restarted
	// or the log ended.
	PinnedTime   time.Duration
	Transactions int64 // transactions run while pinned, by pins that ended
	First, Last  time.Time
}

// ReasonText says what a reason means and how to avoid it.
type ReasonText struct{ Detail, Hint string }

// Pool holds the peaks of a pool's "pool stats" lines.
type Pool struct {
	DB, User        string
	Samples         int64
	PeakClients     int64
	PeakServerConns int64
	PeakPinned      int64
	PeakWaiting     int64
}

// RDSRow counts the "would pin on rds proxy" lines of a reason and digest.
// pgpoolx logs each digest once per process, so Count is how many
// processes saw it.
type RDSRow struct {
	Reason, Digest string
	Count          int64
	First, Last    time.Time
}

// InitQuery is one suggested statement for RDS Proxy's initialization
// query, and how many lines suggested it.
type InitQuery struct {
	SQL   string
	Count int64
}

// Conflict is a setting for which the log suggests different statements.
type Conflict struct {
	Setting    string
	Statements []string // all of them, the one InitQuery took first
}

// Skipped counts the lines the report did not use.
type Skipped struct {
	NotJSON     int64 // no "msg" key: not a JSON log line
	TooLong     int64 // longer than MaxLineBytes
	Undecodable int64 // a message the report reads, in broken JSON
	Other       int64 // other messages
}

// Limits says what the report's memory bounds were, and where they were
// reached.
type Limits struct {
	MaxRows, MaxLineBytes int // the Options read with

	// CappedPins is how many pins were counted in OtherDigests rows.
	CappedPins int64
	// CappedRDS is how many RDS Proxy lines were counted in OtherDigests
	// rows.
	CappedRDS int64
	// UntrackedPins is how many pins could not be paired with their end
	// (no client_id, or too many open at once); their ends count in
	// NoPinLine rows.
	UntrackedPins int64
	// DroppedPools and DroppedInitQueries count stats lines and init_query
	// suggestions not kept.
	DroppedPools       int64
	DroppedInitQueries int64
}

// Report returns what the lines so far say. Pins still open count as open
// up to the last time stamp read; the Aggregator is not changed, so more
// lines may follow.
func (a *Aggregator) Report() *Report {
	end := a.lastTS()
	r := &Report{
		Lines:   a.lines,
		From:    a.first,
		To:      end,
		Starts:  a.starts,
		Pins:    a.pins,
		Unpins:  a.unpins,
		Reasons: maps.Clone(a.reasons),
		Skipped: Skipped{
			NotJSON:     a.notJSON,
			TooLong:     a.tooLong,
			Undecodable: a.undecodable,
			Other:       a.other,
		},
		Limits: Limits{
			MaxRows:            a.opts.MaxRows,
			MaxLineBytes:       a.opts.MaxLineBytes,
			CappedPins:         a.rowsCapped,
			CappedRDS:          a.rdsCapped,
			UntrackedPins:      a.untracked,
			DroppedPools:       a.poolsDropped,
			DroppedInitQueries: a.initsDropped,
		},
		RDSReasons: maps.Clone(a.rdsReasons),
	}

	rows := make(map[*pinRow]*Row, len(a.pinRows))
	for _, pr := range a.pinRows {
		row := &Row{
			Reason: pr.reason, Digest: pr.digest,
			Pins: pr.pins, Open: pr.open, PinnedTime: pr.pinned, Transactions: pr.transactions,
			First: pr.first, Last: pr.last,
		}
		rows[pr] = row
	}
	// The pins still open, added to copies: the Aggregator goes on.
	for _, op := range a.open {
		acc := pinRow{}
		openPin{row: &acc, start: op.start}.closeAt(end)
		row := rows[op.row]
		row.Open += acc.open
		row.PinnedTime += acc.pinned
	}
	r.Rows = make([]Row, 0, len(rows))
	for _, row := range rows {
		r.Rows = append(r.Rows, *row)
		r.Open += row.Open
	}
	slices.SortFunc(r.Rows, func(x, y Row) int {
		return cmp.Or(
			cmp.Compare(y.PinnedTime, x.PinnedTime),
			cmp.Compare(y.Pins, x.Pins),
			strings.Compare(x.Reason, y.Reason),
			strings.Compare(x.Digest, y.Digest))
	})

	for _, p := range a.pools {
		r.Pools = append(r.Pools, *p)
	}
	slices.SortFunc(r.Pools, func(x, y Pool) int {
		return cmp.Or(strings.Compare(x.DB, y.DB), strings.Compare(x.User, y.User))
	})

	for _, rr := range a.rdsRows {
		r.RDS = append(r.RDS, RDSRow{Reason: rr.reason, Digest: rr.digest, Count: rr.count, First: rr.first, Last: rr.last})
	}
	slices.SortFunc(r.RDS, func(x, y RDSRow) int {
		return cmp.Or(
			cmp.Compare(y.Count, x.Count),
			strings.Compare(x.Reason, y.Reason),
			strings.Compare(x.Digest, y.Digest))
	})

	for q, n := range a.initQueries {
		r.InitQueries = append(r.InitQueries, InitQuery{SQL: q, Count: *n})
	}
	slices.SortFunc(r.InitQueries, func(x, y InitQuery) int { return strings.Compare(x.SQL, y.SQL) })
	r.InitQuery, r.Conflicts = combineInitQueries(r.InitQueries)
	return r
}

// combineInitQueries joins one statement per setting with "; ", in order
// of the settings' names: for each, the one suggested most often, the
// alphabetically first on a tie.
func combineInitQueries(qs []InitQuery) (string, []Conflict) {
	bySetting := map[string][]InitQuery{}
	var settings []string
	for _, q := range qs {
		s := settingOf(q.SQL)
		if _, ok := bySetting[s]; !ok {
			settings = append(settings, s)
		}
		bySetting[s] = append(bySetting[s], q)
	}
	slices.Sort(settings)
	var parts []string
	var conflicts []Conflict
	for _, s := range settings {
		cands := bySetting[s]
		slices.SortStableFunc(cands, func(x, y InitQuery) int { return cmp.Compare(y.Count, x.Count) })
		parts = append(parts, cands[0].SQL)
		if len(cands) > 1 {
			c := Conflict{Setting: s}
			for _, q := range cands {
				c.Statements = append(c.Statements, q.SQL)
			}
			conflicts = append(conflicts, c)
		}
	}
	return strings.Join(parts, "; "), conflicts
}

// settingOf returns the setting a suggested statement sets, as pgpoolx
// writes them ("SET name TO value", "SET TIME ZONE value"); for any other
// text, the text itself.
func settingOf(sql string) string {
	if _, ok := strings.CutPrefix(sql, "SET TIME ZONE "); ok {
		return "timezone"
	}
	if rest, ok := strings.CutPrefix(sql, "SET "); ok {
		if name, _, ok := strings.Cut(rest, " TO "); ok {
			return strings.ToLower(strings.TrimSpace(name))
		}
	}
	return sql
}

package pinreport

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// WriteOptions says what to write.
type WriteOptions struct {
	Top      int  // the rows with the most pinned time to show; 0: all
	RDSProxy bool // add what AWS RDS Proxy would pin for, and the init_query
}

const (
	digestWidth = 60 // runes of a digest shown in a table
	textWidth   = 100
	timeLayout  = "2006-01-02 15:04:05"
)

// WriteText writes r for people: a header line, a table of pins, what
// each reason means and how to avoid it, pooling peaks, and with RDSProxy
// the RDS Proxy predictions and the suggested init_query.
func WriteText(w io.Writer, r *Report, o WriteOptions) error {
	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }

	p("%s\n", summary(r))
	if len(r.Rows) > 0 {
		shown := topOf(r.Rows, o.Top)
		t := table{
			header: []string{"REASON", "DIGEST", "PINS", "OPEN", "PINNED TIME", "TX", "FIRST SEEN", "LAST SEEN"},
			right:  []bool{false, false, true, true, true, true, false, false},
		}
		var reasons []string
		for _, row := range shown {
			t.rows = append(t.rows, []string{
				cell(row.Reason, digestWidth), digestCell(row.Digest),
				strconv.FormatInt(row.Pins, 10), strconv.FormatInt(row.Open, 10),
				formatDuration(row.PinnedTime), strconv.FormatInt(row.Transactions, 10),
				formatTime(row.First), formatTime(row.Last),
			})
			reasons = appendNew(reasons, row.Reason)
		}
		p("\n")
		t.write(bw)
		if more := len(r.Rows) - len(shown); more > 0 {
			p("(%s)\n", plural(int64(more), "more row"))
		}
		p("\n")
		writeReasons(bw, reasons, r.Reasons)
	}
	if len(r.Pools) > 0 {
		p("\nPooling, at the peaks of the \"pool stats\" lines:\n")
		for _, pl := range r.Pools {
			p("  %s/%s: %s on %s", cell(pl.DB, 40), cell(pl.User, 40), plural(pl.PeakClients, "client"), plural(pl.PeakServerConns, "server connection"))
			if saved := pl.PeakClients - pl.PeakServerConns; saved > 0 {
				p(", %d saved", saved)
			}
			p(" (at most %d pinned, %d waiting)\n", pl.PeakPinned, pl.PeakWaiting)
		}
	}
	if o.RDSProxy {
		writeRDS(bw, r, o)
	} else if len(r.RDS) > 0 {
		p("\n%s would pin on AWS RDS Proxy: see --rds-proxy.\n", plural(int64(len(r.RDS)), "statement"))
	}
	writeNotes(bw, r, o)
	return bw.Flush()
}

// summary is the report's first line.
func summary(r *Report) string {
	var b strings.Builder
	if r.Pins == 0 && r.Unpins == 0 {
		b.WriteString("No pins")
	} else {
		b.WriteString(plural(r.Pins, "pin"))
		if r.Open > 0 {
			fmt.Fprintf(&b, " (%d still open)", r.Open)
		}
	}
	fmt.Fprintf(&b, " in %s", plural(r.Lines, "line"))
	if !r.From.IsZero() {
		fmt.Fprintf(&b, " from %s to %s", formatTime(r.From), formatTime(r.To))
	}
	if r.Starts > 0 {
		fmt.Fprintf(&b, ", %s", plural(r.Starts, "pgpoolx start"))
	}
	b.WriteString(".")
	return b.String()
}

func writeReasons(w io.Writer, reasons []string, texts map[string]ReasonText) {
	for _, reason := range reasons {
		rt, ok := texts[reason]
		if !ok || rt.Detail == "" && rt.Hint == "" {
			continue
		}
		fmt.Fprintf(w, "%s\n", cell(reason, textWidth))
		if rt.Detail != "" {
			wrap(w, "    ", rt.Detail)
		}
		if rt.Hint != "" {
			wrap(w, "    ", "Hint: "+rt.Hint)
		}
	}
}

func writeRDS(w *bufio.Writer, r *Report, o WriteOptions) {
	if len(r.RDS) == 0 {
		fmt.Fprintf(w, "\nNo \"would pin on rds proxy\" lines: pgpoolx logs them with pinning.rds_proxy_report: true.\n")
		return
	}
	fmt.Fprintf(w, "\nAWS RDS Proxy would pin sessions for %s (COUNT: pgpoolx processes that logged it):\n\n",
		plural(int64(len(r.RDS)), "statement"))
	shown := topOf(r.RDS, o.Top)
	t := table{header: []string{"REASON", "DIGEST", "COUNT", "FIRST SEEN"}, right: []bool{false, false, true, false}}
	var reasons []string
	for _, row := range shown {
		t.rows = append(t.rows, []string{cell(row.Reason, digestWidth), digestCell(row.Digest),
			strconv.FormatInt(row.Count, 10), formatTime(row.First)})
		reasons = appendNew(reasons, row.Reason)
	}
	t.write(w)
	if more := len(r.RDS) - len(shown); more > 0 {
		fmt.Fprintf(w, "(%s)\n", plural(int64(more), "more row"))
	}
	fmt.Fprintln(w)
	writeReasons(w, reasons, r.RDSReasons)
	if r.InitQuery == "" {
		return
	}
	fmt.Fprintf(w, "\nSuggested RDS Proxy initialization query, so that these SETs stop pinning there:\n\n  %s\n",
		sanitize(r.InitQuery))
	for _, c := range r.Conflicts {
		fmt.Fprintf(w, "\nThe log suggests %d values for %s; the query above takes the first, suggested most often:\n",
			len(c.Statements), sanitize(c.Setting))
		for _, s := range c.Statements {
			fmt.Fprintf(w, "  %s\n", sanitize(s))
		}
	}
}

// writeNotes says what was skipped and which limits were reached.
func writeNotes(w io.Writer, r *Report, o WriteOptions) {
	var skipped []string
	if n := r.Skipped.NotJSON; n > 0 {
		skipped = append(skipped, plural(n, "line")+" not in JSON")
	}
	if n := r.Skipped.TooLong; n > 0 {
		skipped = append(skipped, fmt.Sprintf("%s longer than %s", plural(n, "line"), formatBytes(int64(r.Limits.MaxLineBytes))))
	}
	if n := r.Skipped.Undecodable; n > 0 {
		skipped = append(skipped, plural(n, "line")+" of broken JSON")
	}
	var notes []string
	if len(skipped) > 0 {
		s := "Skipped " + strings.Join(skipped, ", ") + "."
		if r.Skipped.NotJSON == r.Lines {
			s += " pgpoolx pins reads logs written with log.format: json."
		}
		notes = append(notes, s)
	}
	if n := r.Limits.CappedPins; n > 0 {
		notes = append(notes, fmt.Sprintf("More than %d distinct digests: %s counted in %q rows.", r.Limits.MaxRows, plural(n, "pin"), OtherDigests))
	}
	if n := r.Limits.CappedRDS; n > 0 && o.RDSProxy {
		notes = append(notes, fmt.Sprintf("More than %d distinct RDS Proxy digests: %s counted in %q rows.", r.Limits.MaxRows, plural(n, "line"), OtherDigests))
	}
	if n := r.Limits.UntrackedPins; n > 0 {
		notes = append(notes, fmt.Sprintf("%s could not be paired with their end (no client_id, or too many open at once); their ends count in %q rows.", plural(n, "pin"), NoPinLine))
	}
	if n := r.Limits.DroppedPools; n > 0 {
		notes = append(notes, fmt.Sprintf("%s of further pools not counted.", plural(n, "\"pool stats\" line")))
	}
	if n := r.Limits.DroppedInitQueries; n > 0 && o.RDSProxy {
		notes = append(notes, fmt.Sprintf("%s not kept (too many or too long).", plural(n, "init_query suggestion")))
	}
	if len(notes) > 0 {
		fmt.Fprintln(w)
	}
	for _, n := range notes {
		wrap(w, "", n)
	}
}

// table is a text table with aligned columns.
type table struct {
	header []string
	right  []bool // right-align the column
	rows   [][]string
}

func (t table) write(w io.Writer) {
	widths := make([]int, len(t.header))
	for _, row := range append([][]string{t.header}, t.rows...) {
		for i, c := range row {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	for _, row := range append([][]string{t.header}, t.rows...) {
		b.Reset()
		for i, c := range row {
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c))
			if i > 0 {
				b.WriteString("  ")
			}
			if t.right[i] {
				b.WriteString(pad + c)
			} else if i < len(row)-1 {
				b.WriteString(c + pad)
			} else {
				b.WriteString(c)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}

func topOf[T any](rows []T, top int) []T {
	if top > 0 && top < len(rows) {
		return rows[:top]
	}
	return rows
}

func appendNew(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

func digestCell(d string) string {
	if d == "" {
		return "(none)"
	}
	return cell(d, digestWidth)
}

// cell makes log text fit a table cell: one line of at most width runes.
func cell(s string, width int) string {
	s = sanitize(s)
	if utf8.RuneCountInString(s) <= width {
		return s
	}
	runes := []rune(s)
	return string(runes[:width-1]) + "…"
}

// sanitize turns the control characters of log text into spaces, so that
// nothing from a log moves the cursor or breaks a line of the report.
func sanitize(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) || r == utf8.RuneError }) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return ' '
		}
		return r
	}, s)
}

// wrap writes text in lines of at most textWidth columns, each starting
// with indent.
func wrap(w io.Writer, indent, text string) {
	line := indent
	for _, word := range strings.Fields(sanitize(text)) {
		if len(line) > len(indent) && utf8.RuneCountInString(line)+1+utf8.RuneCountInString(word) > textWidth {
			fmt.Fprintln(w, line)
			line = indent
		}
		if len(line) > len(indent) {
			line += " "
		}
		line += word
	}
	fmt.Fprintln(w, line)
}

func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	if rest, ok := strings.CutPrefix(noun, "\""); ok {
		// A quoted message: the plural goes after the closing quote.
		return fmt.Sprintf("%d \"%ss", n, rest)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format(timeLayout)
}

// formatDuration rounds d to what a person compares: milliseconds under a
// second, hundredths of a second under a minute, then seconds.
func formatDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "0s"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(10 * time.Millisecond).String()
	default:
		return d.Round(time.Second).String()
	}
}

// formatBytes writes n in the largest binary unit that keeps it at least 1.
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	v := float64(n) / float64(div)
	if v == float64(int64(v)) {
		return fmt.Sprintf("%d %ciB", int64(v), "KMGTP"[exp])
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTP"[exp])
}

// WriteJSON writes r as one JSON object for programs.
func WriteJSON(w io.Writer, r *Report, o WriteOptions) error {
	out := jsonReport{
		Lines:   r.Lines,
		From:    jsonTime(r.From),
		To:      jsonTime(r.To),
		Starts:  r.Starts,
		Pins:    r.Pins,
		Unpins:  r.Unpins,
		Open:    r.Open,
		Rows:    []jsonRow{},
		Reasons: jsonReasons(r.Reasons),
		Pools:   []jsonPool{},
		Skipped: jsonSkipped{
			NotJSON:     r.Skipped.NotJSON,
			TooLong:     r.Skipped.TooLong,
			Undecodable: r.Skipped.Undecodable,
			Other:       r.Skipped.Other,
		},
		Limits: jsonLimits{
			CappedPins:         r.Limits.CappedPins,
			CappedRDS:          r.Limits.CappedRDS,
			UntrackedPins:      r.Limits.UntrackedPins,
			DroppedPools:       r.Limits.DroppedPools,
			DroppedInitQueries: r.Limits.DroppedInitQueries,
		},
	}
	shown := topOf(r.Rows, o.Top)
	out.MoreRows = len(r.Rows) - len(shown)
	for _, row := range shown {
		out.Rows = append(out.Rows, jsonRow{
			Reason: row.Reason, Digest: row.Digest, Pins: row.Pins, Open: row.Open,
			PinnedSeconds: row.PinnedTime.Seconds(), Transactions: row.Transactions,
			FirstSeen: jsonTime(row.First), LastSeen: jsonTime(row.Last),
		})
	}
	for _, pl := range r.Pools {
		out.Pools = append(out.Pools, jsonPool{
			DB: pl.DB, User: pl.User, Samples: pl.Samples,
			PeakClients: pl.PeakClients, PeakServerConns: pl.PeakServerConns,
			PeakClientsPinned: pl.PeakPinned, PeakClientsWaiting: pl.PeakWaiting,
		})
	}
	if o.RDSProxy {
		rds := &jsonRDS{
			Rows:        []jsonRDSRow{},
			Reasons:     jsonReasons(r.RDSReasons),
			InitQueries: []jsonInitQuery{},
			InitQuery:   r.InitQuery,
			Conflicts:   []jsonConflict{},
		}
		shown := topOf(r.RDS, o.Top)
		rds.MoreRows = len(r.RDS) - len(shown)
		for _, row := range shown {
			rds.Rows = append(rds.Rows, jsonRDSRow{Reason: row.Reason, Digest: row.Digest, Count: row.Count,
				FirstSeen: jsonTime(row.First), LastSeen: jsonTime(row.Last)})
		}
		for _, q := range r.InitQueries {
			rds.InitQueries = append(rds.InitQueries, jsonInitQuery{SQL: q.SQL, Count: q.Count})
		}
		for _, c := range r.Conflicts {
			rds.Conflicts = append(rds.Conflicts, jsonConflict{Setting: c.Setting, Statements: c.Statements})
		}
		out.RDSProxy = rds
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(out)
}

type jsonReport struct {
	Lines    int64                 `json:"lines"`
	From     string                `json:"from,omitempty"`
	To       string                `json:"to,omitempty"`
	Starts   int64                 `json:"pgpoolx_starts"`
	Pins     int64                 `json:"pins"`
	Unpins   int64                 `json:"unpins"`
	Open     int64                 `json:"open"`
	Rows     []jsonRow             `json:"rows"`
	MoreRows int                   `json:"more_rows"`
	Reasons  map[string]jsonReason `json:"reasons"`
	Pools    []jsonPool            `json:"pools"`
	RDSProxy *jsonRDS              `json:"rds_proxy,omitempty"`
	Skipped  jsonSkipped           `json:"skipped"`
	Limits   jsonLimits            `json:"limits"`
}

type jsonRow struct {
	Reason        string  `json:"reason"`
	Digest        string  `json:"digest"`
	Pins          int64   `json:"pins"`
	Open          int64   `json:"open"`
	PinnedSeconds float64 `json:"pinned_seconds"`
	Transactions  int64   `json:"transactions"`
	FirstSeen     string  `json:"first_seen,omitempty"`
	LastSeen      string  `json:"last_seen,omitempty"`
}

type jsonReason struct {
	Detail string `json:"detail"`
	Hint   string `json:"hint"`
}

type jsonPool struct {
	DB                 string `json:"db"`
	User               string `json:"user"`
	Samples            int64  `json:"samples"`
	PeakClients        int64  `json:"peak_clients"`
	PeakServerConns    int64  `json:"peak_server_conns"`
	PeakClientsPinned  int64  `json:"peak_clients_pinned"`
	PeakClientsWaiting int64  `json:"peak_clients_waiting"`
}

type jsonRDS struct {
	Rows        []jsonRDSRow          `json:"rows"`
	MoreRows    int                   `json:"more_rows"`
	Reasons     map[string]jsonReason `json:"reasons"`
	InitQueries []jsonInitQuery       `json:"init_queries"`
	InitQuery   string                `json:"init_query"`
	Conflicts   []jsonConflict        `json:"conflicts"`
}

type jsonRDSRow struct {
	Reason    string `json:"reason"`
	Digest    string `json:"digest"`
	Count     int64  `json:"count"`
	FirstSeen string `json:"first_seen,omitempty"`
	LastSeen  string `json:"last_seen,omitempty"`
}

type jsonInitQuery struct {
	SQL   string `json:"sql"`
	Count int64  `json:"count"`
}

type jsonConflict struct {
	Setting    string   `json:"setting"`
	Statements []string `json:"statements"`
}

type jsonSkipped struct {
	NotJSON     int64 `json:"not_json"`
	TooLong     int64 `json:"too_long"`
	Undecodable int64 `json:"undecodable"`
	Other       int64 `json:"other_messages"`
}

type jsonLimits struct {
	CappedPins         int64 `json:"pins_in_other_digests"`
	CappedRDS          int64 `json:"rds_lines_in_other_digests"`
	UntrackedPins      int64 `json:"untracked_pins"`
	DroppedPools       int64 `json:"dropped_pool_stats"`
	DroppedInitQueries int64 `json:"dropped_init_queries"`
}

func jsonTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(time.RFC3339Nano)
}

func jsonReasons(m map[string]ReasonText) map[string]jsonReason {
	out := make(map[string]jsonReason, len(m))
	for k, v := range m {
		out[k] = jsonReason{Detail: v.Detail, Hint: v.Hint}
	}
	return out
}

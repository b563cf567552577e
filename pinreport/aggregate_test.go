package pinreport

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

const (
	lockDigest   = "select pg_advisory_lock($1)"
	listenDigest = "listen pinchan"
	tempDigest   = "create temp table tt (id int default $1)"
)

func TestReport(t *testing.T) {
	sec := time.Second
	for _, tc := range []struct {
		name        string
		log         string
		opts        Options
		wantRows    []Row
		wantPins    int64
		wantOpen    int64
		wantStarts  int64
		wantSkipped Skipped
		wantLimits  Limits // MaxRows and MaxLineBytes are not compared
	}{
		{
			name: "pins and their ends, by pinned time",
			log: lines(
				pinnedLine(0, 1, "session_advisory_lock", lockDigest),
				pinnedLine(1*sec, 2, "listen", listenDigest),
				otherLine(2*sec),
				unpinnedLine(3*sec, 1, "session_advisory_lock", 3*sec, 4),
				unpinnedLine(11*sec, 2, "listen", 10*sec, 1),
				pinnedLine(20*sec, 1, "session_advisory_lock", lockDigest),
				unpinnedLine(21*sec, 1, "session_advisory_lock", 1*sec, 2),
			),
			wantRows: []Row{
				{Reason: "listen", Digest: listenDigest, Pins: 1, PinnedTime: 10 * sec, Transactions: 1, First: t0.Add(sec), Last: t0.Add(sec)},
				{Reason: "session_advisory_lock", Digest: lockDigest, Pins: 2, PinnedTime: 4 * sec, Transactions: 6, First: t0, Last: t0.Add(20 * sec)},
			},
			wantPins:    3,
			wantSkipped: Skipped{Other: 1},
		},
		{
			name: "equal time, more pins first",
			log: lines(
				pinnedLine(0, 1, "temp_table", tempDigest),
				unpinnedLine(sec, 1, "temp_table", sec, 1),
				pinnedLine(0, 2, "listen", listenDigest),
				unpinnedLine(sec/2, 2, "listen", sec/2, 1),
				pinnedLine(0, 2, "listen", listenDigest),
				unpinnedLine(sec/2, 2, "listen", sec/2, 1),
			),
			wantRows: []Row{
				{Reason: "listen", Digest: listenDigest, Pins: 2, PinnedTime: sec, Transactions: 2, First: t0, Last: t0},
				{Reason: "temp_table", Digest: tempDigest, Pins: 1, PinnedTime: sec, Transactions: 1, First: t0, Last: t0},
			},
			wantPins: 3,
		},
		{
			name: "open at the end counts up to the last time stamp",
			log: lines(
				pinnedLine(0, 1, "temp_table", tempDigest),
				otherLine(5*sec),
				"garbage",
			),
			wantRows:    []Row{{Reason: "temp_table", Digest: tempDigest, Pins: 1, Open: 1, PinnedTime: 5 * sec, First: t0, Last: t0}},
			wantPins:    1,
			wantOpen:    1,
			wantSkipped: Skipped{Other: 1, NotJSON: 1},
		},
		{
			name: "a restart ends open pins at the last line before it",
			log: lines(
				listeningLine(0),
				pinnedLine(sec, 1, "temp_table", tempDigest),
				statsLine(4*sec, "appdb", 3, 1, 0, 2),
				listeningLine(60*sec),
				// Client 1 of the new process is someone else.
				unpinnedLine(62*sec, 1, "listen", 2*sec, 1),
			),
			wantRows: []Row{
				{Reason: "temp_table", Digest: tempDigest, Pins: 1, Open: 1, PinnedTime: 3 * sec, First: t0.Add(sec), Last: t0.Add(sec)},
				{Reason: "listen", Digest: NoPinLine, Pins: 1, PinnedTime: 2 * sec, Transactions: 1, First: t0.Add(62 * sec), Last: t0.Add(62 * sec)},
			},
			wantPins:   1,
			wantOpen:   1,
			wantStarts: 2,
		},
		{
			name: "a second pin of a client id ends the first",
			log: lines(
				pinnedLine(0, 1, "temp_table", tempDigest),
				pinnedLine(2*sec, 1, "listen", listenDigest),
				unpinnedLine(3*sec, 1, "listen", sec, 1),
			),
			wantRows: []Row{
				{Reason: "temp_table", Digest: tempDigest, Pins: 1, Open: 1, PinnedTime: 2 * sec, First: t0, Last: t0},
				{Reason: "listen", Digest: listenDigest, Pins: 1, PinnedTime: sec, Transactions: 1, First: t0.Add(2 * sec), Last: t0.Add(2 * sec)},
			},
			wantPins: 2,
			wantOpen: 1,
		},
		{
			name: "no pinned_for: the time between the lines",
			log: lines(
				pinnedLine(0, 1, "listen", listenDigest),
				`{"ts":"`+at(7*sec)+`","msg":"session unpinned","client_id":1,"reason":"listen"}`,
			),
			wantRows: []Row{{Reason: "listen", Digest: listenDigest, Pins: 1, PinnedTime: 7 * sec, First: t0, Last: t0}},
			wantPins: 1,
		},
		{
			name: "missing fields",
			log: lines(
				`{"msg":"session pinned"}`,
				`{"msg":"session unpinned"}`,
				`{"msg":"pool stats"}`,
				`{"msg":"would pin on rds proxy"}`,
			),
			wantRows: []Row{
				{Pins: 1},
				{Digest: NoPinLine, Pins: 1},
			},
			wantPins:   1,
			wantLimits: Limits{UntrackedPins: 1},
		},
		{
			name: "broken, long and blank lines",
			log: lines(
				`{"msg":"session pinned","client_id":`,
				`{"msg":"session pinned"`+strings.Repeat(" ", 100)+`}`,
				"",
				"\r",
				"plain text",
			),
			opts:        Options{MaxLineBytes: 64},
			wantSkipped: Skipped{Undecodable: 1, TooLong: 1, NotJSON: 1},
		},
		{
			name: "too many digests",
			log: lines(
				pinnedLine(0, 1, "listen", "listen a"),
				pinnedLine(0, 2, "listen", "listen b"),
				pinnedLine(0, 3, "listen", "listen c"),
				pinnedLine(0, 4, "temp_table", "create temp table d (i int)"),
				pinnedLine(0, 5, "listen", "listen a"),
			),
			opts: Options{MaxRows: 2},
			wantRows: []Row{
				{Reason: "listen", Digest: "listen a", Pins: 2, Open: 2, First: t0, Last: t0},
				{Reason: "listen", Digest: OtherDigests, Pins: 1, Open: 1, First: t0, Last: t0},
				{Reason: "listen", Digest: "listen b", Pins: 1, Open: 1, First: t0, Last: t0},
				{Reason: "temp_table", Digest: OtherDigests, Pins: 1, Open: 1, First: t0, Last: t0},
			},
			wantPins:   5,
			wantOpen:   5,
			wantLimits: Limits{CappedPins: 2},
		},
		{
			name: "too many open pins",
			log: lines(
				pinnedLine(0, 1, "listen", listenDigest),
				pinnedLine(0, 2, "listen", listenDigest),
				unpinnedLine(sec, 2, "listen", sec, 1),
				unpinnedLine(sec, 1, "listen", sec, 1),
			),
			opts: Options{MaxOpenPins: 1},
			wantRows: []Row{
				{Reason: "listen", Digest: listenDigest, Pins: 2, PinnedTime: sec, Transactions: 1, First: t0, Last: t0},
				{Reason: "listen", Digest: NoPinLine, Pins: 1, PinnedTime: sec, Transactions: 1, First: t0.Add(sec), Last: t0.Add(sec)},
			},
			wantPins:   2,
			wantLimits: Limits{UntrackedPins: 1},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Read(strings.NewReader(tc.log), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Rows) != len(tc.wantRows) {
				t.Fatalf("%d rows, want %d:\n%+v", len(r.Rows), len(tc.wantRows), r.Rows)
			}
			for i, got := range r.Rows {
				want := tc.wantRows[i]
				if !got.First.Equal(want.First) || !got.Last.Equal(want.Last) {
					t.Errorf("row %d seen %v to %v, want %v to %v", i, got.First, got.Last, want.First, want.Last)
				}
				got.First, got.Last, want.First, want.Last = time.Time{}, time.Time{}, time.Time{}, time.Time{}
				if got != want {
					t.Errorf("row %d\n = %+v\nwant %+v", i, got, want)
				}
			}
			if r.Pins != tc.wantPins || r.Open != tc.wantOpen || r.Starts != tc.wantStarts {
				t.Errorf("pins %d, open %d, starts %d; want %d, %d, %d", r.Pins, r.Open, r.Starts, tc.wantPins, tc.wantOpen, tc.wantStarts)
			}
			if r.Skipped != tc.wantSkipped {
				t.Errorf("skipped %+v, want %+v", r.Skipped, tc.wantSkipped)
			}
			gotLimits := r.Limits
			gotLimits.MaxRows, gotLimits.MaxLineBytes = 0, 0
			if gotLimits != tc.wantLimits {
				t.Errorf("limits %+v, want %+v", gotLimits, tc.wantLimits)
			}
		})
	}
}

func TestReportRDSAndPools(t *testing.T) {
	log := lines(
		listeningLine(0),
		rdsLine(1*time.Second, "session_setting", "set statement_timeout to $1", "SET statement_timeout TO 5000"),
		rdsLine(2*time.Second, "session_setting", "set work_mem = $1", "SET work_mem TO '8MB'"),
		rdsLine(3*time.Second, "session_setting", "set app.tenant to $1", ""),
		rdsLine(4*time.Second, "listen", "listen pinchan", ""),
		rdsLine(5*time.Second, "session_setting", "set time zone $1", "SET TIME ZONE 'UTC'"),
		statsLine(6*time.Second, "appdb", 40, 2, 0, 5),
		statsLine(7*time.Second, "appdb", 10, 3, 1, 4),
		statsLine(7*time.Second, "otherdb", 1, 0, 0, 1),
		listeningLine(8*time.Second),
		rdsLine(9*time.Second, "session_setting", "set statement_timeout to $1", "SET statement_timeout TO 0"),
		rdsLine(9*time.Second, "session_setting", "set statement_timeout = $1", "SET statement_timeout TO 0"),
		rdsLine(9*time.Second, "session_setting", "set work_mem = $1", "SET work_mem TO '8MB'"),
	)
	r, err := Read(strings.NewReader(log), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var rds []string
	for _, row := range r.RDS {
		rds = append(rds, row.Reason+" "+row.Digest+" "+strconv.FormatInt(row.Count, 10))
	}
	wantRDS := []string{
		"session_setting set statement_timeout to $1 2",
		"session_setting set work_mem = $1 2",
		"listen listen pinchan 1",
		"session_setting set app.tenant to $1 1",
		"session_setting set statement_timeout = $1 1",
		"session_setting set time zone $1 1",
	}
	if !reflect.DeepEqual(rds, wantRDS) {
		t.Errorf("RDS rows\n%q\nwant\n%q", rds, wantRDS)
	}
	wantInit := "SET statement_timeout TO 0; SET TIME ZONE 'UTC'; SET work_mem TO '8MB'"
	if r.InitQuery != wantInit {
		t.Errorf("init query\n%q\nwant\n%q", r.InitQuery, wantInit)
	}
	wantConflicts := []Conflict{{Setting: "statement_timeout", Statements: []string{"SET statement_timeout TO 0", "SET statement_timeout TO 5000"}}}
	if !reflect.DeepEqual(r.Conflicts, wantConflicts) {
		t.Errorf("conflicts %+v, want %+v", r.Conflicts, wantConflicts)
	}
	if got := r.RDSReasons["listen"]; got.Hint != "rds hint for listen" || got.Detail != "rds detail of listen" {
		t.Errorf("RDS reason text of listen: %+v", got)
	}
	wantPools := []Pool{
		{DB: "appdb", User: "app", Samples: 2, PeakClients: 40, PeakServerConns: 5, PeakPinned: 3, PeakWaiting: 1},
		{DB: "otherdb", User: "app", Samples: 1, PeakClients: 1, PeakServerConns: 1},
	}
	if !reflect.DeepEqual(r.Pools, wantPools) {
		t.Errorf("pools %+v, want %+v", r.Pools, wantPools)
	}
	if r.Starts != 2 || r.Pins != 0 || len(r.Rows) != 0 {
		t.Errorf("starts %d, pins %d, rows %d; want 2, 0, 0", r.Starts, r.Pins, len(r.Rows))
	}
	if !r.From.Equal(t0) || !r.To.Equal(t0.Add(9*time.Second)) {
		t.Errorf("from %v to %v, want %v to %v", r.From, r.To, t0, t0.Add(9*time.Second))
	}
}

// TestReportGoesOn checks that Report leaves the Aggregator as it was:
// an open pin counted at one Report can still end.
func TestReportGoesOn(t *testing.T) {
	a := NewAggregator(Options{})
	a.Line([]byte(pinnedLine(0, 1, "listen", listenDigest)))
	a.Line([]byte(otherLine(time.Second)))
	if r := a.Report(); r.Open != 1 || r.Rows[0].PinnedTime != time.Second {
		t.Fatalf("first report: open %d, rows %+v", r.Open, r.Rows)
	}
	a.Line([]byte(unpinnedLine(3*time.Second, 1, "listen", 3*time.Second, 2)))
	r := a.Report()
	if r.Open != 0 || r.Rows[0].PinnedTime != 3*time.Second || r.Rows[0].Open != 0 {
		t.Fatalf("second report: open %d, rows %+v", r.Open, r.Rows)
	}
}

// TestLongLines reads lines longer than the limit in every position, in
// reads of one byte, without holding them.
func TestLongLines(t *testing.T) {
	const limit = 1024
	long := `{"msg":"session pinned","digest":"` + strings.Repeat("x", 2*limit) + `"}`
	exact := `{"msg":"session pinned","x":"`
	exact += strings.Repeat("y", limit-len(exact)-2) + `"}`
	for _, tc := range []struct {
		name        string
		log         string
		wantLines   int64
		wantTooLong int64
		wantPins    int64
	}{
		{"first", lines(long, pinnedLine(0, 1, "listen", "listen a")), 2, 1, 1},
		{"last without a line end", pinnedLine(0, 1, "listen", "listen a") + "\n" + long, 2, 1, 1},
		{"alone", long, 1, 1, 0},
		{"two", lines(long, long), 2, 2, 0},
		{"exactly the limit", exact + "\r\n", 1, 0, 1},
		{"one byte over", exact[:len(exact)-2] + `y"}` + "\n", 1, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Read(iotest.OneByteReader(strings.NewReader(tc.log)), Options{MaxLineBytes: limit})
			if err != nil {
				t.Fatal(err)
			}
			if r.Lines != tc.wantLines || r.Skipped.TooLong != tc.wantTooLong || r.Pins != tc.wantPins {
				t.Errorf("lines %d, too long %d, pins %d; want %d, %d, %d",
					r.Lines, r.Skipped.TooLong, r.Pins, tc.wantLines, tc.wantTooLong, tc.wantPins)
			}
		})
	}
}

func TestReadError(t *testing.T) {
	boom := errors.New("boom")
	r, err := Read(io.MultiReader(strings.NewReader(lines(pinnedLine(0, 1, "listen", "listen a"))), iotest.ErrReader(boom)), Options{})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	if r.Pins != 1 {
		t.Errorf("pins before the error: %d, want 1", r.Pins)
	}
}

func TestClip(t *testing.T) {
	long := strings.Repeat("é", maxFieldBytes)
	a, b := clip(long+"a"), clip(long+"b")
	if a == b {
		t.Error("two long strings that differ at the end clip to the same")
	}
	if len(a) > maxFieldBytes+64 {
		t.Errorf("clipped to %d bytes", len(a))
	}
	if !strings.HasPrefix(a, "éé") || !strings.Contains(a, "…") {
		t.Errorf("clip = %.40q...", a)
	}
	if s := "short"; clip(s) != s {
		t.Errorf("clip(%q) = %q", s, clip(s))
	}
}

// TestZapFormat logs pins with zap configured as pgpoolx configures it
// (cmd/pgpoolx newLogger) and with the fields proxy logs, so that the test
// lines above are known to be what pgpoolx writes.
func TestZapFormat(t *testing.T) {
	var buf bytes.Buffer
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	enc.TimeKey = "ts"
	clock := &stepClock{t: t0}
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(&buf), zapcore.InfoLevel),
		zap.WithClock(clock)).Named("pgpoolx")

	log.Info("listening", zap.String("addr", "127.0.0.1:6432"))
	cl := log.Named("client").With(zap.Uint64("client_id", 7)).With(zap.String("db", "appdb"), zap.String("user", "app"))
	cl.Info("session pinned",
		zap.String("reason", "listen"),
		zap.String("detail", "d"),
		zap.String("digest", listenDigest),
		zap.Int("query_bytes", 14),
		zap.Uint32("server_pid", 4242),
		zap.String("hint", "h"))
	clock.t = t0.Add(1500 * time.Millisecond)
	cl.Info("session unpinned",
		zap.String("reason", "listen"),
		zap.Duration("pinned_for", 1500*time.Millisecond),
		zap.Int("transactions", 3),
		zap.Uint32("server_pid", 4242))

	if want := unpinnedLine(1500*time.Millisecond, 7, "listen", 1500*time.Millisecond, 3); !strings.Contains(buf.String(), want) {
		t.Errorf("zap wrote\n%s\nthe test lines have\n%s", buf.String(), want)
	}
	r, err := Read(&buf, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := Row{Reason: "listen", Digest: listenDigest, Pins: 1, PinnedTime: 1500 * time.Millisecond, Transactions: 3, First: t0, Last: t0}
	if len(r.Rows) != 1 || r.Rows[0].PinnedTime != want.PinnedTime || r.Rows[0].Transactions != 3 || !r.Rows[0].First.Equal(t0) {
		t.Errorf("rows %+v, want [%+v]", r.Rows, want)
	}
	if r.Starts != 1 || r.Reasons["listen"] != (ReasonText{Detail: "d", Hint: "h"}) {
		t.Errorf("starts %d, reasons %+v", r.Starts, r.Reasons)
	}
}

type stepClock struct{ t time.Time }

func (c *stepClock) Now() time.Time                         { return c.t }
func (c *stepClock) NewTicker(d time.Duration) *time.Ticker { return time.NewTicker(d) }

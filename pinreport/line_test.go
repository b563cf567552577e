package pinreport

import (
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name string
		line string
		want kind
	}{
		{"pinned", pinnedLine(0, 1, "listen", "listen ch"), kindPinned},
		{"unpinned", unpinnedLine(0, 1, "listen", time.Second, 1), kindUnpinned},
		{"rds", rdsLine(0, "listen", "listen ch", ""), kindRDS},
		{"listening", listeningLine(0), kindListening},
		{"stats", statsLine(0, "appdb", 1, 0, 0, 1), kindStats},
		{"other message", otherLine(0), kindOther},
		{"blanks around the colon", `{"msg" : "session pinned"}`, kindPinned},
		{"message with a suffix", `{"msg":"session pinned twice"}`, kindOther},
		{"msg as a value", `{"a":"msg","b":1}`, kindNotJSON},
		{"escaped msg in a value", `{"a":"\"msg\":\"session pinned\""}`, kindNotJSON},
		{"msg not a string", `{"msg":7}`, kindOther},
		{"unterminated message", `{"msg":"session pinned`, kindOther},
		{"console format", `2026-03-01T10:00:00.000+0100	INFO	pgpoolx.client	session pinned	{"client_id": 1}`, kindNotJSON},
		{"text", "hello", kindNotJSON},
		{"empty", "", kindNotJSON},
		{"second msg key is ours", `{"x":{"msg":"other"},"msg":"listening"}`, kindListening},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := classify([]byte(tc.line)); got != tc.want {
				t.Errorf("classify(%s) = %d, want %d", tc.line, got, tc.want)
			}
		})
	}
}

func TestParseTS(t *testing.T) {
	utc := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		raw  string
		want time.Time // zero: not readable
	}{
		{"2026-03-01T10:00:00.000+0100", utc},
		{"2026-03-01T09:00:00.000Z", utc},
		{"2026-03-01T09:00:00Z", utc},
		{"2026-03-01T10:00:00.123456789+01:00", utc.Add(123456789)},
		{"1772355600", utc},
		{"1772355600.25", utc.Add(250 * time.Millisecond)},
		{"1772355600250", utc.Add(250 * time.Millisecond)},       // milliseconds
		{"1772355600250000000", utc.Add(250 * time.Millisecond)}, // nanoseconds
		{"", time.Time{}},
		{"yesterday", time.Time{}},
		{"-5", time.Time{}},
		{"1e400", time.Time{}},
		{"99999999999999999999999999", time.Time{}},
	} {
		got, ok := parseTS([]byte(tc.raw))
		if ok != !tc.want.IsZero() || !got.Equal(tc.want) {
			t.Errorf("parseTS(%q) = %v, %v; want %v", tc.raw, got, ok, tc.want)
		}
	}
}

func TestRawTS(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{otherLine(0), at(0)},
		{`{"ts": 12.5e3,"msg":"x"}`, "12.5e3"},
		{`{"msg":"x","a":"ts","ts":"t"}`, "t"},
		{`{"msg":"x","ts":"unterminated`, ""},
		{`{"msg":"x"}`, ""},
	} {
		if got := string(rawTS([]byte(tc.line))); got != tc.want {
			t.Errorf("rawTS(%s) = %q, want %q", tc.line, got, tc.want)
		}
	}
}

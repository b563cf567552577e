package pinreport

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"time"
)

// The messages the report reads. Every other line is counted and skipped.
const (
	msgPinned    = "session pinned"
	msgUnpinned  = "session unpinned"
	msgRDS       = "would pin on rds proxy"
	msgListening = "listening"
	msgStats     = "pool stats"
)

// kind is what a log line is to the report.
type kind uint8

const (
	kindNotJSON     kind = iota // no "msg" key: not a JSON log line
	kindOther                   // a JSON log line with another message
	kindUndecodable             // one of our messages, but not valid JSON
	kindPinned
	kindUnpinned
	kindRDS
	kindListening
	kindStats
)

// kindOf returns the kind of a line with message msg.
func kindOf(msg []byte) kind {
	switch string(msg) {
	case msgPinned:
		return kindPinned
	case msgUnpinned:
		return kindUnpinned
	case msgRDS:
		return kindRDS
	case msgListening:
		return kindListening
	case msgStats:
		return kindStats
	}
	return kindOther
}

// entry is a decoded log line of one of the kinds the report reads. Fields
// the line lacks, or has with another JSON type, are zero. Its byte slices
// point into the line or the decoder's buffers: they are valid until the
// next decode.
type entry struct {
	kind kind
	ts   time.Time // zero when missing or unreadable

	clientID    uint64
	hasClientID bool

	reason, detail, digest, hint, initQuery []byte
	db, user                                []byte

	pinnedFor    time.Duration
	hasPinnedFor bool
	transactions int64

	clients, clientsPinned, clientsWaiting, serverConns int64
}

var (
	keyMsg = []byte(`"msg"`)
	keyTS  = []byte(`"ts"`)
)

// classify is the fast path every line takes: it finds the "msg" key and
// tells whether its value is one of the messages the report reads, without
// decoding the line. It may say yes for a line whose top-level message is
// another (a nested "msg" key); decode checks.
func classify(b []byte) kind {
	found := false
	for i := 0; ; {
		j := bytes.Index(b[i:], keyMsg)
		if j < 0 {
			break
		}
		v, ok := valueAfterKey(b[i+j+len(keyMsg):])
		i += j + len(keyMsg)
		if !ok {
			continue
		}
		found = true
		if len(v) < 2 || v[0] != '"' {
			continue
		}
		// The messages hold no character JSON escapes, so their encoding
		// is their text between quotes.
		if end := bytes.IndexByte(v[1:], '"'); end >= 0 {
			if k := kindOf(v[1 : 1+end]); k != kindOther {
				return k
			}
		}
	}
	if found {
		return kindOther
	}
	return kindNotJSON
}

// valueAfterKey skips the blanks and the colon after a quoted key and
// returns the rest of the line from its value, or false if no colon
// follows (the quoted text was a value, not a key).
func valueAfterKey(b []byte) ([]byte, bool) {
	b = skipBlanks(b)
	if len(b) == 0 || b[0] != ':' {
		return nil, false
	}
	return skipBlanks(b[1:]), true
}

func skipBlanks(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}

// rawTS returns the value of the first "ts" key of a line as it is
// written: the text between the quotes of a string, or a number. zap writes
// ts second, so this is its time stamp; nil if there is none.
func rawTS(b []byte) []byte {
	for i := 0; ; {
		j := bytes.Index(b[i:], keyTS)
		if j < 0 {
			return nil
		}
		v, ok := valueAfterKey(b[i+j+len(keyTS):])
		i += j + len(keyTS)
		if !ok || len(v) == 0 {
			continue
		}
		if v[0] == '"' {
			end := bytes.IndexByte(v[1:], '"')
			if end < 0 {
				return nil
			}
			return v[1 : 1+end]
		}
		end := 0
		for end < len(v) && (v[end] >= '0' && v[end] <= '9' || v[end] == '.' || v[end] == '-' || v[end] == '+' || v[end] == 'e' || v[end] == 'E') {
			end++
		}
		return v[:end]
	}
}

// tsLayouts are the time stamp spellings read: zap's ISO8601 encoder
// (pgpoolx's), and RFC 3339 as other encoders and log shippers write it.
// Parsing takes fractions of a second the layouts do not show.
var tsLayouts = []string{"2006-01-02T15:04:05Z0700", time.RFC3339}

// parseTS reads a time stamp returned by rawTS: ISO8601 or RFC 3339 text, or
// a number of seconds since the epoch (zap's default encoder), taken as
// milliseconds, microseconds or nanoseconds when too large for seconds
// (zap's other epoch encoders).
func parseTS(raw []byte) (time.Time, bool) {
	if len(raw) == 0 {
		return time.Time{}, false
	}
	if raw[0] >= '0' && raw[0] <= '9' && !bytes.ContainsAny(raw, "T:") {
		if n, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
			switch {
			case n >= 1e17:
				return time.Unix(0, n), true
			case n >= 1e14:
				return time.UnixMicro(n), true
			case n >= 1e11:
				return time.UnixMilli(n), true
			}
			return time.Unix(n, 0), true
		}
		f, err := strconv.ParseFloat(string(raw), 64)
		if err != nil || f < 0 || f >= 1e11 {
			return time.Time{}, false
		}
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(frac*1e9)), true
	}
	s := string(raw)
	for _, layout := range tsLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// parseDuration reads pinned_for: seconds as a number (zap's default
// duration encoding) or a Go duration string ("840ms", zap's string
// encoding).
func parseDuration(raw []byte) (time.Duration, bool) {
	if len(raw) == 0 {
		return 0, false
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return 0, false
		}
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return 0, false
		}
		return d, true
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || !(f >= 0 && f <= maxSeconds) {
		return 0, false
	}
	return time.Duration(f * float64(time.Second)), true
}

// maxSeconds is the longest duration a time.Duration holds, in seconds.
const maxSeconds = float64(math.MaxInt64 / int64(time.Second))

// isOurLogger tells whether a zap logger name is pgpoolx's ("pgpoolx",
// "pgpoolx.client" ...), so that other programs' lines in a shared log
// ("listening" is a common message) are left alone.
func isOurLogger(name []byte) bool {
	return string(name) == "pgpoolx" || bytes.HasPrefix(name, []byte("pgpoolx."))
}

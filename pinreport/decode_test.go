package pinreport

import (
	"bytes"
	"encoding/json"
	"strconv"
	"testing"
	"time"
)

// flatEntry is an entry with strings, to compare.
type flatEntry struct {
	kind                                    kind
	ts                                      time.Time
	clientID                                uint64
	hasClientID                             bool
	reason, detail, digest, hint, initQuery string
	db, user                                string
	pinnedFor                               time.Duration
	hasPinnedFor                            bool
	transactions                            int64
	clients, clientsPinned, clientsWaiting  int64
	serverConns                             int64
}

func flat(e entry) flatEntry {
	return flatEntry{
		kind: e.kind, ts: e.ts, clientID: e.clientID, hasClientID: e.hasClientID,
		reason: string(e.reason), detail: string(e.detail), digest: string(e.digest), hint: string(e.hint),
		initQuery: string(e.initQuery), db: string(e.db), user: string(e.user),
		pinnedFor: e.pinnedFor, hasPinnedFor: e.hasPinnedFor, transactions: e.transactions,
		clients: e.clients, clientsPinned: e.clientsPinned, clientsWaiting: e.clientsWaiting, serverConns: e.serverConns,
	}
}

func (e flatEntry) equal(o flatEntry) bool {
	ets, ots := e.ts, o.ts
	e.ts, o.ts = time.Time{}, time.Time{}
	return e == o && ets.Equal(ots)
}

// referenceDecode decodes a line of valid JSON with encoding/json, as
// decoder.decode should: the oracle of FuzzLine.
func referenceDecode(b []byte, k kind) flatEntry {
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if dec.Decode(&m) != nil || m == nil {
		return flatEntry{kind: kindUndecodable}
	}
	str := func(key string) (string, bool) { s, ok := m[key].(string); return s, ok }
	num := func(key string) int64 {
		n, ok := m[key].(json.Number)
		if !ok {
			return 0
		}
		i, err := strconv.ParseInt(string(n), 10, 64)
		if err != nil {
			return 0
		}
		return i
	}
	msg, ok := str("msg")
	if logger, isStr := str("logger"); !ok || kindOf([]byte(msg)) != k || isStr && !isOurLogger([]byte(logger)) {
		return flatEntry{kind: kindOther}
	}
	e := flatEntry{kind: k}
	e.reason, _ = str("reason")
	e.detail, _ = str("detail")
	e.digest, _ = str("digest")
	e.hint, _ = str("hint")
	e.initQuery, _ = str("init_query")
	e.db, _ = str("db")
	e.user, _ = str("user")
	if n, ok := m["client_id"].(json.Number); ok {
		if id, err := strconv.ParseUint(string(n), 10, 64); err == nil {
			e.clientID, e.hasClientID = id, true
		}
	}
	if v, ok := m["pinned_for"]; ok {
		raw, _ := json.Marshal(v)
		e.pinnedFor, e.hasPinnedFor = parseDuration(raw)
	}
	switch ts := m["ts"].(type) {
	case string:
		e.ts, _ = parseTS([]byte(ts))
	case json.Number:
		e.ts, _ = parseTS([]byte(ts))
	}
	e.transactions = num("transactions")
	e.clients = num("clients")
	e.clientsPinned = num("clients_pinned")
	e.clientsWaiting = num("clients_waiting")
	e.serverConns = num("server_conns")
	return e
}

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		name string
		line string
		want flatEntry
	}{
		{
			name: "pinned",
			line: pinnedLine(time.Second, 7, "listen", "listen ch"),
			want: flatEntry{kind: kindPinned, ts: t0.Add(time.Second), clientID: 7, hasClientID: true,
				reason: "listen", detail: "detail of listen", digest: "listen ch", hint: "hint for listen", db: "appdb", user: "app"},
		},
		{
			name: "unpinned",
			line: unpinnedLine(0, 7, "listen", 1500*time.Millisecond, 3),
			want: flatEntry{kind: kindUnpinned, ts: t0, clientID: 7, hasClientID: true, reason: "listen",
				db: "appdb", user: "app", pinnedFor: 1500 * time.Millisecond, hasPinnedFor: true, transactions: 3},
		},
		{
			name: "stats",
			line: statsLine(0, "appdb", 40, 2, 1, 5),
			want: flatEntry{kind: kindStats, ts: t0, db: "appdb", user: "app", clients: 40, clientsPinned: 2, clientsWaiting: 1, serverConns: 5},
		},
		{
			name: "escapes",
			line: `{"msg":"session pinned","digest":"select \"a\\b\" from t where x = \u0024\u00e9\ud83d\ude00\t/","reason":"\ud800"}`,
			want: flatEntry{kind: kindPinned, digest: "select \"a\\b\" from t where x = $é😀\t/", reason: "\uFFFD"},
		},
		{
			name: "fields of the wrong type are left out",
			line: `{"msg":"session unpinned","client_id":"7","reason":["x"],"pinned_for":true,"transactions":2, "db": null, "clients": 1.5}`,
			want: flatEntry{kind: kindUnpinned, transactions: 2},
		},
		{
			name: "duplicate keys: the last",
			line: `{"msg":"other","msg":"session pinned","reason":"a","reason":"b"}`,
			want: flatEntry{kind: kindPinned, reason: "b"},
		},
		{
			name: "nested values skipped",
			line: `{"msg":"session pinned","x":{"reason":"no","y":["}",{"z":"]"}]},"reason":"yes"}`,
			want: flatEntry{kind: kindPinned, reason: "yes"},
		},
		{
			name: "duration as a string",
			line: `{"msg":"session unpinned","client_id":1,"pinned_for":"840ms"}`,
			want: flatEntry{kind: kindUnpinned, clientID: 1, hasClientID: true, pinnedFor: 840 * time.Millisecond, hasPinnedFor: true},
		},
		{
			name: "negative or huge client id",
			line: `{"msg":"session pinned","client_id":-1,"transactions":-9223372036854775808,"clients":9223372036854775808}`,
			want: flatEntry{kind: kindPinned, transactions: -9223372036854775808},
		},
		{
			name: "largest client id",
			line: `{"msg":"session pinned","client_id":18446744073709551615}`,
			want: flatEntry{kind: kindPinned, clientID: 18446744073709551615, hasClientID: true},
		},
		{
			name: "another program's listening",
			line: `{"logger":"webserver","msg":"listening","addr":":80"}`,
			want: flatEntry{kind: kindOther},
		},
		{
			name: "no logger name",
			line: `{"msg":"listening"}`,
			want: flatEntry{kind: kindListening},
		},
		{
			name: "nested msg is not the line's",
			line: `{"msg":"other","x":{"msg":"listening"}}`,
			want: flatEntry{kind: kindOther},
		},
		{
			name: "epoch seconds",
			line: `{"ts":1772355600.5,"msg":"listening"}`,
			want: flatEntry{kind: kindListening, ts: time.Unix(1772355600, 5e8)},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var d decoder
			b := []byte(tc.line)
			got := flat(d.decode(b, classify(b)))
			if !got.equal(tc.want) {
				t.Errorf("decode(%s)\n = %+v\nwant %+v", tc.line, got, tc.want)
			}
			if ref := referenceDecode(b, classify(b)); !ref.equal(tc.want) {
				t.Errorf("encoding/json decodes it as\n%+v", ref)
			}
		})
	}
}

func TestDecodeBroken(t *testing.T) {
	for _, line := range []string{
		`{"msg":"session pinned","client_id":`,
		`{"msg":"session pinned","client_id":1`,
		`{"msg":"session pinned",}`,
		`{"msg":"session pinned"} x`,
		`{"msg":"session pinned","x":[1,2}`,
		`{"msg":"session pinned","x":"unterminated}`,
		`{"msg":"session pinned" "x":1}`,
		`{"msg":"session pinned","x"}`,
		`{"msg"`,
		`["msg","session pinned"]`,
	} {
		var d decoder
		b := []byte(line)
		if got := d.decode(b, kindPinned); got.kind != kindUndecodable {
			t.Errorf("decode(%s) = kind %d, want undecodable", line, got.kind)
		}
	}
}

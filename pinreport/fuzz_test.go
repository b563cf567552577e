package pinreport

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzLine feeds arbitrary lines to the parser and the whole report: no
// input may panic, the decoder must read valid JSON as encoding/json does,
// and the counts must add up.
func FuzzLine(f *testing.F) {
	for _, s := range []string{
		pinnedLine(0, 1, "listen", listenDigest),
		unpinnedLine(time.Second, 1, "listen", time.Second, 2),
		rdsLine(0, "session_setting", "set work_mem = $1", "SET work_mem TO '8MB'"),
		listeningLine(0),
		statsLine(0, "appdb", 3, 1, 0, 2),
		otherLine(0),
		`{"msg" : "session pinned", "client_id": 18446744073709551615, "ts": 1e10}`,
		`{"msg":"session unpinned","client_id":1,"pinned_for":"-3s"}`,
		`{"msg":"session pinned","x":{"msg":"listening"}}`,
		`{"ts":"2026-03-01T10:00:00.000+0100","msg":"would pin on rds proxy","init_query":"SET TIME ZONE 'UTC'"}`,
		"\x00\xff{\"msg\":\"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		b := []byte(in)
		k := classify(b)
		if k >= kindPinned {
			var d decoder
			e := flat(d.decode(b, k))
			if e.kind != k && e.kind != kindOther && e.kind != kindUndecodable {
				t.Fatalf("classify says %d, decode %d", k, e.kind)
			}
			// On valid JSON, the decoder reads what encoding/json reads
			// (which makes invalid UTF-8 valid: compare only valid).
			if json.Valid(b) && utf8.Valid(b) {
				if ref := referenceDecode(b, k); !e.equal(ref) {
					t.Fatalf("decode\n %+v\nencoding/json\n %+v", e, ref)
				}
			}
		}
		rawTS(b)

		// The input as a log, twice with a restart between, at most
		// three open pins and two rows.
		log := in + "\n" + listeningLine(0) + "\n" + in
		r, err := Read(strings.NewReader(log), Options{MaxRows: 2, MaxOpenPins: 3, MaxLineBytes: 4096})
		if err != nil {
			t.Fatal(err)
		}
		var pins, open int64
		for _, row := range r.Rows {
			if row.PinnedTime < 0 || row.Open > row.Pins {
				t.Fatalf("row %+v", row)
			}
			if row.Digest != NoPinLine {
				pins += row.Pins
			}
			open += row.Open
		}
		if pins != r.Pins || open != r.Open || r.Open > r.Pins {
			t.Fatalf("rows count %d pins, %d open; report %d and %d", pins, open, r.Pins, r.Open)
		}
		if len(r.Rows) > 2+maxReasons+1 {
			t.Fatalf("%d rows with MaxRows 2", len(r.Rows))
		}
		var out bytes.Buffer
		if err := WriteText(&out, r, WriteOptions{RDSProxy: true}); err != nil {
			t.Fatal(err)
		}
		out.Reset()
		if err := WriteJSON(&out, r, WriteOptions{RDSProxy: true}); err != nil {
			t.Fatal(err)
		}
		if !json.Valid(out.Bytes()) {
			t.Fatalf("invalid JSON:\n%s", out.String())
		}
	})
}

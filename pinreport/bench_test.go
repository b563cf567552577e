package pinreport

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

// benchLog returns about size bytes of log. With pinsOnly every line is a
// pin or its end, which the report decodes in full; otherwise one line in
// ten is, among the other lines pgpoolx writes at debug level.
func benchLog(size int, pinsOnly bool) []byte {
	var b bytes.Buffer
	reasons := []string{"session_advisory_lock", "listen", "temp_table", "sql_prepared_statement"}
	for i := 0; b.Len() < size; i++ {
		d := time.Duration(i) * time.Millisecond
		client := i % 500
		switch {
		case i%10 == 0 || pinsOnly && i%2 == 0:
			reason := reasons[i%len(reasons)]
			b.WriteString(pinnedLine(d, client, reason, fmt.Sprintf("select pg_advisory_lock($1) /* job %d */", i%5000)))
		case i%10 == 1 || pinsOnly:
			b.WriteString(unpinnedLine(d, client-1, reasons[(i-1)%len(reasons)], 40*time.Millisecond, 3))
		case i%1000 == 2:
			b.WriteString(statsLine(d, "appdb", 400, 12, 0, 20))
		case i%1000 == 3:
			b.WriteString(rdsLine(d, "session_setting", fmt.Sprintf("set x%d to $1", i%100), fmt.Sprintf("SET x%d TO 1", i%100)))
		default:
			b.WriteString(otherLine(d))
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// BenchmarkRead measures the throughput (MB/s) of a whole report over a
// log in memory.
func BenchmarkRead(b *testing.B) {
	for _, bb := range []struct {
		name     string
		pinsOnly bool
	}{
		{"mixed", false},
		{"pins_only", true},
	} {
		log := benchLog(16<<20, bb.pinsOnly)
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(log)))
			for b.Loop() {
				if _, err := Read(bytes.NewReader(log), Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkLine measures one line of each kind, for allocations.
func BenchmarkLine(b *testing.B) {
	for _, bb := range []struct{ name, line string }{
		{"other", otherLine(0)},
		{"pinned", pinnedLine(0, 1, "listen", listenDigest)},
		{"unpinned", unpinnedLine(0, 1, "listen", time.Second, 1)},
	} {
		b.Run(bb.name, func(b *testing.B) {
			a := NewAggregator(Options{})
			line := []byte(bb.line)
			b.ReportAllocs()
			b.SetBytes(int64(len(line)))
			for b.Loop() {
				a.Line(line)
			}
		})
	}
}

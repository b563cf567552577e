package admin

import (
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// Type OIDs of the console's columns.
const (
	oidText    = 25
	oidInt8    = 20
	oidNumeric = 1700
)

// Column is one column of a result set.
type Column struct {
	Name string
	OID  uint32
}

func text(name string) Column    { return Column{name, oidText} }
func integer(name string) Column { return Column{name, oidInt8} }
func numeric(name string) Column { return Column{name, oidNumeric} }

// Result is a command's answer: rows (SHOW) or only a command tag.
type Result struct {
	Columns []Column
	Rows    [][]string // NULL is not used: a missing value is ""
	Tag     string
	// After, if set, runs once the answer has been sent.
	After func()
}

// appendTo encodes the result as RowDescription, DataRows and
// CommandComplete.
func (r *Result) appendTo(dst []byte) []byte {
	if r.Columns != nil {
		desc := pgproto3.RowDescription{Fields: make([]pgproto3.FieldDescription, len(r.Columns))}
		for i, c := range r.Columns {
			size := int16(-1)
			if c.OID == oidInt8 {
				size = 8
			}
			desc.Fields[i] = pgproto3.FieldDescription{Name: []byte(c.Name), DataTypeOID: c.OID, DataTypeSize: size, TypeModifier: -1}
		}
		dst, _ = desc.Encode(dst)
		for _, row := range r.Rows {
			values := make([][]byte, len(row))
			for i, v := range row {
				values[i] = []byte(v)
			}
			dst, _ = (&pgproto3.DataRow{Values: values}).Encode(dst)
		}
	}
	dst, _ = (&pgproto3.CommandComplete{CommandTag: []byte(r.Tag)}).Encode(dst)
	return dst
}

func itoa[T ~int | ~int64 | ~uint64 | ~uint32](v T) string { return strconv.FormatInt(int64(v), 10) }

func micros(d time.Duration) string { return strconv.FormatInt(d.Microseconds(), 10) }

func float(f float64) string { return strconv.FormatFloat(f, 'f', 0, 64) }

// timestamp formats a time as PgBouncer does; the zero time is "".
func timestamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func boolean(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// since returns the seconds elapsed since t.
func since(t time.Time) float64 { return time.Since(t).Seconds() }

package wire

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
)

// encoder is any pgproto3 message.
type encoder interface{ Encode([]byte) ([]byte, error) }

// encode concatenates the wire form of msgs.
func encode(tb testing.TB, msgs ...encoder) []byte {
	tb.Helper()
	var out []byte
	for _, m := range msgs {
		var err error
		if out, err = m.Encode(out); err != nil {
			tb.Fatalf("encode %T: %v", m, err)
		}
	}
	return out
}

// serverReply is what PostgreSQL answers a query with: a RowDescription of
// cols text columns, rows DataRows whose values are about valueLen bytes,
// CommandComplete and ReadyForQuery.
func serverReply(tb testing.TB, cols, rows, valueLen int) []byte {
	fields := make([]pgproto3.FieldDescription, cols)
	values := make([][]byte, cols)
	for i := range fields {
		fields[i] = pgproto3.FieldDescription{
			Name: []byte(fmt.Sprintf("column_%d", i)), TableOID: 16384, TableAttributeNumber: uint16(i + 1),
			DataTypeOID: 25, DataTypeSize: -1, TypeModifier: -1,
		}
		values[i] = bytes.Repeat([]byte{'a' + byte(i%26)}, valueLen+i%7)
	}
	msgs := []encoder{&pgproto3.RowDescription{Fields: fields}}
	for range rows {
		msgs = append(msgs, &pgproto3.DataRow{Values: values})
	}
	msgs = append(msgs,
		&pgproto3.CommandComplete{CommandTag: []byte(fmt.Sprintf("SELECT %d", rows))},
		&pgproto3.ReadyForQuery{TxStatus: TxIdle})
	return encode(tb, msgs...)
}

// BenchmarkRelayServerReply frames a server's reply the way the proxy's
// server-to-client relay does: the few messages it acts on are read whole
// and written again, everything else is forwarded by header, and the
// client's writer is flushed at ReadyForQuery.
func BenchmarkRelayServerReply(b *testing.B) {
	for _, bb := range []struct {
		name                   string
		cols, rows, valueBytes int
	}{
		{"pgbench_select_1row", 1, 1, 5},
		{"orm_10cols_100rows", 10, 100, 20},
		{"wide_row_1MiB", 1, 1, 1 << 20},
	} {
		b.Run(bb.name, func(b *testing.B) {
			benchFraming(b, serverReply(b, bb.cols, bb.rows, bb.valueBytes),
				func(typ byte) bool { return typ == ReadyForQuery || typ == ErrorResponse || typ == ParameterStatus },
				func(typ byte) bool { return typ == ReadyForQuery })
		})
	}
}

// BenchmarkClientMessages frames what clients send per transaction the way
// the proxy's session loop does: statement-carrying messages (Query,
// Parse, Bind, Describe, Close) are read whole, the rest is forwarded by
// header, and the server's writer is flushed at Sync or Query.
func BenchmarkClientMessages(b *testing.B) {
	const pgbenchSelect = "SELECT abalance FROM pgbench_accounts WHERE aid = $1;"
	railsSelect := `SELECT "users".* FROM "users" WHERE "users"."id" = $1 LIMIT $2`
	for _, bb := range []struct {
		name string
		msgs []encoder
	}{
		{"simple_query", []encoder{
			&pgproto3.Query{String: strings.Replace(pgbenchSelect, "$1", "4242", 1)},
		}},
		// pgx's statement cache after the first use: Bind of a named
		// statement, Describe portal, Execute, Sync.
		{"pgx_cached_statement", []encoder{
			&pgproto3.Bind{PreparedStatement: "stmtcache_3f1a9c2e8d7b6a5f", ParameterFormatCodes: []int16{1},
				Parameters: [][]byte{{0, 0, 16, 146}}, ResultFormatCodes: []int16{1}},
			&pgproto3.Describe{ObjectType: 'P'},
			&pgproto3.Execute{},
			&pgproto3.Sync{},
		}},
		// ActiveRecord with prepared_statements: Parse a1, Describe, Sync,
		// then Bind, Execute, Sync.
		{"rails_prepare_and_execute", []encoder{
			&pgproto3.Parse{Name: "a1", Query: railsSelect},
			&pgproto3.Describe{ObjectType: 'S', Name: "a1"},
			&pgproto3.Sync{},
			&pgproto3.Bind{PreparedStatement: "a1", Parameters: [][]byte{[]byte("42"), []byte("1")}},
			&pgproto3.Execute{},
			&pgproto3.Sync{},
		}},
		// pgbench -M extended: unnamed Parse, Bind, Describe, Execute, Sync.
		{"pgbench_extended", []encoder{
			&pgproto3.Parse{Query: pgbenchSelect},
			&pgproto3.Bind{Parameters: [][]byte{[]byte("4242")}},
			&pgproto3.Describe{ObjectType: 'P'},
			&pgproto3.Execute{},
			&pgproto3.Sync{},
		}},
	} {
		b.Run(bb.name, func(b *testing.B) {
			benchFraming(b, encode(b, bb.msgs...),
				func(typ byte) bool {
					return typ == Query || typ == Parse || typ == Bind || typ == Describe || typ == Close
				},
				func(typ byte) bool { return typ == Sync || typ == Query })
		})
	}
}

// benchFraming reads stream message by message as the proxy does: a
// message readWhole picks is read into a reused buffer and written again
// (the proxy looks inside it), any other is forwarded by its header, and
// the destination is flushed after a message flushAfter picks.
func benchFraming(b *testing.B, stream []byte, readWhole, flushAfter func(typ byte) bool) {
	src := bytes.NewReader(stream)
	br := bufio.NewReaderSize(src, 16<<10)
	r := NewReader(br, 0)
	w := bufio.NewWriterSize(io.Discard, 16<<10)
	buf := make([]byte, 0, 1024)
	var scratch []byte
	b.ReportAllocs()
	b.SetBytes(int64(len(stream)))
	for b.Loop() {
		src.Reset(stream)
		br.Reset(src)
		for {
			typ, _, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if readWhole(typ) {
				body, err := r.ReadBody(buf[:0])
				if err != nil {
					b.Fatal(err)
				}
				scratch = append(AppendHeader(scratch[:0], typ, len(body)), body...)
				w.Write(scratch)
			} else if err := r.Forward(w); err != nil {
				b.Fatal(err)
			}
			if flushAfter(typ) {
				w.Flush()
			}
		}
	}
}

package pinning

import (
	"strings"
	"testing"
)

// select4K is a 4 KiB SELECT of the kind an ORM sends: many columns,
// joins, a long IN list and string literals.
var select4K = func() string {
	var b strings.Builder
	b.WriteString(`SELECT "users"."id", "users"."email", "users"."created_at", "orders"."total", `)
	for i := 0; b.Len() < 2000; i++ {
		b.WriteString(`COALESCE("orders"."note", 'n/a') AS note_`)
		b.WriteString(strings.Repeat("x", i%7))
		b.WriteString(", ")
	}
	b.WriteString(`1 FROM "users" INNER JOIN "orders" ON "orders"."user_id" = "users"."id" WHERE "users"."email" = 'someone@example.com' AND "orders"."id" IN (`)
	for i := 0; b.Len() < 4000; i++ {
		b.WriteString("1234567, ")
	}
	b.WriteString(`0) ORDER BY "orders"."created_at" DESC LIMIT 25 /* app:web */`)
	for b.Len() < 4096 {
		b.WriteByte(' ')
	}
	return b.String()
}()

const railsSet = "SET SESSION timezone TO 'UTC'"

func BenchmarkClassify(b *testing.B) {
	for _, bb := range []struct{ name, sql string }{
		{"rails_set", railsSet},
		{"rails_set_uppercase_name", "SET client_min_messages TO 'warning'"},
		{"select_4k", select4K},
		{"advisory_lock", "SELECT pg_try_advisory_lock(4248207398240923)"},
	} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bb.sql)))
			for b.Loop() {
				_ = Classify(bb.sql)
			}
		})
	}
}

func BenchmarkAnalyzeRailsConnect(b *testing.B) {
	sql := "SET client_encoding TO unicode; SET statement_timeout TO 300000; SET intervalstyle TO iso_8601; " +
		"SET client_min_messages TO warning; SET standard_conforming_strings TO on; SET timezone TO utc"
	b.ReportAllocs()
	b.SetBytes(int64(len(sql)))
	for b.Loop() {
		for st := range Analyze(sql) {
			_ = st
		}
	}
}

func BenchmarkDigest(b *testing.B) {
	for _, bb := range []struct{ name, sql string }{
		{"rails_set", railsSet},
		{"select_4k", select4K},
	} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bb.sql)))
			buf := make([]byte, 0, 8192)
			for b.Loop() {
				buf = AppendDigest(buf[:0], bb.sql)
			}
		})
	}
}

func BenchmarkLexer(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(select4K)))
	for b.Loop() {
		lx := NewLexer(select4K)
		for lx.Next().Kind != EOF {
		}
	}
}

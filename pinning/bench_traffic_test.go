package pinning

import "testing"

// railsTraffic is what ActiveRecord (7.x, PostgreSQL adapter) sends in a
// typical request: its connection setup, a transaction with savepoints,
// reads and writes with bind parameters, and the schema queries it runs
// when a model is first used.
var railsTraffic = []string{
	"SET client_min_messages TO 'warning'",
	"SET standard_conforming_strings = on",
	"SET SESSION timezone TO 'UTC'",
	"SHOW search_path",
	`SELECT "schema_migrations"."version" FROM "schema_migrations" ORDER BY "schema_migrations"."version" ASC`,
	`SELECT a.attname, format_type(a.atttypid, a.atttypmod), pg_get_expr(d.adbin, d.adrelid), a.attnotnull, a.atttypid, a.atttypmod, c.collname, col_description(a.attrelid, a.attnum) AS comment, attgenerated as attgenerated FROM pg_attribute a LEFT JOIN pg_attrdef d ON a.attrelid = d.adrelid AND a.attnum = d.adnum LEFT JOIN pg_type t ON a.atttypid = t.oid LEFT JOIN pg_collation c ON a.attcollation = c.oid AND a.attcollation <> t.typcollation WHERE a.attrelid = '"users"'::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
	"BEGIN",
	`SELECT "users".* FROM "users" WHERE "users"."id" = $1 LIMIT $2`,
	"SAVEPOINT active_record_1",
	`INSERT INTO "orders" ("user_id", "total", "note", "created_at", "updated_at") VALUES ($1, $2, $3, $4, $5) RETURNING "id"`,
	"RELEASE SAVEPOINT active_record_1",
	`UPDATE "users" SET "orders_count" = COALESCE("orders_count", 0) + $1, "updated_at" = $2 WHERE "users"."id" = $3`,
	"COMMIT",
	`SELECT "orders".* FROM "orders" WHERE "orders"."user_id" = $1 AND "orders"."created_at" >= $2 ORDER BY "orders"."created_at" DESC LIMIT $3 OFFSET $4`,
	`SELECT COUNT(*) FROM "orders" WHERE "orders"."user_id" = $1 AND ("orders"."note" ILIKE '%gift%' OR "orders"."note" IS NULL)`,
	"DEALLOCATE a1",
}

// pgxTraffic is what a Go service on pgx sends: lower-case hand-written
// SQL with $n parameters, explicit transactions, a CTE, a batch of
// statements in one simple-protocol string, and pgx's own statements.
var pgxTraffic = []string{
	"select id, name, email, created_at from accounts where id = $1",
	"begin isolation level repeatable read",
	"select balance from wallets where account_id = $1 for update",
	"update wallets set balance = balance - $1, updated_at = now() where account_id = $2",
	"insert into ledger (account_id, amount, kind, meta) values ($1, $2, 'debit', $3::jsonb) returning id",
	"commit",
	`with recent as (select account_id, sum(amount) as total from ledger where created_at > now() - interval '1 day' group by account_id) select a.id, r.total from accounts a join recent r on r.account_id = a.id where r.total > $1 order by r.total desc limit 100`,
	"select pg_advisory_xact_lock($1)",
	"insert into events (id, payload) values ($1, $2); update counters set n = n + 1 where name = 'events'",
	"deallocate all",
	"select 1",
}

// BenchmarkAnalyzeTraffic runs every statement of a realistic client's
// traffic through Analyze, as the proxy does for each Query and Parse;
// ns/op is for the whole list, so divide by its length for a statement.
func BenchmarkAnalyzeTraffic(b *testing.B) {
	for _, bb := range []struct {
		name    string
		traffic []string
	}{
		{"rails", railsTraffic},
		{"pgx", pgxTraffic},
	} {
		b.Run(bb.name, func(b *testing.B) {
			var bytes int64
			for _, sql := range bb.traffic {
				bytes += int64(len(sql))
			}
			b.ReportAllocs()
			b.SetBytes(bytes)
			n := 0
			for b.Loop() {
				for _, sql := range bb.traffic {
					for st := range Analyze(sql) {
						if st.Kind != Other {
							n++
						}
					}
				}
			}
			if n == 0 {
				b.Fatal("no statement had an effect: the traffic is not being analysed")
			}
		})
	}
}

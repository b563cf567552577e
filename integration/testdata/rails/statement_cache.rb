# What ActiveRecord's prepared statement cache relies on, through pgpoolx,
# for TestRailsStatementCacheDeallocate.
#
# The PostgreSQL adapter drops its prepared statements with SQL,
# "DEALLOCATE a1" (StatementPool#dealloc): when its per-connection cache is
# full (statement_limit, 1000 by default), in clear_cache! and on
# disconnect. It ignores errors there, so this checks what it relies on
# directly. The statements are protocol-level ones (pg's prepare, what the
# adapter uses), which pgpoolx renames on the server. The last line on
# stdout is a JSON summary.
#
# Usage: DATABASE_URL=postgres://... ruby statement_cache.rb

require "json"
require "active_record"

$stdout.sync = true

# A Rails app sets both (config.encoding, "utf-8" by default); with
# default_internal set, the pg gem sends SET client_encoding at connect.
Encoding.default_external = Encoding::UTF_8
Encoding.default_internal = Encoding::UTF_8

ActiveRecord::Base.logger = nil
ActiveRecord::Base.establish_connection(
  url: ENV.fetch("DATABASE_URL"),
  pool: 1,
  prepared_statements: true,
  variables: { statement_timeout: 12345 },
)

errors = []
checks = 0

# The pg gem, as dealloc uses it: DEALLOCATE frees the name for reuse.
ActiveRecord::Base.connection_pool.with_connection do |conn|
  conn.create_table(:gizmos, force: true) { |t| t.string :name, null: false }
  (1..4).each { |k| conn.execute("INSERT INTO gizmos (id, name) VALUES (#{k}, 'seed-#{k}')") }

  raw = conn.raw_connection
  raw.prepare("rails_dealloc_check", "SELECT $1::int AS v")
  raw.exec_prepared("rails_dealloc_check", [1])
  checks += 1
  begin
    raw.query("DEALLOCATE rails_dealloc_check")
  rescue PG::Error => e
    errors << "DEALLOCATE of a statement the client prepared: #{e.class}: #{e.message.strip}"
  end
  checks += 1
  begin
    raw.prepare("rails_dealloc_check", "SELECT $1::int + 1 AS v")
    # The adapter's result type map may decode the value.
    v = raw.exec_prepared("rails_dealloc_check", [1]).getvalue(0, 0).to_s
    errors << "the name, prepared again after DEALLOCATE, ran #{v}, want 2" unless v == "2"
    raw.query("DEALLOCATE rails_dealloc_check")
  rescue PG::Error => e
    errors << "prepare a name again after DEALLOCATE: #{e.class}: #{e.message.strip}"
  end
end

# The cache evicting inside a transaction, as a long-running app with more
# distinct queries per connection than statement_limit does. A failed
# DEALLOCATE there aborts the app's transaction.
class SmallCache < ActiveRecord::Base
  self.abstract_class = true
end
SmallCache.establish_connection(
  url: ENV.fetch("DATABASE_URL"),
  pool: 1,
  prepared_statements: true,
  statement_limit: 2,
  variables: { statement_timeout: 12345 },
)
class Gizmo < SmallCache; end
checks += 1
begin
  SmallCache.transaction do
    got = [
      Gizmo.where(id: 1).pick(:name),
      Gizmo.where(name: "seed-2").pick(:id),
      Gizmo.where(id: 3, name: "seed-3").pick(:name),
      Gizmo.where(id: 4).pick(:name),
    ]
    want = ["seed-1", 2, "seed-3", "seed-4"]
    errors << "queries in a transaction with evictions returned #{got.inspect}, want #{want.inspect}" unless got == want
  end
rescue => e
  errors << "queries in a transaction with evictions (statement_limit: 2): #{e.class}: #{e.message.strip}"
end
SmallCache.connection_pool.disconnect!
ActiveRecord::Base.connection_pool.disconnect!

puts JSON.generate(checks: checks, errors: errors)

# A Rails-shaped workload through pgpoolx, run by TestRailsActiveRecord.
#
# It connects the way a Rails app does with DATABASE_URL and the adapter's
# defaults (prepared statements on, `variables:` from database.yml), then 20
# threads, each on its own connection, run model queries and check that
# their session settings are in effect. The last line on stdout is a JSON
# summary for the Go test; nothing here decides pass or fail.
#
# Usage: DATABASE_URL=postgres://... ruby workload.rb

require "json"
require "active_record"
require "concurrent"

$stdout.sync = true

# A Rails app sets both (config.encoding, "utf-8" by default); with
# default_internal set, the pg gem sends SET client_encoding at connect.
Encoding.default_external = Encoding::UTF_8
Encoding.default_internal = Encoding::UTF_8

THREADS = 20
ITERATIONS = 50
SEED_ROWS = 100
SHOW_EVERY = 5 # iterations between checks of the session settings

# What configure_connection in the PostgreSQL adapter sets on every new
# connection, as a Rails app with default settings would have it.
EXPECTED_SETTINGS = {
  "client_encoding" => "UTF8", # the pg gem, from Encoding.default_internal
  "statement_timeout" => "12345ms", # variables: in database.yml
  "client_min_messages" => "warning", # min_messages default
  "IntervalStyle" => "iso_8601",
  "TimeZone" => "UTC", # default_timezone :utc
  "standard_conforming_strings" => "on",
}.freeze

ActiveRecord::Base.logger = nil
ActiveRecord::Base.establish_connection(
  url: ENV.fetch("DATABASE_URL"),
  pool: THREADS,
  prepared_statements: true,
  variables: { statement_timeout: 12345 },
)

class Widget < ActiveRecord::Base; end

# Statements the adapter ran as named prepared statements, to show the test
# exercised them.
prepared = Concurrent::AtomicFixnum.new
ActiveSupport::Notifications.subscribe("sql.active_record") do |*, payload|
  prepared.increment if payload[:statement_name]
end

ActiveRecord::Base.connection_pool.with_connection do |conn|
  conn.create_table(:widgets, force: true) do |t|
    t.string :name, null: false
    t.integer :worker
    t.integer :n
  end
  Widget.reset_column_information
  Widget.insert_all!((1..SEED_ROWS).map { |k| { id: k, name: "seed-#{k}" } })
  conn.reset_pk_sequence!("widgets")
end

inserts_per_thread = (0...ITERATIONS).count { |i| i % 3 == 2 }
max_rows = SEED_ROWS + THREADS * inserts_per_thread

Result = Struct.new(:ops, :ok, :shows, :shows_ok, :inserts, :errors, :conn_id, :prepared_statements)

# Every thread checks out its connection before any starts working, so all
# THREADS client connections exist at once, as in a busy app server.
ready = Concurrent::CountDownLatch.new(THREADS)
threads = (0...THREADS).map do |t|
  Thread.new do
    r = Result.new(0, 0, 0, 0, 0, [], nil, nil)
    note = ->(what) { r.errors << "thread #{t}: #{what}" }
    begin
      conn = ActiveRecord::Base.connection
      r.conn_id = conn.object_id
      r.prepared_statements = conn.prepared_statements
      ready.count_down
      ready.wait(30) or note.("not all threads connected within 30s")
      ITERATIONS.times do |i|
        r.ops += 1
        begin
          case i % 3
          when 0
            k = (t * ITERATIONS + i) % SEED_ROWS + 1
            w = Widget.where(id: k).first
            if w&.name == "seed-#{k}"
              r.ok += 1
            else
              note.("iteration #{i}: Widget.where(id: #{k}).first = #{w.inspect}")
            end
          when 1
            c = Widget.count
            if c.between?(SEED_ROWS, max_rows)
              r.ok += 1
            else
              note.("iteration #{i}: Widget.count = #{c}, want #{SEED_ROWS}..#{max_rows}")
            end
          when 2
            name = "t#{t}-#{i}"
            got = Widget.transaction do
              w = Widget.create!(name: name, worker: t, n: i)
              Widget.where(id: w.id).pick(:name)
            end
            if got == name
              r.ok += 1
              r.inserts += 1
            else
              note.("iteration #{i}: inserted #{name.inspect}, read back #{got.inspect}")
            end
          end
        rescue => e
          note.("iteration #{i}: #{e.class}: #{e.message}")
        end
        next unless i % SHOW_EVERY == 0
        EXPECTED_SETTINGS.each do |name, want|
          r.shows += 1
          begin
            got = ActiveRecord::Base.connection.select_value("SHOW #{name}")
            if got == want
              r.shows_ok += 1
            else
              note.("iteration #{i}: SHOW #{name} = #{got.inspect}, want #{want.inspect}")
            end
          rescue => e
            note.("iteration #{i}: SHOW #{name}: #{e.class}: #{e.message}")
          end
        end
      end
    rescue => e
      note.("#{e.class}: #{e.message}")
    ensure
      ActiveRecord::Base.connection_pool.release_connection
    end
    r
  end
end
results = threads.map(&:value)
ActiveRecord::Base.connection_pool.disconnect!

errors = results.flat_map(&:errors)
puts JSON.generate(
  threads: THREADS,
  ops: results.sum(&:ops),
  ok: results.sum(&:ok),
  inserts: results.sum(&:inserts),
  shows: results.sum(&:shows),
  shows_ok: results.sum(&:shows_ok),
  connections: results.map(&:conn_id).compact.uniq.size,
  prepared_statements: results.all?(&:prepared_statements),
  prepared_executions: prepared.value,
  error_count: errors.size,
  errors: errors.first(20),
)

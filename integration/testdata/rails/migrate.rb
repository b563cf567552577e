# Runs the migrations in MIGRATIONS_DIR through pgpoolx the way
# `rails db:migrate` does, for TestRailsMigrationPinsAndUnpins.
#
# ActiveRecord takes a session-level advisory lock (pg_try_advisory_lock) on
# a connection of its own for the whole run, and releases it at the end.
# Right after each of those two statements returns, this script prints
# "PAUSE locked <id>" or "PAUSE unlocked <id>" and waits for a line on
# stdin, so the test can look at pgpoolx and PostgreSQL while the lock
# connection is still open. The last line on stdout is a JSON summary.
#
# Usage: DATABASE_URL=postgres://... MIGRATIONS_DIR=dir ruby migrate.rb

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
  pool: 5,
  prepared_statements: true,
  variables: { statement_timeout: 12345 },
)

pauses = []
# A timed subscriber runs in the thread that ran the statement, after it
# returned and before the migrator goes on: a place to wait without patching
# ActiveRecord.
ActiveSupport::Notifications.subscribe("sql.active_record") do |*, payload|
  point = case payload[:sql]
          when /\bpg_try_advisory_lock\((-?\d+)\)/ then "locked"
          when /\bpg_advisory_unlock\((-?\d+)\)/ then "unlocked"
          end
  next unless point
  pauses << point
  puts "PAUSE #{point} #{$1}"
  $stdin.gets or raise "stdin closed while paused at #{point}"
end

# As `rails db:migrate` finds them, from the configured migrations paths.
ActiveRecord::Migrator.migrations_paths = [ENV.fetch("MIGRATIONS_DIR")]
context = ActiveRecord::Base.connection.migration_context
pending = context.migrations.map(&:version) - context.get_all_versions
context.migrate
after = context.get_all_versions
ActiveRecord::Base.connection_pool.disconnect!

puts JSON.generate(
  pending: pending,
  migrated: after,
  pauses: pauses,
)

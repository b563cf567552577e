package pinning

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		sql  string
		want Statement // Text is not compared here
	}{
		// Settings.
		{"SET client_encoding TO 'unicode'", Statement{Kind: Set, Name: "client_encoding", Value: "unicode", ValueSQL: "'unicode'"}},
		{"SET statement_timeout = 300000", Statement{Kind: Set, Name: "statement_timeout", Value: "300000", ValueSQL: "300000"}},
		{"SET standard_conforming_strings = on", Statement{Kind: Set, Name: "standard_conforming_strings", Value: "on", ValueSQL: "on"}},
		{"SET intervalstyle = iso_8601", Statement{Kind: Set, Name: "intervalstyle", Value: "iso_8601", ValueSQL: "iso_8601"}},
		{"SET SESSION timezone TO 'UTC'", Statement{Kind: Set, Name: "timezone", Value: "UTC", ValueSQL: "'UTC'"}},
		{"set session TimeZone to UTC", Statement{Kind: Set, Name: "timezone", Value: "utc", ValueSQL: "UTC"}},
		{`SET "TimeZone" TO "UTC"`, Statement{Kind: Set, Name: "timezone", Value: "UTC", ValueSQL: `"UTC"`}},
		{"SET client_min_messages TO warning", Statement{Kind: Set, Name: "client_min_messages", Value: "warning", ValueSQL: "warning"}},
		{"SET search_path TO a, \"B\", 'c d'", Statement{Kind: Set, Name: "search_path", ValueSQL: "a, \"B\", 'c d'"}},
		{"SET work_mem = '64MB' ;", Statement{Kind: Set, Name: "work_mem", Value: "64MB", ValueSQL: "'64MB'"}},
		{"SET lock_timeout TO '5min'", Statement{Kind: Set, Name: "lock_timeout", Value: "5min", ValueSQL: "'5min'"}},
		{"SET extra_float_digits = -3", Statement{Kind: Set, Name: "extra_float_digits", Value: "-3", ValueSQL: "-3"}},
		{"SET extra_float_digits=-3", Statement{Kind: Set, Name: "extra_float_digits", Value: "-3", ValueSQL: "-3"}},
		{"SET extra_float_digits = - 3", Statement{Kind: Set, Name: "extra_float_digits", Value: "-3", ValueSQL: "- 3"}},
		{"SET seq_page_cost = +1.5", Statement{Kind: Set, Name: "seq_page_cost", Value: "1.5", ValueSQL: "+1.5"}},
		{"SET myapp.tenant = '42'", Statement{Kind: Set, Name: "myapp.tenant", Value: "42", ValueSQL: "'42'"}},
		{"SET MyApp.Tenant = '42'", Statement{Kind: Set, Name: "myapp.tenant", Value: "42", ValueSQL: "'42'"}},
		{`SET "MyApp" . "Tenant" = 42`, Statement{Kind: Set, Name: "myapp.tenant", Value: "42", ValueSQL: "42"}},
		{`SET "my.app" = 'x'`, Statement{Kind: Set, Name: "my.app", Value: "x", ValueSQL: "'x'"}},
		{"SET application_name = E'it\\'s'", Statement{Kind: Set, Name: "application_name", Value: "it's", ValueSQL: "E'it\\'s'"}},
		{"SET application_name = $$a;b$$", Statement{Kind: Set, Name: "application_name", Value: "a;b", ValueSQL: "$$a;b$$"}},
		{"SET application_name = U&'d!0061t' UESCAPE '!'", Statement{Kind: Set, Name: "application_name", Value: "dat", ValueSQL: "U&'d!0061t' UESCAPE '!'"}},
		{"SET application_name = 'a'\n'b'", Statement{Kind: Set, Name: "application_name", Value: "ab", ValueSQL: "'a'\n'b'"}},
		{"SET session = 1", Statement{Kind: Set, Name: "session", Value: "1", ValueSQL: "1"}},
		{"SET SESSION local TO 1", Statement{Kind: Set, Name: "local", Value: "1", ValueSQL: "1"}},
		{"SET statement_timeout TO DEFAULT", Statement{Kind: Reset, Name: "statement_timeout"}},
		{`SET x.y TO "default"`, Statement{Kind: Set, Name: "x.y", Value: "default", ValueSQL: `"default"`}},
		{"SET LOCAL statement_timeout = '1s'", Statement{Kind: SetLocal, Name: "statement_timeout", Value: "1s", ValueSQL: "'1s'"}},
		{"SET LOCAL statement_timeout TO DEFAULT", Statement{Kind: SetLocal, Name: "statement_timeout"}},
		{"SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", Statement{Kind: SetLocal, ValueSQL: "ISOLATION LEVEL SERIALIZABLE"}},
		{"SET CONSTRAINTS ALL DEFERRED", Statement{Kind: SetLocal, ValueSQL: "ALL DEFERRED"}},
		{"SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", Statement{Kind: SessionCharacteristics, ValueSQL: "READ ONLY"}},
		{"SET TIME ZONE 'Europe/Paris'", Statement{Kind: Set, Name: "timezone", Value: "Europe/Paris", ValueSQL: "'Europe/Paris'"}},
		{"SET TIME ZONE -7", Statement{Kind: Set, Name: "timezone", Value: "-7", ValueSQL: "-7"}},
		{"SET TIME ZONE LOCAL", Statement{Kind: Reset, Name: "timezone"}},
		{"SET TIME ZONE DEFAULT", Statement{Kind: Reset, Name: "timezone"}},
		{"SET TIME ZONE INTERVAL '+00:00' HOUR TO MINUTE", Statement{Kind: Set, Name: "timezone", ValueSQL: "INTERVAL '+00:00' HOUR TO MINUTE"}},
		{"SET LOCAL TIME ZONE 'UTC'", Statement{Kind: SetLocal, Name: "timezone", Value: "UTC", ValueSQL: "'UTC'"}},
		{"SET time = 1", Statement{Kind: Set, Name: "time", Value: "1", ValueSQL: "1"}},
		{"SET NAMES 'UTF8'", Statement{Kind: Set, Name: "client_encoding", Value: "UTF8", ValueSQL: "'UTF8'"}},
		{"SET NAMES DEFAULT", Statement{Kind: Reset, Name: "client_encoding"}},
		{"SET NAMES", Statement{Kind: Reset, Name: "client_encoding"}},
		{"SET SCHEMA 'app'", Statement{Kind: Set, Name: "search_path", Value: "app", ValueSQL: "'app'"}},
		{"SET XML OPTION DOCUMENT", Statement{Kind: Set, Name: "xmloption", Value: "document", ValueSQL: "DOCUMENT"}},
		{"SET ROLE admin", Statement{Kind: SetRole, Name: "role", Value: "admin", ValueSQL: "admin"}},
		{"SET ROLE 'Admin'", Statement{Kind: SetRole, Name: "role", Value: "Admin", ValueSQL: "'Admin'"}},
		{"SET ROLE NONE", Statement{Kind: SetRole, Name: "role", Value: "none", ValueSQL: "NONE"}},
		{"SET SESSION ROLE admin", Statement{Kind: SetRole, Name: "role", Value: "admin", ValueSQL: "admin"}},
		{"SET LOCAL ROLE admin", Statement{Kind: SetLocal, Name: "role", Value: "admin", ValueSQL: "admin"}},
		{"SET role TO admin", Statement{Kind: SetRole, Name: "role", Value: "admin", ValueSQL: "admin"}},
		{"SET role = DEFAULT", Statement{Kind: ResetRole, Name: "role"}},
		{"RESET ROLE", Statement{Kind: ResetRole, Name: "role"}},
		{"SET SESSION AUTHORIZATION alice", Statement{Kind: SetSessionAuthorization, Name: "session_authorization", Value: "alice", ValueSQL: "alice"}},
		{"SET SESSION SESSION AUTHORIZATION 'alice'", Statement{Kind: SetSessionAuthorization, Name: "session_authorization", Value: "alice", ValueSQL: "'alice'"}},
		{"SET SESSION AUTHORIZATION DEFAULT", Statement{Kind: SetSessionAuthorization, Name: "session_authorization", ValueSQL: "DEFAULT"}},
		{"SET LOCAL SESSION AUTHORIZATION alice", Statement{Kind: SetLocal, Name: "session_authorization", Value: "alice", ValueSQL: "alice"}},
		{"RESET SESSION AUTHORIZATION", Statement{Kind: SetSessionAuthorization, Name: "session_authorization"}},
		{"RESET statement_timeout", Statement{Kind: Reset, Name: "statement_timeout"}},
		{"RESET MyApp.Tenant", Statement{Kind: Reset, Name: "myapp.tenant"}},
		{"RESET TIME ZONE", Statement{Kind: Reset, Name: "timezone"}},
		{"RESET TRANSACTION ISOLATION LEVEL", Statement{Kind: Reset, Name: "transaction_isolation"}},
		{"RESET ALL", Statement{Kind: ResetAll}},
		{"reset all", Statement{Kind: ResetAll}},
		{"SET x", Statement{}},
		{"SET x 5", Statement{}},
		{"SET", Statement{}},
		{"RESET", Statement{}},
		{"SET 'x' = 1", Statement{}},

		// Leading comments, parentheses, comments between words.
		{"/* rails */ SET /* a */ client_encoding /* b */ TO /* c */ 'unicode'", Statement{Kind: Set, Name: "client_encoding", Value: "unicode", ValueSQL: "'unicode'"}},
		{"-- hello\nSET\nx\nTO\n1", Statement{Kind: Set, Name: "x", Value: "1", ValueSQL: "1"}},
		{"SeT X tO 1", Statement{Kind: Set, Name: "x", Value: "1", ValueSQL: "1"}},

		// Never fooled by text in strings, identifiers, comments.
		{"SELECT 'SET x TO 1'", Statement{}},
		{"/* SET */ SELECT 1", Statement{}},
		{`SELECT E'\';SET a=1'`, Statement{}},
		{`SELECT 1 AS "set_config(" `, Statement{}},
		{"SELECT $$ pg_advisory_lock(1) $$", Statement{}},
		{"SELECT 'pg_advisory_lock(1)'", Statement{}},
		{"SELECT 1 -- pg_advisory_lock(1)", Statement{}},

		// DISCARD.
		{"DISCARD ALL", Statement{Kind: DiscardAll}},
		{"DISCARD PLANS", Statement{Kind: DiscardPlans}},
		{"DISCARD SEQUENCES", Statement{Kind: DiscardSequences}},
		{"DISCARD TEMP", Statement{Kind: DiscardTemp}},
		{"discard temporary", Statement{Kind: DiscardTemp}},

		// Prepared statements.
		{"PREPARE a1 AS SELECT $1", Statement{Kind: Prepare, Name: "a1", Body: "SELECT $1"}},
		{"PREPARE Q (int, text) AS SELECT pg_advisory_lock($1)", Statement{Kind: Prepare, Name: "q", Body: "SELECT pg_advisory_lock($1)"}},
		{`PREPARE "Q" AS SET x = 1`, Statement{Kind: Prepare, Name: "Q", Body: "SET x = 1"}},
		{"PREPARE TRANSACTION 'gid1'", Statement{Kind: Commit}},
		{"PREPARE transaction AS SELECT 1", Statement{Kind: Prepare, Name: "transaction", Body: "SELECT 1"}},
		{"EXECUTE a1", Statement{Kind: Execute, Name: "a1"}},
		{"EXECUTE a1 (1, 'x')", Statement{Kind: Execute, Name: "a1"}},
		{"EXECUTE a1 (pg_advisory_lock(1))", Statement{Kind: Execute, Name: "a1", AdvisoryLocks: 1}},
		{"DEALLOCATE a1", Statement{Kind: Deallocate, Name: "a1"}},
		{"DEALLOCATE PREPARE a1", Statement{Kind: Deallocate, Name: "a1"}},
		{"DEALLOCATE prepare", Statement{Kind: Deallocate, Name: "prepare"}},
		{"DEALLOCATE ALL", Statement{Kind: DeallocateAll}},
		{"DEALLOCATE PREPARE ALL", Statement{Kind: DeallocateAll}},

		// LISTEN.
		{"LISTEN Jobs", Statement{Kind: Listen, Name: "jobs"}},
		{`LISTEN "Jobs"`, Statement{Kind: Listen, Name: "Jobs"}},
		{"UNLISTEN jobs", Statement{Kind: Unlisten, Name: "jobs"}},
		{"UNLISTEN *", Statement{Kind: UnlistenAll}},

		// Temporary objects.
		{"CREATE TEMP TABLE t (a int)", Statement{Kind: CreateTemp, Name: "t", TempObject: true}},
		{"CREATE TEMPORARY TABLE IF NOT EXISTS T (a int)", Statement{Kind: CreateTemp, Name: "t", TempObject: true}},
		{"CREATE GLOBAL TEMPORARY TABLE t (a int)", Statement{Kind: CreateTemp, Name: "t", TempObject: true}},
		{"CREATE LOCAL TEMP TABLE t (a int)", Statement{Kind: CreateTemp, Name: "t", TempObject: true}},
		{"CREATE TEMP TABLE t AS SELECT pg_advisory_lock(1)", Statement{Kind: CreateTemp, Name: "t", TempObject: true, AdvisoryLocks: 1}},
		{"CREATE TEMP TABLE t (a int) ON COMMIT DROP", Statement{Kind: CreateTemp, Name: "t", TempObject: true, OnCommitDrop: true}},
		{"CREATE TEMP TABLE t ON COMMIT DROP AS SELECT 1", Statement{Kind: CreateTemp, Name: "t", TempObject: true, OnCommitDrop: true}},
		{"CREATE TEMP TABLE t (a int) ON COMMIT DELETE ROWS", Statement{Kind: CreateTemp, Name: "t", TempObject: true}},
		{"CREATE OR REPLACE TEMP VIEW v AS SELECT pg_advisory_lock(1)", Statement{Kind: CreateTemp, Name: "v", TempObject: true}},
		{"CREATE TEMP RECURSIVE VIEW v (n) AS SELECT 1", Statement{Kind: CreateTemp, Name: "v", TempObject: true}},
		{"CREATE TEMPORARY SEQUENCE s", Statement{Kind: CreateTemp, Name: "s", TempObject: true}},
		{"CREATE TABLE pg_temp.t (a int)", Statement{Kind: CreateTemp, Name: "t", TempObject: true}},
		{`CREATE TEMP TABLE "T" (a int)`, Statement{Kind: CreateTemp, Name: "T", TempObject: true}},
		{"CREATE TABLE t (id int DEFAULT nextval('s'))", Statement{}},
		{"CREATE TABLE t AS SELECT nextval('s')", Statement{NextvalSetval: true}},
		{"CREATE UNLOGGED TABLE t (a int)", Statement{}},
		{"CREATE MATERIALIZED VIEW m AS SELECT pg_advisory_lock(1)", Statement{AdvisoryLocks: 1}},
		{"CREATE FUNCTION f() RETURNS int LANGUAGE sql RETURN pg_advisory_lock(1)", Statement{}},
		{"SELECT * INTO TEMP t FROM x", Statement{Kind: CreateTemp, Name: "t", TempObject: true}},
		{"SELECT a, b INTO TEMPORARY TABLE t FROM x", Statement{Kind: CreateTemp, Name: "t", TempObject: true}},
		{"SELECT 1 INTO LOCAL TEMP t", Statement{Kind: CreateTemp, Name: "t", TempObject: true}},
		{"SELECT 1 INTO t", Statement{}},
		{"SELECT 1 INTO pg_temp.t", Statement{Kind: CreateTemp, Name: "t", TempObject: true}},
		{"WITH x AS (SELECT 1) SELECT * INTO TEMP t FROM x", Statement{Kind: CreateTemp, Name: "t", TempObject: true}},
		{"WITH x AS (SELECT 1) INSERT INTO temp SELECT * FROM x", Statement{}},
		{"WITH insert AS (SELECT 1) SELECT * INTO TEMP t FROM insert", Statement{Kind: CreateTemp, Name: "t", TempObject: true}},
		{"WITH x AS (SELECT 1) MERGE INTO temp t USING x ON true WHEN MATCHED THEN DELETE", Statement{}},
		{"INSERT INTO temp VALUES (1)", Statement{}},
		{"(SELECT 1 INTO TEMP t)", Statement{Kind: CreateTemp, Name: "t", TempObject: true}},
		{"SELECT (SELECT 1 INTO TEMP t)", Statement{}},
		{"DROP TABLE t", Statement{Kind: Drop, Names: []string{"t"}}},
		{"DROP TABLE IF EXISTS a, B, \"C\", s.d, pg_temp.e CASCADE", Statement{Kind: Drop, Names: []string{"a", "b", "C", "s.d", "e"}}},
		{"DROP VIEW v", Statement{Kind: Drop, Names: []string{"v"}}},
		{"DROP SEQUENCE s RESTRICT", Statement{Kind: Drop, Names: []string{"s"}}},
		{"DROP INDEX i", Statement{}},
		{"DROP FUNCTION pg_advisory_lock(bigint)", Statement{}},

		// Cursors.
		{"DECLARE c CURSOR FOR SELECT 1", Statement{Kind: Declare, Name: "c"}},
		{"DECLARE c CURSOR WITHOUT HOLD FOR SELECT 1", Statement{Kind: Declare, Name: "c"}},
		{"DECLARE C CURSOR WITH HOLD FOR SELECT 1", Statement{Kind: DeclareHold, Name: "c"}},
		{"DECLARE c BINARY INSENSITIVE NO SCROLL CURSOR WITH HOLD FOR SELECT 1", Statement{Kind: DeclareHold, Name: "c"}},
		{"DECLARE c ASENSITIVE SCROLL CURSOR WITH HOLD FOR SELECT nextval('s')", Statement{Kind: DeclareHold, Name: "c", NextvalSetval: true}},
		{"DECLARE c CURSOR WITH HOLD", Statement{}},
		{"CLOSE c", Statement{Kind: CloseCursor, Name: "c"}},
		{"CLOSE ALL", Statement{Kind: CloseAllCursors}},

		{"LOAD 'auto_explain'", Statement{Kind: Load, Name: "auto_explain"}},
		{"LOAD auto_explain", Statement{}},

		// Transactions.
		{"BEGIN", Statement{Kind: Begin}},
		{"BEGIN ISOLATION LEVEL SERIALIZABLE", Statement{Kind: Begin}},
		{"START TRANSACTION READ ONLY", Statement{Kind: Begin}},
		{"COMMIT", Statement{Kind: Commit}},
		{"COMMIT AND CHAIN", Statement{Kind: Commit}},
		{"END", Statement{Kind: Commit}},
		{"END WORK", Statement{Kind: Commit}},
		{"COMMIT PREPARED 'gid'", Statement{}},
		{"ROLLBACK", Statement{Kind: Rollback}},
		{"ROLLBACK AND NO CHAIN", Statement{Kind: Rollback}},
		{"ABORT", Statement{Kind: Rollback}},
		{"ROLLBACK PREPARED 'gid'", Statement{}},
		{"SAVEPOINT sp1", Statement{Kind: Savepoint, Name: "sp1"}},
		{"ROLLBACK TO sp1", Statement{Kind: RollbackToSavepoint, Name: "sp1"}},
		{"ROLLBACK WORK TO SAVEPOINT Sp1", Statement{Kind: RollbackToSavepoint, Name: "sp1"}},
		{"ROLLBACK TRANSACTION TO savepoint", Statement{Kind: RollbackToSavepoint, Name: "savepoint"}},
		{"RELEASE sp1", Statement{Kind: ReleaseSavepoint, Name: "sp1"}},
		{"RELEASE SAVEPOINT sp1", Statement{Kind: ReleaseSavepoint, Name: "sp1"}},

		// Advisory locks, set_config, sequences.
		{"SELECT pg_advisory_lock(12345)", Statement{AdvisoryLocks: 1}},
		{"SELECT pg_try_advisory_lock(1), PG_ADVISORY_LOCK_SHARED(2), pg_catalog.pg_try_advisory_lock_shared(3)", Statement{AdvisoryLocks: 3}},
		{`SELECT "pg_advisory_lock"(1)`, Statement{AdvisoryLocks: 1}},
		{`SELECT "PG_ADVISORY_LOCK"(1)`, Statement{}},
		{"SELECT pg_advisory_xact_lock(1), pg_try_advisory_xact_lock(2)", Statement{}},
		{"SELECT pg_advisory_unlock(1), pg_advisory_unlock_shared(2)", Statement{AdvisoryUnlocks: 2}},
		{"SELECT pg_advisory_unlock_all()", Statement{AdvisoryUnlockAll: true}},
		{"SELECT pg_advisory_lock (1)", Statement{AdvisoryLocks: 1}},
		{"SELECT pg_advisory_lock /* x */ (1)", Statement{AdvisoryLocks: 1}},
		{"SELECT pg_advisory_lock FROM t", Statement{}},
		{"SELECT CASE WHEN pg_try_advisory_lock(1) THEN 1 END FROM (SELECT pg_advisory_lock(2)) s", Statement{AdvisoryLocks: 2}},
		{"UPDATE t SET a = pg_advisory_lock(1)", Statement{AdvisoryLocks: 1}},
		{"INSERT INTO pg_advisory_lock (a) VALUES (1)", Statement{}},
		{"INSERT INTO s.nextval (a) VALUES (1)", Statement{}},
		{"COPY (SELECT nextval('s')) TO STDOUT", Statement{NextvalSetval: true}},
		{"SELECT set_config('search_path', 'app', false)", Statement{SetConfigs: []SetConfig{{Name: "search_path", Value: "app", Known: true}}}},
		{"SELECT set_config('MyApp.User', '42', true)", Statement{SetConfigs: []SetConfig{{Name: "myapp.user", Value: "42", IsLocal: true, Known: true}}}},
		{"SELECT set_config('a', 'b', 't'), set_config('c', 'd', 'off'::boolean)",
			Statement{SetConfigs: []SetConfig{{Name: "a", Value: "b", IsLocal: true, Known: true}, {Name: "c", Value: "d", Known: true}}}},
		{"SELECT set_config('a', $1, false)", Statement{SetConfigs: []SetConfig{{Name: "a"}}}},
		{"SELECT set_config('a', 'x' || 'y', false)", Statement{SetConfigs: []SetConfig{{Name: "a"}}}},
		{"SELECT set_config('a', lower('X'), false)", Statement{SetConfigs: []SetConfig{{Name: "a"}}}},
		{"SELECT set_config('a', 'b', is_local)", Statement{SetConfigs: []SetConfig{{Name: "a", Value: "b"}}}},
		{"SELECT set_config('a', 'b')", Statement{SetConfigs: []SetConfig{{Name: "a", Value: "b"}}}},
		{"SELECT set_config('a', set_config('b', 'c', false), false)",
			Statement{SetConfigs: []SetConfig{{Name: "a"}, {Name: "b", Value: "c", Known: true}}}},
		{"SELECT set_config('a', 'b', false", Statement{SetConfigs: []SetConfig{{}}}},
		{"SELECT nextval('s'), setval('s', 1)", Statement{NextvalSetval: true}},
		{"SELECT currval('s'), lastval()", Statement{CurrvalLastval: true}},
		{"VALUES (nextval('s'))", Statement{NextvalSetval: true}},
		{"DELETE FROM t WHERE id = currval('s')", Statement{CurrvalLastval: true}},
		{"CALL p(pg_advisory_lock(1))", Statement{AdvisoryLocks: 1}},
		{"ALTER TABLE t ALTER a SET DEFAULT nextval('s')", Statement{}},

		// EXPLAIN.
		{"EXPLAIN SELECT pg_advisory_lock(1)", Statement{}},
		{"EXPLAIN ANALYZE SELECT pg_advisory_lock(1)", Statement{AdvisoryLocks: 1}},
		{"EXPLAIN ANALYSE VERBOSE SELECT set_config('a', 'b', false)", Statement{SetConfigs: []SetConfig{{Name: "a", Value: "b", Known: true}}}},
		{"EXPLAIN (ANALYZE, BUFFERS) SELECT pg_advisory_lock(1)", Statement{AdvisoryLocks: 1}},
		{"EXPLAIN (ANALYZE false) SELECT pg_advisory_lock(1)", Statement{}},
		{"EXPLAIN (FORMAT JSON, ANALYZE on) SELECT pg_advisory_lock(1)", Statement{AdvisoryLocks: 1}},
		{"EXPLAIN (SELECT pg_advisory_lock(1))", Statement{}},
		{"EXPLAIN ANALYZE (SELECT pg_advisory_lock(1))", Statement{AdvisoryLocks: 1}},
		{"EXPLAIN ANALYZE CREATE TEMP TABLE t AS SELECT 1", Statement{Kind: CreateTemp, Name: "t", TempObject: true}},
		{"EXPLAIN CREATE TEMP TABLE t AS SELECT 1", Statement{}},
		{"EXPLAIN ANALYZE SELECT 1 INTO TEMP t", Statement{Kind: CreateTemp, Name: "t", TempObject: true}},
		{"EXPLAIN ANALYZE EXECUTE a1", Statement{Kind: Execute, Name: "a1"}},
		{"EXPLAIN EXECUTE a1", Statement{}},
		{"EXPLAIN ANALYZE DECLARE c CURSOR WITH HOLD FOR SELECT 1", Statement{}},

		// Others.
		{"SELECT 1", Statement{}},
		{"SHOW statement_timeout", Statement{}},
		{"DO $$ BEGIN PERFORM pg_advisory_lock(1); END $$", Statement{}},
		{"NOTIFY jobs, 'x'", Statement{}},
		{"", Statement{}},
		{";", Statement{}},
		{"(", Statement{}},
		{"((SELECT pg_advisory_lock(1)))", Statement{AdvisoryLocks: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.sql, func(t *testing.T) {
			got := Classify(tt.sql)
			got.Text = ""
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Classify(%q)\n got %s\nwant %s", tt.sql, describe(got), describe(tt.want))
			}
		})
	}
}

// describe prints the fields of a Statement that are set.
func describe(st Statement) string {
	var parts []string
	v := reflect.ValueOf(st)
	for i := 0; i < v.NumField(); i++ {
		if f := v.Field(i); !f.IsZero() {
			parts = append(parts, fmt.Sprintf("%s=%v", v.Type().Field(i).Name, f.Interface()))
		}
	}
	if len(parts) == 0 {
		return "{Other}"
	}
	return "{" + strings.Join(parts, " ") + "}"
}

func TestClassifyText(t *testing.T) {
	tests := []struct{ sql, want string }{
		{"  /* c */ SET x = 1 ; SELECT 2", "SET x = 1"},
		{"SELECT 1 -- tail", "SELECT 1"},
		{"", ""},
		{" ; ", ""},
		{"((SELECT 1))", "((SELECT 1))"},
	}
	for _, tt := range tests {
		if got := Classify(tt.sql).Text; got != tt.want {
			t.Errorf("Classify(%q).Text = %q, want %q", tt.sql, got, tt.want)
		}
	}
}

func TestAnalyze(t *testing.T) {
	sql := "SET client_encoding TO unicode; SET statement_timeout TO 300000; SET intervalstyle TO iso_8601;" +
		" SET client_min_messages TO warning; SET standard_conforming_strings TO on; SET timezone TO utc;" +
		" ; /* x */ ; SELECT pg_try_advisory_lock(1); BEGIN; SET LOCAL x = 1; COMMIT"
	var got []string
	for st := range Analyze(sql) {
		got = append(got, fmt.Sprintf("%v %s=%s locks=%d |%s|", st.Kind, st.Name, st.Value, st.AdvisoryLocks, st.Text))
	}
	want := []string{
		"set client_encoding=unicode locks=0 |SET client_encoding TO unicode|",
		"set statement_timeout=300000 locks=0 |SET statement_timeout TO 300000|",
		"set intervalstyle=iso_8601 locks=0 |SET intervalstyle TO iso_8601|",
		"set client_min_messages=warning locks=0 |SET client_min_messages TO warning|",
		"set standard_conforming_strings=on locks=0 |SET standard_conforming_strings TO on|",
		"set timezone=utc locks=0 |SET timezone TO utc|",
		"other = locks=1 |SELECT pg_try_advisory_lock(1)|",
		"begin = locks=0 |BEGIN|",
		"set_local x=1 locks=0 |SET LOCAL x = 1|",
		"commit = locks=0 |COMMIT|",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Analyze:\n got %q\nwant %q", got, want)
	}
}

func TestAnalyzeTrickyQuoting(t *testing.T) {
	tests := []struct {
		sql   string
		kinds []Kind
	}{
		{"SELECT 'a;SET x=1'; SET y = 2", []Kind{Other, Set}},
		{"SELECT $$;SET x=1;$$; RESET y", []Kind{Other, Reset}},
		{`SELECT "x;SET a=1"; LISTEN c`, []Kind{Other, Listen}},
		{"SELECT 1 /* ; SET a=1; */; DISCARD ALL", []Kind{Other, DiscardAll}},
		{"SELECT 1 -- ; SET a=1\n; UNLISTEN *", []Kind{Other, UnlistenAll}},
		{`SELECT E'\';SET a=1'; BEGIN`, []Kind{Other, Begin}},
		{`SELECT 'a\'; SET b=1`, []Kind{Other, Set}},
		{"SELECT $x$ $$ ; $$ $x$; COMMIT", []Kind{Other, Commit}},
		{"SELECT /* /* ; */ SET a=1; */ 1; ROLLBACK", []Kind{Other, Rollback}},
	}
	for _, tt := range tests {
		t.Run(tt.sql, func(t *testing.T) {
			var got []Kind
			for st := range Analyze(tt.sql) {
				got = append(got, st.Kind)
			}
			if !slices.Equal(got, tt.kinds) {
				t.Errorf("kinds %v, want %v", got, tt.kinds)
			}
		})
	}
	// With standard_conforming_strings off the backslash escapes the
	// quote and the SET is inside the string.
	off := Syntax{StandardConformingStringsOff: true}
	var kinds []Kind
	for st := range off.Analyze(`SELECT 'a\'; SET b=1'; SET c = 'x\'y'`) {
		kinds = append(kinds, st.Kind)
		if st.Kind == Set && st.Value != "x'y" {
			t.Errorf("value %q, want x'y", st.Value)
		}
	}
	if !slices.Equal(kinds, []Kind{Other, Set}) {
		t.Errorf("kinds with standard_conforming_strings off: %v", kinds)
	}
}

func TestKindString(t *testing.T) {
	for k := Other; k <= Load; k++ {
		if s := k.String(); s == "" || s == "unknown" {
			t.Errorf("Kind(%d) has no name", k)
		}
	}
	if Kind(200).String() != "unknown" {
		t.Error("out of range kind")
	}
}

func TestRDSProxyReason(t *testing.T) {
	tests := []struct {
		sql   string
		bytes int
		want  string
	}{
		{"SELECT 1", 8, ""},
		{"SELECT 1", 16384, ""},
		{"SELECT 1", 16385, "oversized_query"},
		{"SET client_encoding TO 'unicode'", 10, "session_setting"},
		{"SET LOCAL x = 1", 10, "session_setting"},
		{"SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", 10, "session_setting"},
		{"RESET ALL", 10, "session_setting"},
		{"SELECT set_config('a', 'b', true)", 10, "session_setting"},
		{"PREPARE p AS SELECT 1", 10, "sql_prepared_statement"},
		{"EXECUTE p", 10, "sql_prepared_statement"},
		{"DEALLOCATE ALL", 10, "sql_prepared_statement"},
		{"DISCARD ALL", 10, "discard"},
		{"CREATE TEMP TABLE t (a int)", 10, "temp_object"},
		{"SELECT 1 INTO TEMP t", 10, "temp_object"},
		{"DECLARE c CURSOR FOR SELECT 1", 10, "cursor"},
		{"DECLARE c CURSOR WITH HOLD FOR SELECT 1", 10, "cursor"},
		{"LISTEN c", 10, "listen"},
		{"UNLISTEN c", 10, ""},
		{"LOAD 'auto_explain'", 10, "load"},
		{"SELECT nextval('s')", 10, "sequence_function"},
		{"SELECT currval('s')", 10, ""},
		{"SELECT pg_advisory_lock(1)", 10, "session_advisory_lock"},
		{"SELECT pg_advisory_xact_lock(1)", 10, ""},
		{"BEGIN", 10, ""},
	}
	for _, tt := range tests {
		t.Run(tt.sql, func(t *testing.T) {
			r := RDSProxyReason(Classify(tt.sql), tt.bytes)
			if r.Code != tt.want {
				t.Errorf("code %q, want %q", r.Code, tt.want)
			}
			if (r.Code == "") != (r.Detail == "") || (r.Code == "") != (r.Hint == "") {
				t.Errorf("reason %+v is partly empty", r)
			}
		})
	}
}

func TestClassifyAllocations(t *testing.T) {
	other := "SELECT u.id, u.name, count(*) FROM users u JOIN orders o ON o.user_id = u.id WHERE u.email = 'a@b.c' GROUP BY 1, 2"
	set := "SET SESSION timezone TO 'UTC'"
	for _, sql := range []string{other, set, "BEGIN", "COMMIT", "SELECT pg_advisory_lock(1)"} {
		if n := testing.AllocsPerRun(100, func() { _ = Classify(sql) }); n != 0 {
			t.Errorf("Classify(%q) allocates %v times, want 0", sql, n)
		}
	}
	both := other + ";" + set
	if n := testing.AllocsPerRun(100, func() {
		for st := range Analyze(both) {
			_ = st
		}
	}); n != 0 {
		t.Errorf("Analyze allocates %v times, want 0", n)
	}
	buf := make([]byte, 0, 1024)
	if n := testing.AllocsPerRun(100, func() { buf = AppendDigest(buf[:0], other) }); n != 0 {
		t.Errorf("AppendDigest allocates %v times, want 0", n)
	}
}

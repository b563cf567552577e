package pinning

import "testing"

func TestDigest(t *testing.T) {
	tests := []struct{ sql, want string }{
		{"SET client_encoding TO 'unicode'", "set client_encoding to $1"},
		{"SELECT pg_advisory_lock(12345)", "select pg_advisory_lock($1)"},
		{`SELECT * FROM "Users" WHERE id = $1 AND name = 'x'`, `select * from "Users" where id = $1 and name = $2`},
		{"SELECT $2, $1, $2", "select $1, $2, $3"},
		{"/* app:web */ SELECT\n\t 1 -- tail\n", "select $1"},
		{"SELECT/**/1", "select $1"},
		{"SELECT a/* x */+b", "select a +b"},
		{"SELECT E'\\n', B'101', X'1F', $$x$$, $t$y$t$, 1.5e3, U&'d\\0061t', N'n', .5, 0x1F",
			"select $1, $2, $3, $4, $5, $6, $7, $8, $9, $10"},
		{"SELECT 'a'\n'b'", "select $1"},
		{"SELECT 'a'::text, x::int", "select $1::text, x::int"},
		{"SELECT x FROM t WHERE a IN (1, 2, 3)", "select x from t where a in ($1, $2, $3)"},
		{"SELECT -1, x-1, x=-1", "select -$1, x-$2, x=-$3"},
		{"SELECT a'x', 'x'b, 1abc", "select a $1, $2 b, $3 abc"},
		{"SET statement_timeout TO 300000", "set statement_timeout to $1"},
		{"SET standard_conforming_strings TO on", "set standard_conforming_strings to $1"},
		{"SET search_path TO app, \"Public\", 'x'", "set search_path to $1, $2, $3"},
		{"SET myapp.tenant = '42'", "set myapp.tenant = $1"},
		{"SET x = -5", "set x = -$1"},
		{"SET x TO DEFAULT", "set x to default"},
		{"SET ROLE admin", "set role $1"},
		{"SET SESSION AUTHORIZATION alice", "set session authorization $1"},
		{"SET TIME ZONE LOCAL", "set time zone local"},
		{"SET TIME ZONE 'UTC'", "set time zone $1"},
		{"SET TIME ZONE INTERVAL '+02:00' HOUR TO MINUTE", "set time zone interval $1 hour to minute"},
		{"SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", "set transaction isolation level serializable"},
		{"SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", "set session characteristics as transaction read only"},
		{"LISTEN \"Jobs\"", `listen "Jobs"`},
		{"PREPARE a1 (int) AS SELECT $1 + 2", "prepare a1 (int) as select $1 + $2"},
		{"SET a = 1; SELECT 'b';;", "set a = $1; select $2"},
		{" ; ; ", ""},
		{"", ""},
		{"SELECT 'unterminated", "select $1"},
		{`SELECT "unterminated`, `select "unterminated`},
		{"SELECT 1 /* unterminated", "select $1"},
		{"CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); NOTIFY t)",
			"create rule r as on insert to t do also (insert into a values ($1); notify t)"},
	}
	for _, tt := range tests {
		t.Run(tt.sql, func(t *testing.T) {
			if got := Digest(tt.sql); got != tt.want {
				t.Errorf("Digest(%q)\n got %q\nwant %q", tt.sql, got, tt.want)
			}
		})
	}
}

func TestDigestStandardConformingStringsOff(t *testing.T) {
	off := Syntax{StandardConformingStringsOff: true}
	if got, want := off.Digest(`SELECT 'a\'; SET b = 1'`), "select $1"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestAppendDigest(t *testing.T) {
	got := string(AppendDigest([]byte("digest: "), "SELECT 1"))
	if want := "digest: select $1"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

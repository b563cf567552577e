package session

import (
	"testing"

	"github.com/pgpoolx/pgpoolx/pinning"
)

func TestEffectOf(t *testing.T) {
	tests := []struct {
		sql  string
		want Effect
	}{
		{"SELECT 1", Effect{}},
		{"SELECT 'SET x TO 1'", Effect{}},
		{"SET statement_timeout TO 5000", Effect{Changes: true}},
		{"SET LOCAL statement_timeout TO 5000", Effect{}},
		{"RESET ALL", Effect{Changes: true}},
		{"SELECT set_config('a.b', 'c', false)", Effect{Changes: true}},
		{"SELECT set_config('a.b', 'c', true)", Effect{}},
		{"SELECT set_config($1, $2, $3)", Effect{Changes: true}},
		{"SELECT pg_advisory_lock(1)", Effect{Changes: true, OnlyLocks: true}},
		{"SELECT pg_try_advisory_lock(1, 2)", Effect{Changes: true, OnlyLocks: true}},
		{"SELECT pg_advisory_unlock(1)", Effect{Changes: true, OnlyLocks: true}},
		{"SELECT pg_advisory_lock(1), set_config('a.b', 'c', false)", Effect{Changes: true}},
		{"SELECT pg_advisory_lock(1), set_config('a.b', 'c', true)", Effect{Changes: true, OnlyLocks: true}},
		{"SELECT pg_advisory_xact_lock(1)", Effect{}},
		{"SELECT pg_advisory_unlock_all()", Effect{Changes: true, OnlyLocks: true}},
		{"LISTEN ch", Effect{Changes: true}},
		{"CREATE TEMP TABLE t (a int)", Effect{Changes: true}},
		{"CREATE TEMP TABLE t (a int) ON COMMIT DROP", Effect{}},
		{"DECLARE c CURSOR WITH HOLD FOR SELECT 1", Effect{Changes: true}},
		{"DECLARE c CURSOR FOR SELECT 1", Effect{}},
		{"DISCARD ALL", Effect{Changes: true, DropsStatements: true}},
		{"DEALLOCATE ALL", Effect{Changes: true, DropsStatements: true}},
		{"LOAD 'auto_explain'", Effect{Changes: true, Load: true}},
		{"DO $$BEGIN PERFORM 1; END$$", Effect{Changes: true}},
		{"CALL p()", Effect{Changes: true}},
		{"SELECT docs FROM t", Effect{}},
		{"BEGIN", Effect{}},
	}
	for _, tt := range tests {
		t.Run(tt.sql, func(t *testing.T) {
			if got := EffectOf(pinning.Classify(tt.sql)); got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

package integration

import (
	"testing"
)

// TestAdvisoryLockPinsWithOtherState: a session pinned by an advisory
// lock that also makes a temporary table stays pinned when the lock goes
// (the cheap lock-only probe must not forget the table), and is unpinned
// once both are gone.
func TestAdvisoryLockPinsWithOtherState(t *testing.T) {
	p := startPooler(t, "", "pool_size: 2")
	ctx := t.Context()
	a := p.connect(t, "")
	other := p.connect(t, "")
	serverPID := func() int {
		var pid int
		if err := a.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
			t.Fatal(err)
		}
		return pid
	}
	exec := func(sql string) {
		t.Helper()
		if _, err := a.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	pinReason := func() string {
		t.Helper()
		entries := p.logs.FilterMessage("session pinned").All()
		unpins := p.logs.FilterMessage("session unpinned").Len()
		if len(entries) == unpins {
			return ""
		}
		return entries[len(entries)-1].ContextMap()["reason"].(string)
	}

	exec("SELECT pg_advisory_lock(42)")
	if r := pinReason(); r != "session_advisory_lock" {
		t.Fatalf("after the lock: pinned for %q", r)
	}
	pid := serverPID()
	exec("CREATE TEMP TABLE scratch (n int)")
	exec("SELECT pg_advisory_unlock(42)")
	// Still on its server connection, for the table: the other client
	// cannot get it, and the table is still there.
	for range 5 {
		if got := serverPID(); got != pid {
			t.Fatalf("moved from server pid %d to %d with a temporary table", pid, got)
		}
		var n int
		if err := other.QueryRow(ctx, "SELECT count(*) FROM pg_class WHERE relname = 'scratch' AND relpersistence = 't' AND pg_table_is_visible(oid)").Scan(&n); err != nil || n != 0 {
			t.Fatalf("another client sees the table: %d, %v", n, err)
		}
	}
	var n int
	if err := a.QueryRow(ctx, "SELECT count(*) FROM scratch").Scan(&n); err != nil {
		t.Fatalf("the temporary table is gone: %v", err)
	}
	exec("DROP TABLE scratch")
	if p.logCount("session unpinned") != 1 {
		t.Errorf("%d unpins, want 1 once the lock and the table are gone", p.logCount("session unpinned"))
	}

	// Lock and unlock alone: pinned, then unpinned, many times over.
	for range 20 {
		exec("SELECT pg_advisory_lock(7)")
		exec("SELECT pg_advisory_unlock(7)")
	}
	if pins, unpins := p.logCount("session pinned"), p.logCount("session unpinned"); pins != 21 || unpins != 21 {
		t.Errorf("%d pins and %d unpins, want 21 of each", pins, unpins)
	}
}

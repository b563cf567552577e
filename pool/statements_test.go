package pool

import (
	"sync/atomic"
	"testing"
)

func TestStatementsLRU(t *testing.T) {
	var total atomic.Int64
	s := NewStatements(2, &total)
	steps := []struct {
		op    string // add, has, remove
		name  string
		evict string
		has   bool
	}{
		{"add", "a", "", false},
		{"add", "b", "", false},
		{"has", "a", "", true}, // a is now the most recent
		{"add", "c", "b", false},
		{"has", "b", "", false},
		{"add", "a", "", false}, // already there: no eviction
		{"add", "d", "c", false},
		{"remove", "a", "", false},
		{"has", "a", "", false},
		{"add", "e", "", false},
	}
	for i, st := range steps {
		switch st.op {
		case "add":
			if got := s.Add(st.name); got != st.evict {
				t.Fatalf("step %d: Add(%s) evicted %q, want %q", i, st.name, got, st.evict)
			}
		case "has":
			if got := s.Has(st.name); got != st.has {
				t.Fatalf("step %d: Has(%s) = %v", i, st.name, got)
			}
		case "remove":
			s.Remove(st.name)
		}
		if s.Len() > 2 {
			t.Fatalf("step %d: %d statements, bound is 2", i, s.Len())
		}
		if int(total.Load()) != s.Len() {
			t.Fatalf("step %d: total %d, want %d", i, total.Load(), s.Len())
		}
	}
	s.Clear()
	if s.Len() != 0 || s.Has("e") || total.Load() != 0 {
		t.Fatal("Clear left statements")
	}
}

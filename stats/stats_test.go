package stats

import (
	"slices"
	"testing"
	"time"
)

func TestWaitedBuckets(t *testing.T) {
	tests := []struct {
		d      time.Duration
		bucket int // index in Waits
	}{
		{0, 0},
		{100 * time.Microsecond, 0}, // upper bounds are inclusive
		{101 * time.Microsecond, 1},
		{3 * time.Millisecond, 3},
		{time.Second, 8},
		{29 * time.Second, 11},
		{time.Minute, 12}, // beyond every bucket
	}
	for _, tt := range tests {
		var c Counters
		c.Waited(tt.d)
		got := c.Snapshot()
		want := make([]uint64, len(WaitBuckets)+1)
		want[tt.bucket] = 1
		if !slices.Equal(got.Waits, want) {
			t.Errorf("Waited(%v): Waits = %v, want %v", tt.d, got.Waits, want)
		}
		if got.WaitTime != tt.d.Truncate(time.Microsecond) || got.WaitCount() != 1 {
			t.Errorf("Waited(%v): WaitTime %v, count %d", tt.d, got.WaitTime, got.WaitCount())
		}
	}
}

func TestPinsAndErrors(t *testing.T) {
	var c Counters
	for _, r := range []string{"advisory_lock", "listen", "advisory_lock"} {
		c.Pinned(r)
	}
	for _, code := range []string{"42P01", "42601", "57014", "", "X"} {
		c.Error(code)
	}
	s := c.Snapshot()
	if s.Pins["advisory_lock"] != 2 || s.Pins["listen"] != 1 || len(s.Pins) != 2 {
		t.Errorf("Pins = %v", s.Pins)
	}
	if s.Errors["42"] != 2 || s.Errors["57"] != 1 || s.Errors["??"] != 2 {
		t.Errorf("Errors = %v", s.Errors)
	}
	// The snapshot is a copy.
	c.Pinned("listen")
	if s.Pins["listen"] != 1 {
		t.Error("a snapshot changed after it was taken")
	}
}

func TestAdd(t *testing.T) {
	a := Totals{Xacts: 1, BytesIn: 10, Waits: []uint64{1, 0}, Pins: map[string]uint64{"x": 1}}
	b := Totals{Xacts: 2, BytesIn: 5, Waits: []uint64{0, 3, 1}, Errors: map[string]uint64{"42": 1}}
	s := a.Add(b)
	if s.Xacts != 3 || s.BytesIn != 15 || !slices.Equal(s.Waits, []uint64{1, 3, 1}) ||
		s.Pins["x"] != 1 || s.Errors["42"] != 1 {
		t.Errorf("Add = %+v", s)
	}
	if (Totals{}).Add(Totals{}).Pins != nil {
		t.Error("sum of empty pins is not nil")
	}
}

func TestRatesBetween(t *testing.T) {
	earlier := Totals{Xacts: 100, Queries: 200, BytesIn: 1000, XactTime: time.Second, Waits: []uint64{10}}
	later := Totals{Xacts: 300, Queries: 600, BytesIn: 3000, XactTime: 3 * time.Second,
		WaitTime: time.Second, Waits: []uint64{20, 10}}
	r := RatesBetween(earlier, later, 10*time.Second)
	want := Rates{Xacts: 20, Queries: 40, BytesIn: 200, XactTime: 10 * time.Millisecond, WaitTime: 50 * time.Millisecond}
	if r != want {
		t.Errorf("RatesBetween = %+v, want %+v", r, want)
	}
	if (RatesBetween(earlier, later, 0) != Rates{}) {
		t.Error("rates over no time are not zero")
	}
}

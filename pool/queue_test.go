package pool

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"go.uber.org/zap"
)

// TestWaitQueueMatchesASlice runs random pushes, pops and removals on the
// ring and on a plain slice, and checks they always hold the same waiters
// in the same order, across wrap-arounds and growth.
func TestWaitQueueMatchesASlice(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var q waitQueue
	var model []*waiter
	for step := range 20000 {
		switch op := rng.IntN(10); {
		case op < 5:
			w := &waiter{}
			q.push(w)
			model = append(model, w)
		case op < 8:
			got := q.pop()
			var want *waiter
			if len(model) > 0 {
				want, model = model[0], model[1:]
			}
			if got != want {
				t.Fatalf("step %d: pop returned the wrong waiter", step)
			}
		default:
			var w *waiter
			if len(model) > 0 && rng.IntN(4) > 0 {
				w = model[rng.IntN(len(model))]
			} else {
				w = &waiter{} // never queued
			}
			i := slices.Index(model, w)
			if got := q.remove(w); got != (i >= 0) {
				t.Fatalf("step %d: remove said %v for a waiter at index %d", step, got, i)
			}
			if i >= 0 {
				model = slices.Delete(model, i, i+1)
			}
		}
		if q.len() != len(model) {
			t.Fatalf("step %d: len %d, want %d", step, q.len(), len(model))
		}
		if len(model) > 0 && q.front() != model[0] {
			t.Fatalf("step %d: front is not the first waiter", step)
		}
	}
	for len(model) > 0 {
		if q.pop() != model[0] {
			t.Fatal("draining: wrong order")
		}
		model = model[1:]
	}
	if q.pop() != nil {
		t.Fatal("pop on an empty queue returned a waiter")
	}
}

// TestWaitTimesOutAfterItsOwnStart checks a Wait whose timer is still armed
// from an earlier, served wait: that timer fires at the earlier deadline,
// which must not end the new wait, and the new wait still ends with
// ErrAcquireTimeout a full acquire_timeout after it began.
func TestWaitTimesOutAfterItsOwnStart(t *testing.T) {
	const timeout = 200 * time.Millisecond
	p := New(Options{Size: 0, AcquireTimeout: timeout}, zap.NewNop())
	notified := make(chan struct{}, 1)
	wt := p.NewWait(func() { notified <- struct{}{} })

	if err := wt.Begin(time.Now()); err != nil {
		t.Fatal(err)
	}
	served := &Conn{}
	p.Release(served) // handed straight to the waiter
	<-notified
	if c, err := wt.Result(); c != served || err != nil {
		t.Fatalf("first wait: got %v, %v; want the released connection", c, err)
	}

	time.Sleep(timeout * 3 / 4) // the scenario: the first timer is due soon
	second := time.Now()
	if err := wt.Begin(second); err != nil {
		t.Fatal(err)
	}
	<-notified
	waited := time.Since(second)
	if c, err := wt.Result(); c != nil || !errors.Is(err, ErrAcquireTimeout) {
		t.Fatalf("second wait: got %v, %v; want ErrAcquireTimeout", c, err)
	}
	if waited < timeout {
		t.Errorf("second wait ended after %s, before acquire_timeout (%s)", waited, timeout)
	}
	if n := p.Stat().Waiting; n != 0 {
		t.Errorf("%d waiters left in the queue", n)
	}
}

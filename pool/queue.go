package pool

// waitQueue is the FIFO of waiters: a ring, so that serving the first of
// thousands of waiters moves nothing (a slice shifted at every Release
// cost a memmove of the whole queue per transaction at 5,000 clients).
// The zero value is an empty queue. It is guarded by the pool's lock.
type waitQueue struct {
	ring []*waiter // len(ring) is a power of two, or 0
	head int       // index of the first waiter
	n    int
}

func (q *waitQueue) len() int { return q.n }

// front returns the first waiter; the queue must not be empty.
func (q *waitQueue) front() *waiter { return q.ring[q.head] }

func (q *waitQueue) push(w *waiter) {
	if q.n == len(q.ring) {
		q.grow()
	}
	q.ring[(q.head+q.n)&(len(q.ring)-1)] = w
	q.n++
}

// pop removes and returns the first waiter, or nil.
func (q *waitQueue) pop() *waiter {
	if q.n == 0 {
		return nil
	}
	w := q.ring[q.head]
	q.ring[q.head] = nil
	q.head = (q.head + 1) & (len(q.ring) - 1)
	q.n--
	return w
}

// remove takes w out wherever it stands and reports whether it was there.
// It is linear, and used only when a wait is given up.
func (q *waitQueue) remove(w *waiter) bool {
	mask := len(q.ring) - 1
	for i := 0; i < q.n; i++ {
		if q.ring[(q.head+i)&mask] != w {
			continue
		}
		// Close the gap by moving the later waiters one place forward.
		for j := i; j < q.n-1; j++ {
			q.ring[(q.head+j)&mask] = q.ring[(q.head+j+1)&mask]
		}
		q.ring[(q.head+q.n-1)&mask] = nil
		q.n--
		return true
	}
	return false
}

func (q *waitQueue) grow() {
	size := max(2*len(q.ring), 16)
	ring := make([]*waiter, size)
	for i := 0; i < q.n; i++ {
		ring[i] = q.ring[(q.head+i)&(len(q.ring)-1)]
	}
	q.ring, q.head = ring, 0
}

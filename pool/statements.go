package pool

import (
	"container/list"
	"sync/atomic"
)

// Statements is the set of prepared statements a server connection holds
// under pgpoolx's names, bounded: the least recently used one goes first.
type Statements struct {
	max   int
	byKey map[string]*list.Element
	lru   list.List     // of string, most recently used at the front
	total *atomic.Int64 // the pool's count over all its connections
}

// NewStatements returns an empty set that holds at most max statements
// and keeps total (shared by a pool's connections) up to date.
func NewStatements(max int, total *atomic.Int64) *Statements {
	return &Statements{max: max, byKey: map[string]*list.Element{}, total: total}
}

// Has reports whether the statement is there, and marks it used.
func (s *Statements) Has(name string) bool {
	e, ok := s.byKey[name]
	if ok {
		s.lru.MoveToFront(e)
	}
	return ok
}

// Add records the statement as there and returns the statement to close
// on the server to stay within the bound, or "".
func (s *Statements) Add(name string) (evict string) {
	if e, ok := s.byKey[name]; ok {
		s.lru.MoveToFront(e)
		return ""
	}
	s.byKey[name] = s.lru.PushFront(name)
	if s.lru.Len() <= s.max {
		s.total.Add(1)
		return ""
	}
	last := s.lru.Back()
	s.lru.Remove(last)
	evict = last.Value.(string)
	delete(s.byKey, evict)
	return evict
}

// Remove forgets the statement.
func (s *Statements) Remove(name string) {
	if e, ok := s.byKey[name]; ok {
		s.lru.Remove(e)
		delete(s.byKey, name)
		s.total.Add(-1)
	}
}

// Clear forgets every statement.
func (s *Statements) Clear() {
	s.total.Add(-int64(len(s.byKey)))
	clear(s.byKey)
	s.lru.Init()
}

// Len reports how many statements are there.
func (s *Statements) Len() int { return len(s.byKey) }

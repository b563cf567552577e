package pool

import "container/list"

// Statements is the set of prepared statements a server connection holds
// under pgpoolx's names, bounded: the least recently used one goes first.
type Statements struct {
	max   int
	byKey map[string]*list.Element
	lru   list.List // of string, most recently used at the front
}

// NewStatements returns an empty set that holds at most max statements.
func NewStatements(max int) *Statements {
	return &Statements{max: max, byKey: map[string]*list.Element{}}
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
	}
}

// Clear forgets every statement.
func (s *Statements) Clear() {
	clear(s.byKey)
	s.lru.Init()
}

// Len reports how many statements are there.
func (s *Statements) Len() int { return len(s.byKey) }

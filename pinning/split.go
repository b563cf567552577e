package pinning

import "iter"

// scanner walks the significant tokens (no white space, no comments) of one
// statement and stops at the semicolon that ends it.
//
// Where a statement ends follows psql, which is what the server's grammar
// accepts for valid input: a semicolon inside parentheses does not end a
// statement (CREATE RULE ... DO (a; b)), nor does one inside the BEGIN
// ATOMIC ... END body of CREATE [OR REPLACE] FUNCTION|PROCEDURE. For
// invalid input the server rejects the whole query string before running
// any of it, so a different split there changes nothing.
type scanner struct {
	lx    Lexer
	depth int     // parenthesis depth
	begin int     // BEGIN/CASE ... END depth in a function body
	words int     // unquoted identifiers so far
	head  [4]byte // first letters of create/or/replace/function/procedure among the first 4 words
	start int     // offset of the first significant token, -1 while there is none
	end   int     // offset just after the last significant token
	done  bool    // the statement has ended
	atEOF bool    // the input has ended
}

func newScanner(lx Lexer) scanner { return scanner{lx: lx, start: -1} }

// next returns the next significant token of the statement, or an EOF
// token once the statement has ended.
func (sc *scanner) next() Token {
	for !sc.done {
		t := sc.lx.Next()
		switch t.Kind {
		case EOF:
			sc.done, sc.atEOF = true, true
			return t
		case Space, Comment:
			continue
		case Semicolon:
			if sc.depth == 0 && sc.begin == 0 {
				sc.done = true
				return Token{Kind: EOF, Pos: t.Pos}
			}
		case Punct:
			switch t.Text[0] {
			case '(':
				sc.depth++
			case ')':
				if sc.depth > 0 {
					sc.depth--
				}
			}
		case Ident:
			sc.word(t.Text)
		}
		if sc.start < 0 {
			sc.start = t.Pos
		}
		sc.end = t.End()
		return t
	}
	return Token{Kind: EOF, Pos: sc.lx.pos}
}

// peek returns the token next would return, without taking it.
func (sc *scanner) peek() Token {
	saved := *sc
	t := sc.next()
	*sc = saved
	return t
}

// drain reads to the end of the statement.
func (sc *scanner) drain() {
	for !sc.done {
		sc.next()
	}
}

// word tracks BEGIN ... END in SQL-standard function bodies with psql's
// heuristic: inside CREATE [OR REPLACE] FUNCTION|PROCEDURE, outside
// parentheses, BEGIN opens a block, CASE opens one when inside a block,
// and END closes one.
func (sc *scanner) word(w string) {
	if sc.words < len(sc.head) {
		var c byte
		if eqFold(w, "create") || eqFold(w, "function") || eqFold(w, "procedure") ||
			eqFold(w, "or") || eqFold(w, "replace") {
			c = w[0] | 0x20
		}
		sc.head[sc.words] = c
	}
	sc.words++
	h := &sc.head
	if sc.depth != 0 || h[0] != 'c' ||
		!(h[1] == 'f' || h[1] == 'p' || (h[1] == 'o' && h[2] == 'r' && (h[3] == 'f' || h[3] == 'p'))) {
		return
	}
	switch {
	case eqFold(w, "begin"):
		sc.begin++
	case eqFold(w, "case"):
		if sc.begin > 0 {
			sc.begin++
		}
	case eqFold(w, "end"):
		if sc.begin > 0 {
			sc.begin--
		}
	}
}

// Statements returns the statements of a query string, each trimmed of
// surrounding white space and comments and without its semicolon. Empty
// statements are skipped. Every statement is a substring of sql; nothing
// is copied.
func Statements(sql string) iter.Seq[string] { return Syntax{}.Statements(sql) }

// Statements is Statements for this Syntax.
func (s Syntax) Statements(sql string) iter.Seq[string] {
	return func(yield func(string) bool) {
		lx := s.NewLexer(sql)
		for {
			sc := newScanner(lx)
			sc.drain()
			if sc.start >= 0 && !yield(sql[sc.start:sc.end]) {
				return
			}
			if sc.atEOF {
				return
			}
			lx = sc.lx
		}
	}
}

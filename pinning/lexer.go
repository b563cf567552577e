package pinning

import "strings"

// TokenKind says what a Token is.
type TokenKind uint8

// The kinds of token. Every byte of the input belongs to exactly one token,
// white space and comments included, so the texts of all tokens put
// together give back the input.
const (
	EOF          TokenKind = iota // end of input; Text is empty
	Space                         // white space: space, \t, \n, \r, \f, \v
	Comment                       // -- to end of line, or /* */ (nested)
	Ident                         // unquoted identifier or keyword
	QuotedIdent                   // "a""b" or U&"d\0061t"
	String                        // 'it''s', E'\n', N'x', U&'\0041', with continuation lines
	BitString                     // B'101', X'1F'
	DollarString                  // $$...$$, $tag$...$tag$
	Number                        // 42, 3.5, .5, 1e10, 0x1F, 1_000
	Param                         // $1
	Op                            // operators: + - * / < > = ~ ! @ # % ^ & | ` ? and runs of them, ::, :=, ..
	Punct                         // one of ( ) [ ] , . :
	Semicolon                     // ;
)

var kindNames = [...]string{
	EOF: "EOF", Space: "Space", Comment: "Comment", Ident: "Ident", QuotedIdent: "QuotedIdent",
	String: "String", BitString: "BitString", DollarString: "DollarString", Number: "Number",
	Param: "Param", Op: "Op", Punct: "Punct", Semicolon: "Semicolon",
}

func (k TokenKind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "TokenKind(?)"
}

// Token is one lexical token. Text is a substring of the input, never a
// copy.
type Token struct {
	Kind TokenKind
	// Unterminated is set on a string, quoted identifier, dollar-quoted
	// string or block comment that runs to the end of the input without
	// its closing delimiter. PostgreSQL rejects such input.
	Unterminated bool
	Pos          int // byte offset of Text in the input
	Text         string
}

// End is the byte offset just after the token.
func (t Token) End() int { return t.Pos + len(t.Text) }

// IsLiteral reports whether the token is a constant: a string, bit
// string, dollar-quoted string or number.
func (t Token) IsLiteral() bool {
	switch t.Kind {
	case String, BitString, DollarString, Number:
		return true
	}
	return false
}

// Syntax holds the session settings that change how PostgreSQL reads SQL
// text. The zero value is PostgreSQL's default since 9.1.
type Syntax struct {
	// StandardConformingStringsOff is true when the session runs with
	// standard_conforming_strings = off: then a backslash escapes the next
	// character in ordinary '...' strings too, as in E'...'. The server
	// reports this setting in ParameterStatus, so a proxy always knows it.
	// Getting it wrong would let 'a\'; SET x = 1; --' hide or invent a
	// statement.
	StandardConformingStringsOff bool
}

// Lexer splits SQL text into tokens the way PostgreSQL's scanner does.
// It never fails: anything it does not know becomes a one-byte Op, and an
// unterminated string, identifier or comment runs to the end of the input.
// Lexing is linear in the length of the input.
type Lexer struct {
	src        string
	pos        int
	backslash  bool // ordinary strings take backslash escapes
	plusMinusE int  // [pos, plusMinusE) is a run of + and - that lexes one byte per token
}

// NewLexer returns a lexer over src with the default Syntax.
func NewLexer(src string) Lexer { return Syntax{}.NewLexer(src) }

// NewLexer returns a lexer over src for this Syntax.
func (s Syntax) NewLexer(src string) Lexer {
	return Lexer{src: src, backslash: s.StandardConformingStringsOff}
}

// Pos is the byte offset of the next token.
func (l *Lexer) Pos() int { return l.pos }

// Next returns the next token, or a token of kind EOF at the end.
func (l *Lexer) Next() Token {
	src, start := l.src, l.pos
	if start >= len(src) {
		return Token{Kind: EOF, Pos: len(src)}
	}
	kind, end, open := l.scan(start)
	if end <= start { // cannot happen; guards the loop against a bug
		end = start + 1
	}
	l.pos = end
	return Token{Kind: kind, Unterminated: open, Pos: start, Text: src[start:end]}
}

func (l *Lexer) scan(i int) (kind TokenKind, end int, open bool) {
	src := l.src
	n := len(src)
	c := src[i]
	var c1 byte
	if i+1 < n {
		c1 = src[i+1]
	}
	switch cl := byteClass[c]; {
	case cl&classIdentStart != 0:
		if c1 == '\'' {
			switch c | 0x20 {
			case 'e':
				end, open = l.quoted(i+2, true, true)
				return String, end, open
			case 'n':
				end, open = l.quoted(i+2, l.backslash, true)
				return String, end, open
			case 'b', 'x':
				end, open = l.quoted(i+2, false, false)
				return BitString, end, open
			}
		} else if c1 == '&' && c|0x20 == 'u' && i+2 < n {
			switch src[i+2] {
			case '\'':
				end, open = l.quoted(i+3, false, true)
				return String, end, open
			case '"':
				end, open = quotedIdentEnd(src, i+3)
				return QuotedIdent, end, open
			}
		}
		j := i + 1
		for j < n && byteClass[src[j]]&classIdentCont != 0 {
			j++
		}
		return Ident, j, false
	case cl&classSpace != 0:
		j := i + 1
		for j < n && byteClass[src[j]]&classSpace != 0 {
			j++
		}
		return Space, j, false
	case cl&classDigit != 0:
		return Number, numberEnd(src, i), false
	}
	switch c {
	case '-':
		if c1 == '-' {
			return Comment, lineEnd(src, i+2), false
		}
	case '/':
		if c1 == '*' {
			end, open = blockCommentEnd(src, i+2)
			return Comment, end, open
		}
	case '\'':
		end, open = l.quoted(i+1, l.backslash, true)
		return String, end, open
	case '"':
		end, open = quotedIdentEnd(src, i+1)
		return QuotedIdent, end, open
	case '$':
		if isDigit(c1) {
			j := i + 2
			for j < n && isDigit(src[j]) {
				j++
			}
			return Param, j, false
		}
		if tagEnd := dollarTagEnd(src, i); tagEnd > 0 {
			delim := src[i:tagEnd]
			k := strings.Index(src[tagEnd:], delim)
			if k < 0 {
				return DollarString, n, true
			}
			return DollarString, tagEnd + k + len(delim), false
		}
		return Op, i + 1, false
	case ';':
		return Semicolon, i + 1, false
	case ':':
		if c1 == ':' || c1 == '=' {
			return Op, i + 2, false
		}
		return Punct, i + 1, false
	case '.':
		if isDigit(c1) {
			return Number, numberEnd(src, i), false
		}
		if c1 == '.' {
			return Op, i + 2, false
		}
		return Punct, i + 1, false
	case '(', ')', '[', ']', ',':
		return Punct, i + 1, false
	}
	if isOpChar(c) {
		return Op, l.operatorEnd(i), false
	}
	return Op, i + 1, false
}

// quoted scans the body of a '...' string starting just after the opening
// quote, including SQL's continuation of a string on the next line
// ('a'<newline>'b' is one string). backslash: \ escapes the next byte;
// doubled: a doubled quote is a quote inside the string (not so in
// B'...' and X'...').
func (l *Lexer) quoted(i int, backslash, doubled bool) (end int, open bool) {
	src := l.src
	n := len(src)
	for i < n {
		if !backslash {
			k := strings.IndexByte(src[i:], '\'')
			if k < 0 {
				return n, true
			}
			i += k
		}
		c := src[i]
		switch {
		case c == '\\' && backslash:
			i += 2
		case c == '\'':
			if doubled && i+1 < n && src[i+1] == '\'' {
				i += 2
				continue
			}
			j := continuation(src, i+1)
			if j < 0 {
				return i + 1, false
			}
			i = j + 1
		default:
			i++
		}
	}
	return n, true
}

// continuation looks past the end quote of a string at i for white space
// holding at least one newline and then another quote, which continues the
// string. It returns the position of that quote, or -1. Only -- comments may
// appear in between, as in PostgreSQL.
func continuation(src string, i int) int {
	n := len(src)
	newline := false
	for i < n {
		c := src[i]
		switch {
		case c == '\n' || c == '\r':
			newline = true
			i++
		case c == ' ' || c == '\t' || c == '\f' || c == '\v':
			i++
		case c == '-' && i+1 < n && src[i+1] == '-':
			i = lineEnd(src, i+2)
			if i >= n {
				return -1
			}
		case c == '\'' && newline:
			return i
		default:
			return -1
		}
	}
	return -1
}

func lineEnd(src string, i int) int {
	for i < len(src) && src[i] != '\n' && src[i] != '\r' {
		i++
	}
	return i
}

// blockCommentEnd scans a /* */ comment body; comments nest.
func blockCommentEnd(src string, i int) (end int, open bool) {
	n := len(src)
	depth := 0
	for i+1 < n {
		switch {
		case src[i] == '*' && src[i+1] == '/':
			if depth == 0 {
				return i + 2, false
			}
			depth--
			i += 2
		case src[i] == '/' && src[i+1] == '*':
			depth++
			i += 2
		default:
			i++
		}
	}
	return n, true
}

func quotedIdentEnd(src string, i int) (end int, open bool) {
	n := len(src)
	for i < n {
		k := strings.IndexByte(src[i:], '"')
		if k < 0 {
			break
		}
		i += k
		if i+1 < n && src[i+1] == '"' {
			i += 2
			continue
		}
		return i + 1, false
	}
	return n, true
}

// dollarTagEnd returns the end of a $tag$ or $$ delimiter starting at i,
// or 0 when there is none.
func dollarTagEnd(src string, i int) int {
	j := i + 1
	if j < len(src) && isIdentStart(src[j]) {
		j++
		for j < len(src) && (isIdentStart(src[j]) || isDigit(src[j])) {
			j++
		}
	}
	if j < len(src) && src[j] == '$' {
		return j + 1
	}
	return 0
}

// numberEnd scans a numeric constant as PostgreSQL 16 does: decimal
// integers with _ between digits, 0x/0o/0b integers, decimals, exponents.
// 1..2 is 1 followed by "..".
func numberEnd(src string, i int) int {
	n := len(src)
	if src[i] == '0' && i+1 < n {
		base := 0
		switch src[i+1] {
		case 'x', 'X':
			base = 16
		case 'o', 'O':
			base = 8
		case 'b', 'B':
			base = 2
		}
		if base != 0 {
			if j := radixDigitsEnd(src, i+2, base); j > i+2 {
				return j
			}
		}
	}
	j := i
	if src[j] != '.' {
		j = decimalsEnd(src, j)
	}
	if j < n && src[j] == '.' && !(j+1 < n && src[j+1] == '.') {
		j = decimalsEnd(src, j+1)
	}
	if j < n && (src[j] == 'e' || src[j] == 'E') {
		k := j + 1
		if k < n && (src[k] == '+' || src[k] == '-') {
			k++
		}
		if k < n && isDigit(src[k]) {
			j = decimalsEnd(src, k)
		}
	}
	return j
}

// decimalsEnd scans decimal digits with single underscores between them.
func decimalsEnd(src string, i int) int {
	n := len(src)
	for i < n {
		if isDigit(src[i]) {
			i++
		} else if src[i] == '_' && i > 0 && isDigit(src[i-1]) && i+1 < n && isDigit(src[i+1]) {
			i += 2
		} else {
			break
		}
	}
	return i
}

// radixDigitsEnd scans the digits of a 0x, 0o or 0b integer: single
// underscores may come before or between digits (0x_1F, 0x1_F).
func radixDigitsEnd(src string, i, base int) int {
	n := len(src)
	ok := func(c byte) bool {
		switch base {
		case 16:
			return isHexDigit(c)
		case 8:
			return c >= '0' && c <= '7'
		}
		return c == '0' || c == '1'
	}
	for i < n {
		if ok(src[i]) {
			i++
		} else if src[i] == '_' && i+1 < n && ok(src[i+1]) {
			i += 2
		} else {
			break
		}
	}
	return i
}

// operatorEnd applies PostgreSQL's rule for operators: the longest run of
// operator characters, cut before any -- or /* inside it; and a
// multi-character operator may not end in + or - unless it holds one of
// ~ ! @ # ^ & | ` ? %, so that "=-1" is "=", "-", "1".
//
// Cutting the trailing + and - naively would rescan the rest of a long
// run like "+-+-+-..." once per byte, which is quadratic. The cut part is
// all + and - and lexes one byte per token, so it is remembered in
// plusMinusE instead.
func (l *Lexer) operatorEnd(i int) int {
	if i < l.plusMinusE {
		return i + 1
	}
	src := l.src
	n := len(src)
	special := false
	lastOther := -1 // last byte that is not + or -
	j := i
	for j < n && isOpChar(src[j]) {
		c := src[j]
		if j > i && j+1 < n && ((c == '-' && src[j+1] == '-') || (c == '/' && src[j+1] == '*')) {
			break
		}
		switch c {
		case '~', '!', '@', '#', '^', '&', '|', '`', '?', '%':
			special = true
		}
		if c != '+' && c != '-' {
			lastOther = j
		}
		j++
	}
	if j-i > 1 && !special && (src[j-1] == '+' || src[j-1] == '-') {
		cut := i + 1
		if lastOther >= i {
			cut = lastOther + 1
		}
		l.plusMinusE = j
		return cut
	}
	return j
}

const (
	classSpace      = 1 << iota // white space
	classIdentStart             // may start an identifier
	classIdentCont              // may continue an identifier
	classDigit                  // 0-9
)

// byteClass sorts bytes for the lexer's hot loops.
var byteClass = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		b := byte(c)
		if b == ' ' || b == '\t' || b == '\n' || b == '\r' || b == '\f' || b == '\v' {
			t[c] |= classSpace
		}
		if (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || b == '_' || b >= 0x80 {
			t[c] |= classIdentStart | classIdentCont
		}
		if b >= '0' && b <= '9' {
			t[c] |= classDigit | classIdentCont
		}
		if b == '$' {
			t[c] |= classIdentCont
		}
	}
	return t
}()

func isSpace(c byte) bool { return byteClass[c]&classSpace != 0 }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isHexDigit(c byte) bool {
	return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func isIdentStart(c byte) bool { return byteClass[c]&classIdentStart != 0 }

func isIdentCont(c byte) bool { return byteClass[c]&classIdentCont != 0 }

func isOpChar(c byte) bool {
	switch c {
	case '~', '!', '@', '#', '^', '&', '|', '`', '?', '+', '-', '*', '/', '%', '<', '>', '=':
		return true
	}
	return false
}

package pinning

import "strconv"

// Digest returns sql normalized for logs and for grouping statements that
// differ only in their constants, so that no literal value reaches a log:
//
//   - comments are removed and white space between tokens becomes one
//     space (none at the ends);
//   - unquoted identifiers and keywords are lowercased, quoted identifiers
//     are kept as written;
//   - every constant (string of any kind, bit string, dollar-quoted string,
//     number) and every existing $n parameter becomes $1, $2, ... numbered
//     in order;
//   - in SET, the value is a constant even when written as an identifier
//     or keyword (SET x TO on), so each item of a plain value list
//     becomes $n too, except DEFAULT and LOCAL;
//   - statements are joined by "; ", empty statements and the final
//     semicolon dropped.
//
// SET client_encoding TO 'unicode' gives "set client_encoding to $1".
// A minus sign stays outside the placeholder: x = -1 gives "x = -$1".
func Digest(sql string) string { return Syntax{}.Digest(sql) }

// Digest is Digest for this Syntax.
func (s Syntax) Digest(sql string) string { return string(s.AppendDigest(nil, sql)) }

// AppendDigest appends the digest of sql to dst and returns the extended
// buffer.
func AppendDigest(dst []byte, sql string) []byte { return Syntax{}.AppendDigest(dst, sql) }

// AppendDigest is AppendDigest for this Syntax.
func (s Syntax) AppendDigest(dst []byte, sql string) []byte {
	lx := s.NewLexer(sql)
	params := 0
	wrote := false
	for {
		sc := newScanner(lx)
		t := sc.next()
		setFrom := -1
		if isWord(t, "set") {
			look := sc
			h := parseSetHead(&look)
			if h.form != setNone && h.form != setTxLocal && h.form != setCharacteristics &&
				h.value.Kind != EOF && isValueList(&look, h.value) {
				setFrom = h.value.Pos
			}
		}
		prevEnd := -1
		for ; t.Kind != EOF; t = sc.next() {
			placeholder := false
			switch t.Kind {
			case String, BitString, DollarString, Number, Param:
				placeholder = true
			case Ident:
				placeholder = setFrom >= 0 && t.Pos >= setFrom && !isWord(t, "default") && !isWord(t, "local")
			case QuotedIdent:
				placeholder = setFrom >= 0 && t.Pos >= setFrom
			}
			first := t.Text[0]
			if placeholder {
				first = '$'
			}
			switch {
			case prevEnd < 0:
				if wrote {
					dst = append(dst, "; "...)
				}
			case t.Pos > prevEnd:
				dst = append(dst, ' ')
			case len(dst) > 0 && isWordByte(dst[len(dst)-1]) && isWordByte(first):
				// 'a'b or x'1'2: keep the placeholder apart from what
				// touches it, so the digest reads as it lexes.
				dst = append(dst, ' ')
			}
			switch {
			case placeholder:
				params++
				dst = append(dst, '$')
				dst = strconv.AppendInt(dst, int64(params), 10)
			case t.Kind == Ident:
				for i := 0; i < len(t.Text); i++ {
					c := t.Text[i]
					if c >= 'A' && c <= 'Z' {
						c += 'a' - 'A'
					}
					dst = append(dst, c)
				}
			default:
				dst = append(dst, t.Text...)
			}
			prevEnd = t.End()
			wrote = true
		}
		if sc.atEOF {
			return dst
		}
		lx = sc.lx
	}
}

// isValueList reports whether a SET value starting at t is a list of
// plain items: constants, identifiers, keywords, signed numbers.
func isValueList(sc *scanner, t Token) bool {
	item := true
	for ; t.Kind != EOF; t = sc.next() {
		if !item {
			if !isPunct(t, ',') {
				return false
			}
			item = true
			continue
		}
		if t.Kind == Op && (t.Text == "-" || t.Text == "+") {
			if t = sc.next(); t.Kind != Number {
				return false
			}
		}
		switch t.Kind {
		case String, DollarString, Ident, QuotedIdent, Number:
		default:
			return false
		}
		item = false
	}
	return !item
}

func isWordByte(c byte) bool { return isIdentCont(c) }

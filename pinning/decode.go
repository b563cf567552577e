package pinning

import (
	"strings"
	"unicode/utf8"
)

// maxIdentBytes is NAMEDATALEN-1: PostgreSQL truncates longer identifiers.
const maxIdentBytes = 63

// identName returns the name an identifier token stands for, as
// PostgreSQL's scanner does: an unquoted identifier is lowercased (ASCII
// only, as for UTF-8 databases), a quoted one keeps its case with ""
// undoubled, U&"..." has its Unicode escapes decoded (UESCAPE is not
// supported for identifiers); all are truncated to 63 bytes. For any other
// token it returns the text as written.
func identName(t Token) string {
	switch t.Kind {
	case Ident:
		return truncateIdent(lowerASCII(t.Text))
	case QuotedIdent:
		s := t.Text
		unicode := s[0] != '"'
		if unicode {
			s = s[2:]
		}
		s = s[1:]
		if !t.Unterminated && len(s) > 0 {
			s = s[:len(s)-1]
		}
		if strings.Contains(s, `""`) {
			s = strings.ReplaceAll(s, `""`, `"`)
		}
		if unicode {
			s = decodeUnicodeEscapes(s, '\\')
		}
		return truncateIdent(s)
	}
	return t.Text
}

func truncateIdent(s string) string {
	if len(s) <= maxIdentBytes {
		return s
	}
	i := maxIdentBytes
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}

// lowerASCII lowercases ASCII letters, allocating only when there is an
// upper case letter.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; c >= 'A' && c <= 'Z' {
					b[j] = c + ('a' - 'A')
				}
			}
			return string(b)
		}
	}
	return s
}

// eqFold reports whether s equals the lowercase ASCII word kw, ignoring
// ASCII case.
func eqFold(s, kw string) bool {
	if len(s) != len(kw) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != kw[i] {
			return false
		}
	}
	return true
}

// stringValue returns the value of a String token: the text between the
// quotes with doubled quotes undoubled, escapes decoded for E'...'
// strings (and for plain '...' strings when backslash is set, i.e.
// standard_conforming_strings is off), Unicode escapes decoded for
// U&'...' strings using escape character uesc, and continuation lines
// joined. A string with nothing to decode is
// returned without copying. For other tokens it returns "".
func stringValue(t Token, backslash bool, uesc byte) string {
	if t.Kind != String {
		return ""
	}
	s := t.Text
	unicode := false
	switch s[0] {
	case 'e', 'E':
		backslash = true
		s = s[1:]
	case 'n', 'N':
		s = s[1:]
	case 'u', 'U':
		unicode, backslash = true, false
		s = s[2:]
	}
	// s starts with the opening quote.
	body := s[1:]
	if !unicode {
		// Fast path: one segment, no '' and no escapes.
		k := strings.IndexByte(body, '\'')
		simple := k == len(body)-1
		if t.Unterminated {
			simple = k < 0
		}
		if simple && (!backslash || strings.IndexByte(body, '\\') < 0) {
			if k < 0 {
				return body
			}
			return body[:k]
		}
	}
	var b []byte
	i, n := 1, len(s)
	for i < n {
		c := s[i]
		switch {
		case c == '\'':
			if i+1 < n && s[i+1] == '\'' {
				b = append(b, '\'')
				i += 2
				continue
			}
			j := continuation(s, i+1)
			if j < 0 {
				i = n
				continue
			}
			i = j + 1
		case c == '\\' && backslash:
			var adv int
			b, adv = appendEscape(b, s[i:])
			i += adv
		default:
			b = append(b, c)
			i++
		}
	}
	if unicode {
		return decodeUnicodeEscapes(string(b), uesc)
	}
	return string(b)
}

// appendEscape decodes one backslash escape of an E'...' string at the start
// of s and returns how many bytes it used.
func appendEscape(b []byte, s string) ([]byte, int) {
	if len(s) < 2 {
		return append(b, '\\'), 1
	}
	switch c := s[1]; c {
	case 'b':
		return append(b, '\b'), 2
	case 'f':
		return append(b, '\f'), 2
	case 'n':
		return append(b, '\n'), 2
	case 'r':
		return append(b, '\r'), 2
	case 't':
		return append(b, '\t'), 2
	case '0', '1', '2', '3', '4', '5', '6', '7':
		v, k := 0, 1
		for k < 4 && k < len(s) && s[k] >= '0' && s[k] <= '7' {
			v = v*8 + int(s[k]-'0')
			k++
		}
		return append(b, byte(v)), k
	case 'x':
		v, k := 0, 2
		for k < 4 && k < len(s) && isHexDigit(s[k]) {
			v = v*16 + hexVal(s[k])
			k++
		}
		if k == 2 {
			return append(b, 'x'), 2
		}
		return append(b, byte(v)), k
	case 'u', 'U':
		digits := 4
		if c == 'U' {
			digits = 8
		}
		r, ok := hexRune(s[2:], digits)
		if !ok {
			return append(b, c), 2
		}
		k := 2 + digits
		if utf16High(r) && len(s) >= k+6 && s[k] == '\\' && s[k+1] == 'u' {
			if r2, ok := hexRune(s[k+2:], 4); ok && utf16Low(r2) {
				return utf8.AppendRune(b, combineSurrogates(r, r2)), k + 6
			}
		}
		return utf8.AppendRune(b, r), k
	default:
		return append(b, c), 2
	}
}

// decodeUnicodeEscapes decodes the escapes of U&'...' strings and U&"..."
// identifiers: esc followed by 4 hex digits, esc + and 6 hex digits, and
// esc esc for esc itself.
func decodeUnicodeEscapes(s string, esc byte) string {
	if strings.IndexByte(s, esc) < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		if s[i] != esc {
			b = append(b, s[i])
			i++
			continue
		}
		var r rune
		var k int
		ok := false
		switch {
		case i+1 < len(s) && s[i+1] == esc:
			b = append(b, esc)
			i += 2
			continue
		case i+1 < len(s) && s[i+1] == '+':
			r, ok = hexRune(s[i+2:], 6)
			k = 8
		default:
			r, ok = hexRune(s[i+1:], 4)
			k = 5
		}
		if !ok {
			b = append(b, s[i])
			i++
			continue
		}
		i += k
		if utf16High(r) && i+5 <= len(s) && s[i] == esc {
			if r2, ok := hexRune(s[i+1:], 4); ok && utf16Low(r2) {
				r = combineSurrogates(r, r2)
				i += 5
			}
		}
		b = utf8.AppendRune(b, r)
	}
	return string(b)
}

func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	default:
		return int(c-'A') + 10
	}
}

func hexRune(s string, digits int) (rune, bool) {
	if len(s) < digits {
		return 0, false
	}
	var v rune
	for i := 0; i < digits; i++ {
		if !isHexDigit(s[i]) {
			return 0, false
		}
		v = v*16 + rune(hexVal(s[i]))
	}
	return v, true
}

func utf16High(r rune) bool { return r >= 0xD800 && r <= 0xDBFF }
func utf16Low(r rune) bool  { return r >= 0xDC00 && r <= 0xDFFF }

func combineSurrogates(hi, lo rune) rune {
	return 0x10000 + (hi-0xD800)<<10 + (lo - 0xDC00)
}

// parseBool reads a boolean the way PostgreSQL's boolin does: any unique
// prefix of true, false, yes, no, on, off (at least "of" for off), or 1
// or 0, ignoring case and surrounding white space.
func parseBool(s string) (value, ok bool) {
	s = strings.TrimFunc(s, func(r rune) bool { return r < utf8.RuneSelf && isSpace(byte(r)) })
	if s == "" {
		return false, false
	}
	prefixOf := func(word string, min int) bool {
		return len(s) >= min && len(s) <= len(word) && eqFold(s, word[:len(s)])
	}
	switch {
	case prefixOf("true", 1), prefixOf("yes", 1), prefixOf("on", 2), s == "1":
		return true, true
	case prefixOf("false", 1), prefixOf("no", 1), prefixOf("off", 2), s == "0":
		return false, true
	}
	return false, false
}

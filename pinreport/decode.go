package pinreport

import (
	"bytes"
	"unicode/utf16"
	"unicode/utf8"
)

// decoder decodes the lines classify picked. It walks the top-level
// object once and keeps the fields the report reads, without reflection
// and, for strings without escapes, without copying: a gigabyte of pin
// lines decodes at memory speed rather than at encoding/json's. It checks
// the object's structure (keys, colons, commas, balanced brackets and
// closed strings) but not every literal, which the fields read are parsed
// from anyway.
type decoder struct {
	// Unescaped copies of string fields that had escapes, one buffer a
	// field, reused from line to line.
	bufs [fieldCount][]byte
}

// String fields, and their buffers in decoder.bufs.
const (
	fieldMsg = iota
	fieldLogger
	fieldReason
	fieldDetail
	fieldDigest
	fieldHint
	fieldInitQuery
	fieldDB
	fieldUser
	fieldCount
)

// decode fully decodes line b, of kind k by classify. A line that is not
// a JSON object is kindUndecodable; one whose top-level message is not k's
// after all, or that another program logged, is kindOther.
func (d *decoder) decode(b []byte, k kind) entry {
	var (
		e                   entry
		msg, logger, ts     []byte
		haveMsg, haveLogger bool
	)
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return entry{kind: kindUndecodable}
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		i++
	} else {
		for {
			if i >= len(b) || b[i] != '"' {
				return entry{kind: kindUndecodable}
			}
			keyEnd, ok := endOfString(b, i)
			if !ok {
				return entry{kind: kindUndecodable}
			}
			key := b[i+1 : keyEnd-1]
			i = skipWS(b, keyEnd)
			if i >= len(b) || b[i] != ':' {
				return entry{kind: kindUndecodable}
			}
			i = skipWS(b, i+1)
			valEnd, ok := endOfValue(b, i)
			if !ok {
				return entry{kind: kindUndecodable}
			}
			v := b[i:valEnd]
			// Keys with escapes are none of ours: they compare unequal.
			switch string(key) {
			case "msg":
				msg, haveMsg = d.str(fieldMsg, v)
			case "logger":
				logger, haveLogger = d.str(fieldLogger, v)
			case "ts":
				ts = v
			case "client_id":
				e.clientID, e.hasClientID = parseUint(v)
			case "reason":
				e.reason, _ = d.str(fieldReason, v)
			case "detail":
				e.detail, _ = d.str(fieldDetail, v)
			case "digest":
				e.digest, _ = d.str(fieldDigest, v)
			case "hint":
				e.hint, _ = d.str(fieldHint, v)
			case "init_query":
				e.initQuery, _ = d.str(fieldInitQuery, v)
			case "db":
				e.db, _ = d.str(fieldDB, v)
			case "user":
				e.user, _ = d.str(fieldUser, v)
			case "pinned_for":
				e.pinnedFor, e.hasPinnedFor = parseDuration(v)
			case "transactions":
				e.transactions, _ = parseInt(v)
			case "clients":
				e.clients, _ = parseInt(v)
			case "clients_pinned":
				e.clientsPinned, _ = parseInt(v)
			case "clients_waiting":
				e.clientsWaiting, _ = parseInt(v)
			case "server_conns":
				e.serverConns, _ = parseInt(v)
			}
			i = skipWS(b, valEnd)
			if i < len(b) && b[i] == ',' {
				i = skipWS(b, i+1)
				continue
			}
			if i < len(b) && b[i] == '}' {
				i++
				break
			}
			return entry{kind: kindUndecodable}
		}
	}
	if skipWS(b, i) != len(b) {
		return entry{kind: kindUndecodable}
	}
	if !haveMsg || kindOf(msg) != k || haveLogger && !isOurLogger(logger) {
		return entry{kind: kindOther}
	}
	e.kind = k
	if len(ts) > 1 && ts[0] == '"' {
		ts = ts[1 : len(ts)-1]
	}
	e.ts, _ = parseTS(ts)
	return e
}

// str returns the text of JSON string v, unescaped into the field's
// buffer if it has escapes, or false if v is not a string.
func (d *decoder) str(field int, v []byte) ([]byte, bool) {
	if len(v) < 2 || v[0] != '"' {
		return nil, false
	}
	s := v[1 : len(v)-1]
	if bytes.IndexByte(s, '\\') < 0 {
		return s, true
	}
	d.bufs[field] = appendUnquoted(d.bufs[field][:0], s)
	return d.bufs[field], true
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// endOfString returns the index after the closing quote of the string that
// opens at b[i].
func endOfString(b []byte, i int) (int, bool) {
	for j := i + 1; ; {
		q := bytes.IndexByte(b[j:], '"')
		if q < 0 {
			return 0, false
		}
		end := j + q
		backslashes := 0
		for k := end - 1; k > i && b[k] == '\\'; k-- {
			backslashes++
		}
		if backslashes%2 == 0 {
			return end + 1, true
		}
		j = end + 1
	}
}

// endOfValue returns the index after the JSON value that starts at b[i]:
// a string, an object or array (brackets balanced, strings skipped), or a
// literal.
func endOfValue(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch b[i] {
	case '"':
		return endOfString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end, ok := endOfString(b, j)
				if !ok {
					return 0, false
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, true
				}
			}
		}
		return 0, false
	}
	j := i
	for j < len(b) && isLiteralByte(b[j]) {
		j++
	}
	return j, j > i
}

func isLiteralByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '+' || c == '.'
}

// parseUint reads a JSON integer that fits a uint64.
func parseUint(v []byte) (uint64, bool) {
	if len(v) == 0 {
		return 0, false
	}
	var n uint64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (1<<64-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// parseInt reads a JSON integer that fits an int64.
func parseInt(v []byte) (int64, bool) {
	neg := len(v) > 0 && v[0] == '-'
	if neg {
		v = v[1:]
	}
	n, ok := parseUint(v)
	switch {
	case !ok:
		return 0, false
	case neg && n <= 1<<63:
		return int64(-n), true // -(1<<63) wraps to itself: MinInt64
	case !neg && n < 1<<63:
		return int64(n), true
	}
	return 0, false
}

// appendUnquoted appends the text of the JSON string content s (between
// its quotes) as encoding/json decodes it: escapes resolved, \u surrogate
// pairs joined, a lone surrogate or a broken escape as U+FFFD.
func appendUnquoted(dst, s []byte) []byte {
	for len(s) > 0 {
		j := bytes.IndexByte(s, '\\')
		if j < 0 {
			return append(dst, s...)
		}
		dst = append(dst, s[:j]...)
		s = s[j:]
		if len(s) < 2 {
			return utf8.AppendRune(dst, utf8.RuneError)
		}
		switch c := s[1]; c {
		case '"', '\\', '/':
			dst = append(dst, c)
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, ok := hex4(s[2:])
			if !ok {
				dst = utf8.AppendRune(dst, utf8.RuneError)
				s = s[2:]
				continue
			}
			s = s[6:]
			if utf16.IsSurrogate(r) {
				r2, ok := rune(0), false
				if len(s) >= 6 && s[0] == '\\' && s[1] == 'u' {
					r2, ok = hex4(s[2:])
				}
				if dec := utf16.DecodeRune(r, r2); ok && dec != utf8.RuneError {
					r = dec
					s = s[6:]
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default:
			dst = utf8.AppendRune(dst, utf8.RuneError)
		}
		s = s[2:]
	}
	return dst
}

func hex4(s []byte) (rune, bool) {
	if len(s) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range s[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

package pinning

// setForm is which of SET's forms a statement uses.
type setForm uint8

const (
	setNone            setForm = iota // not a SET this package reads (a syntax error)
	setGeneric                        // SET name {TO|=} value
	setTxLocal                        // SET TRANSACTION ..., SET CONSTRAINTS ...
	setCharacteristics                // SET SESSION CHARACTERISTICS AS TRANSACTION ...
	setSessionAuth                    // SET SESSION AUTHORIZATION ...
	setTimeZone                       // SET TIME ZONE ...
	setNames                          // SET NAMES ...
	setSchema                         // SET SCHEMA ...
	setRole                           // SET ROLE ...
	setXMLOption                      // SET XML OPTION ...
)

// setHead is a SET statement read up to its value.
type setHead struct {
	form  setForm
	local bool   // SET LOCAL
	name  string // canonical, lowercase setting name
	value Token  // first token of the value, EOF when there is none
}

// parseSetHead reads a SET statement after the SET keyword, up to and
// including the first token of its value.
func parseSetHead(sc *scanner) (h setHead) {
	t := sc.next()
	if isWord(t, "local") || isWord(t, "session") {
		// SET SESSION name TO ... and SET session TO ... (a setting
		// named "session") both parse; SESSION AUTHORIZATION and SESSION
		// CHARACTERISTICS are forms of their own.
		n := sc.peek()
		if !isAssign(n) && !isPunct(n, '.') && !(isWord(t, "session") &&
			(isWord(n, "authorization") || isWord(n, "characteristics"))) {
			h.local = isWord(t, "local")
			t = sc.next()
		}
	}
	n := sc.peek()
	notName := !isAssign(n) && !isPunct(n, '.') // t is not the name in "t TO value"
	switch {
	case notName && (isWord(t, "transaction") || isWord(t, "constraints")):
		h.form = setTxLocal
	case isWord(t, "session") && isWord(n, "characteristics"):
		sc.next()
		if !isWord(sc.next(), "as") || !isWord(sc.next(), "transaction") {
			return setHead{}
		}
		h.form = setCharacteristics
	case isWord(t, "session") && isWord(n, "authorization"):
		sc.next()
		h.form, h.name = setSessionAuth, "session_authorization"
	case isWord(t, "time") && isWord(n, "zone"):
		sc.next()
		h.form, h.name = setTimeZone, "timezone"
	case notName && isWord(t, "names"):
		h.form, h.name = setNames, "client_encoding"
	case notName && isWord(t, "schema"):
		h.form, h.name = setSchema, "search_path"
	case notName && isWord(t, "role"):
		h.form, h.name = setRole, "role"
	case isWord(t, "xml") && isWord(n, "option"):
		sc.next()
		h.form, h.name = setXMLOption, "xmloption"
	default:
		name, ok := settingName(sc, t)
		if !ok || !isAssign(sc.next()) {
			return setHead{}
		}
		h.form, h.name = setGeneric, name
	}
	h.value = sc.next()
	return h
}

func isAssign(t Token) bool {
	return isWord(t, "to") || (t.Kind == Op && t.Text == "=")
}

// settingName reads a setting name, name or name.name..., starting at t.
// Setting names are lowercased even when quoted: PostgreSQL looks them up
// without regard to case.
func settingName(sc *scanner, t Token) (string, bool) {
	if t.Kind != Ident && t.Kind != QuotedIdent {
		return "", false
	}
	first, last := t, t
	// simple: unquoted parts joined by dots with nothing in between, so
	// the name is a substring of the input.
	simple := t.Kind == Ident && len(t.Text) <= maxIdentBytes
	built := ""
	if !simple {
		built = identName(first)
	}
	for isPunct(sc.peek(), '.') {
		dot := sc.next()
		part := sc.peek()
		if part.Kind != Ident && part.Kind != QuotedIdent {
			break
		}
		sc.next()
		if simple && (part.Kind != Ident || len(part.Text) > maxIdentBytes ||
			dot.Pos != last.End() || part.Pos != dot.End()) {
			simple = false
			built = sc.lx.src[first.Pos:last.End()]
		}
		if !simple {
			built += "." + identName(part)
		}
		last = part
	}
	if simple {
		return lowerASCII(sc.lx.src[first.Pos:last.End()]), true
	}
	return lowerASCII(built), true
}

// set classifies a SET statement.
func (c *classifier) set() {
	h := parseSetHead(&c.sc)
	if h.form == setNone {
		return
	}
	st := &c.st
	st.Name = h.name
	isDefault, isLocal := false, false
	if h.value.Kind != EOF {
		var toks [3]Token
		n := 0
		for t := h.value; t.Kind != EOF; t = c.sc.next() {
			if n < len(toks) {
				toks[n] = t
			}
			n++
		}
		st.ValueSQL = c.src()[h.value.Pos:c.sc.end]
		st.Value = c.singleValue(n, &toks)
		isDefault = n == 1 && isWord(toks[0], "default")
		isLocal = n == 1 && isWord(toks[0], "local")
	}
	switch h.form {
	case setTxLocal:
		st.Kind = SetLocal
	case setCharacteristics:
		st.Kind = SessionCharacteristics
	case setSessionAuth:
		st.Kind = SetSessionAuthorization
		if isDefault {
			st.Value = ""
		}
	case setTimeZone:
		st.Kind = Set
		if isDefault || isLocal {
			st.Kind = Reset
		}
	case setNames:
		st.Kind = Set
		if isDefault || h.value.Kind == EOF {
			st.Kind = Reset
		}
	case setSchema, setXMLOption:
		st.Kind = Set
	case setRole:
		st.Kind = SetRole
	case setGeneric:
		switch {
		case h.name == "role" && isDefault:
			st.Kind = ResetRole
		case h.name == "role":
			st.Kind = SetRole
		case h.name == "session_authorization":
			st.Kind = SetSessionAuthorization
			if isDefault {
				st.Value = ""
			}
		case isDefault:
			st.Kind = Reset
		default:
			st.Kind = Set
		}
	}
	if st.Kind == Reset || st.Kind == ResetRole {
		st.Value, st.ValueSQL = "", ""
	}
	if h.local {
		st.Kind = SetLocal
	}
}

// singleValue returns the value of a SET whose value is one item: a
// literal, identifier or keyword, a signed number, or U&'...' UESCAPE 'c'.
func (c *classifier) singleValue(n int, toks *[3]Token) string {
	switch n {
	case 1:
		switch toks[0].Kind {
		case String, DollarString, Ident, QuotedIdent, Number:
			return c.literal(toks[0])
		}
	case 2:
		sign, num := toks[0], toks[1]
		if sign.Kind != Op || (sign.Text != "-" && sign.Text != "+") || num.Kind != Number {
			break
		}
		if sign.Text == "+" {
			return num.Text
		}
		if sign.End() == num.Pos {
			return c.src()[sign.Pos:num.End()]
		}
		return "-" + num.Text
	case 3:
		s, kw, esc := toks[0], toks[1], toks[2]
		if s.Kind == String && (s.Text[0] == 'u' || s.Text[0] == 'U') && isWord(kw, "uescape") && esc.Kind == String {
			if e := stringValue(esc, false, '\\'); len(e) == 1 {
				return stringValue(s, false, e[0])
			}
		}
	}
	return ""
}

// reset classifies a RESET statement.
func (c *classifier) reset() {
	t := c.sc.next()
	n := c.sc.peek()
	st := &c.st
	switch {
	case isWord(t, "all"):
		st.Kind = ResetAll
	case isWord(t, "time") && isWord(n, "zone"):
		st.Kind, st.Name = Reset, "timezone"
	case isWord(t, "session") && isWord(n, "authorization"):
		st.Kind, st.Name = SetSessionAuthorization, "session_authorization"
	case isWord(t, "transaction") && isWord(n, "isolation"):
		st.Kind, st.Name = Reset, "transaction_isolation"
	default:
		name, ok := settingName(&c.sc, t)
		if !ok {
			return
		}
		st.Name = name
		switch name {
		case "role":
			st.Kind = ResetRole
		case "session_authorization":
			st.Kind = SetSessionAuthorization
		default:
			st.Kind = Reset
		}
	}
}

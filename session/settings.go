package session

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// nonSettings are startup parameters that are not run-time settings.
var nonSettings = map[string]bool{"user": true, "database": true, "options": true, "replication": true}

// StartupSettings turns a client's startup parameters into the settings it
// asked for, by lowercase name: every parameter that is not user,
// database, replication or a protocol option (_pq_.*), plus the -c
// name=value switches in options.
func StartupSettings(params map[string]string) (map[string]string, error) {
	want := map[string]string{}
	for k, v := range params {
		k = strings.ToLower(k)
		if nonSettings[k] || strings.HasPrefix(k, "_pq_.") {
			continue
		}
		want[k] = v
	}
	if opts, ok := params["options"]; ok {
		set, err := ParseOptions(opts)
		if err != nil {
			return nil, err
		}
		for k, v := range set {
			want[k] = v
		}
	}
	return want, nil
}

// ParseOptions parses the options startup parameter the way PostgreSQL
// does: words split on white space, a backslash escapes the next
// character, and each setting is "-c name=value", "-cname=value" or
// "--name=value". Other command-line switches are refused.
func ParseOptions(s string) (map[string]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inWord = true
		case ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(ch)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	set := map[string]string{}
	for i := 0; i < len(words); i++ {
		w := words[i]
		var kv string
		switch {
		case w == "-c":
			if i+1 == len(words) {
				return nil, errors.New(`invalid options: "-c" needs name=value after it`)
			}
			i++
			kv = words[i]
		case strings.HasPrefix(w, "-c"):
			kv = w[2:]
		case strings.HasPrefix(w, "--"):
			kv = w[2:]
		default:
			return nil, fmt.Errorf("invalid options: only -c name=value settings are supported, not %q", w)
		}
		name, value, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("invalid options: %q is not name=value", kv)
		}
		// PostgreSQL accepts dashes for underscores in option names.
		set[strings.ToLower(strings.ReplaceAll(name, "-", "_"))] = value
	}
	return set, nil
}

// SyncSQL returns the SQL that changes a server connection's session
// settings from current to want, or "" when they already agree (the common
// case costs nothing). Both map lowercase names to values as pg_settings
// shows them (or as a client gave them at startup); a setting in current
// but not in want goes back to the server default with RESET.
func SyncSQL(want, current map[string]string) string {
	if len(want) == len(current) && reflect.ValueOf(want).UnsafePointer() == reflect.ValueOf(current).UnsafePointer() {
		return "" // the same map: the common case, made cheap (proxy interns them)
	}
	var sets, resets []string
	for k, v := range want {
		if c, ok := current[k]; !ok || c != v {
			sets = append(sets, k)
		}
	}
	for k := range current {
		if _, ok := want[k]; !ok {
			resets = append(resets, k)
		}
	}
	if len(sets) == 0 && len(resets) == 0 {
		return ""
	}
	slices.Sort(sets)
	slices.Sort(resets)
	var b strings.Builder
	if len(sets) > 0 {
		// No columns: nothing of it can be taken for a probe's row.
		b.WriteString("SELECT FROM (SELECT ")
		for i, k := range sets {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "pg_catalog.set_config(%s, %s, false)", Literal(k), Literal(want[k]))
		}
		b.WriteString(") AS s;")
	}
	for _, k := range resets {
		fmt.Fprintf(&b, "RESET %s;", Ident(k))
	}
	return b.String()
}

// Overlay returns base with over's entries on top, as a new map.
func Overlay(base, over map[string]string) map[string]string {
	out := make(map[string]string, len(base)+len(over))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		out[k] = v
	}
	return out
}

// Literal quotes s as an escape string constant, which reads the same
// whatever standard_conforming_strings is.
func Literal(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	s = strings.ReplaceAll(s, `'`, `''`)
	return "E'" + s + "'"
}

// Ident quotes s as an identifier. Dotted names (custom settings such as
// "myapp.tenant") are quoted part by part.
func Ident(s string) string {
	parts := strings.Split(s, ".")
	for i, p := range parts {
		parts[i] = `"` + strings.ReplaceAll(p, `"`, `""`) + `"`
	}
	return strings.Join(parts, ".")
}

// ReportedParams returns the parameters to report to a client whose
// startup settings are want, from those of a server connection at
// baseline, spelled as the server would. It serves when no server
// connection can apply the settings right now; SpelledByServerOnly says
// when it cannot.
func ReportedParams(baseline, want map[string]string) map[string]string {
	out := make(map[string]string, len(baseline))
	for name, value := range baseline {
		if v, ok := want[strings.ToLower(name)]; ok {
			value = canonicalValue(strings.ToLower(name), v, value)
		}
		out[name] = value
	}
	return out
}

// KnownWithoutServer reports whether startup settings read back from the
// server exactly as given, so a client may log in without a server
// connection: application_name alone, of printable ASCII and short
// enough that PostgreSQL keeps it whole (it truncates names to 63 bytes
// and replaces other bytes with '?').
func KnownWithoutServer(startup map[string]string) bool {
	for k, v := range startup {
		if k != "application_name" || len(v) > 63 {
			return false
		}
		for i := 0; i < len(v); i++ {
			if v[i] < 32 || v[i] > 126 {
				return false
			}
		}
	}
	return true
}

// SpelledByServerOnly reports whether want holds a reported setting whose
// server spelling pgpoolx cannot work out alone (TimeZone: the time zone
// database knows the case of its names).
func SpelledByServerOnly(want map[string]string) bool {
	_, tz := want["timezone"]
	return tz
}

// canonicalValue spells a reported setting's value v as the server reports
// it, for those whose spelling pgpoolx can work out; old is the value it
// replaces.
func canonicalValue(name, v, old string) string {
	switch name {
	case "datestyle":
		return canonicalDateStyle(v, old)
	case "client_encoding":
		n := strings.ToUpper(strings.NewReplacer("-", "", "_", "").Replace(v))
		if n == "UNICODE" {
			return "UTF8"
		}
		return n
	case "intervalstyle":
		return strings.ToLower(v)
	case "standard_conforming_strings", "default_transaction_read_only":
		switch strings.ToLower(v) {
		case "on", "true", "yes", "1", "t", "y":
			return "on"
		case "off", "false", "no", "0", "f", "n":
			return "off"
		}
	}
	return v
}

// canonicalDateStyle spells a DateStyle value as PostgreSQL reports it
// ("ISO, MDY"): a style and a field order, each kept from old when v does
// not give it. Values it does not understand are returned unchanged.
func canonicalDateStyle(v, old string) string {
	style, order := "", ""
	if s, o, ok := strings.Cut(old, ", "); ok {
		style, order = s, o
	}
	newOrder := false
	for _, w := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		switch strings.ToLower(w) {
		case "iso":
			style = "ISO"
		case "sql":
			style = "SQL"
		case "postgres":
			style = "Postgres"
		case "german":
			style = "German"
			if !newOrder {
				order = "DMY"
			}
		case "ymd":
			order, newOrder = "YMD", true
		case "dmy", "euro", "european":
			order, newOrder = "DMY", true
		case "mdy", "us", "noneuro", "noneuropean":
			order, newOrder = "MDY", true
		case "default":
		default:
			return v
		}
	}
	if style == "" || order == "" {
		return v
	}
	return style + ", " + order
}

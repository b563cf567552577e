package session

import (
	"errors"
	"fmt"
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
		b.WriteString("SELECT ")
		for i, k := range sets {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "pg_catalog.set_config(%s, %s, false)", Literal(k), Literal(want[k]))
		}
		b.WriteString(";")
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
// settings are want, from those of a server connection at baseline. It
// serves when no server connection can apply the settings right now.
func ReportedParams(baseline, want map[string]string) map[string]string {
	out := make(map[string]string, len(baseline))
	for name, value := range baseline {
		if v, ok := want[strings.ToLower(name)]; ok {
			value = v
			if strings.EqualFold(name, "client_encoding") {
				value = canonicalEncoding(v)
			}
		}
		out[name] = value
	}
	return out
}

// canonicalEncoding spells an encoding name as the server reports it, for
// the names clients commonly send.
func canonicalEncoding(s string) string {
	n := strings.ToUpper(strings.NewReplacer("-", "", "_", "").Replace(s))
	if n == "UNICODE" {
		return "UTF8"
	}
	return n
}

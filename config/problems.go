package config

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Problem is one thing wrong with a configuration, found while decoding or
// validating it.
type Problem struct {
	// Path is the YAML key path, e.g. "databases.appdb.port". It is empty
	// only when the file as a whole cannot be read as YAML.
	Path string
	// Message says what is wrong. It never contains a password or the value
	// of an environment variable.
	Message string
}

func (p Problem) String() string {
	if p.Path == "" {
		return p.Message
	}
	return p.Path + ": " + p.Message
}

// Problems is every problem found in a configuration at once, so that a user
// can fix them all in one edit. Parse, Load and Validate return it as their
// error; use errors.As to get at the list.
type Problems struct {
	List []Problem
}

// Error renders one problem per line as "path: message".
func (p *Problems) Error() string {
	var b strings.Builder
	for i, pr := range p.List {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(pr.String())
	}
	return b.String()
}

func (p *Problems) addf(path, format string, args ...any) {
	pr := Problem{Path: path, Message: fmt.Sprintf(format, args...)}
	for _, old := range p.List {
		if old == pr {
			return
		}
	}
	p.List = append(p.List, pr)
}

// has reports whether there is already a problem at path or at a key that
// contains it, so that validation does not pile a second complaint onto a
// value that could not be decoded in the first place.
func (p *Problems) has(path string) bool {
	for _, pr := range p.List {
		if pr.Path == path || strings.HasPrefix(path, pr.Path+".") {
			return true
		}
	}
	return false
}

// err returns p as an error, or nil when there are no problems; never a
// non-nil error interface holding a nil *Problems.
func (p *Problems) err() error {
	if len(p.List) == 0 {
		return nil
	}
	return p
}

// joinPath appends one key to a YAML key path. Names that would make the
// path ambiguous or span lines (dots, spaces, quotes, control characters, the
// empty string) are quoted.
func joinPath(path, key string) string {
	if key == "" || strings.ContainsFunc(key, func(r rune) bool {
		return !unicode.IsPrint(r) || r == utf8.RuneError || strings.ContainsRune(` ."'[]`, r)
	}) {
		key = fmt.Sprintf("%q", key)
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

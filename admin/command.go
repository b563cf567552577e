// Package admin is pgpoolx's admin console: the virtual database "pgpoolx"
// that admin users reach with psql, speaking PgBouncer's dialect (SHOW
// POOLS, PAUSE, RELOAD...). It parses commands, runs them against a
// Backend and writes the answers as PostgreSQL result sets.
package admin

import (
	"fmt"
	"strings"
)

// Verb is what a command does.
type Verb string

// The commands the console accepts.
const (
	Show      Verb = "SHOW"
	Pause     Verb = "PAUSE"
	Resume    Verb = "RESUME"
	Reload    Verb = "RELOAD"
	Kill      Verb = "KILL"
	Reconnect Verb = "RECONNECT"
	Shutdown  Verb = "SHUTDOWN"
)

// What SHOW can show.
var showable = []string{"POOLS", "STATS", "CLIENTS", "SERVERS", "DATABASES", "CONFIG", "PINS", "VERSION", "HELP"}

// Command is one parsed console command.
type Command struct {
	Verb Verb
	// Arg is SHOW's subject (upper case) or the database name of PAUSE,
	// RESUME, KILL and RECONNECT ("" for all databases).
	Arg string
}

// Error is a command the console refuses, with its SQLSTATE.
type Error struct {
	Code, Message, Hint string
}

func (e *Error) Error() string { return e.Message }

const (
	codeSyntaxError        = "42601"
	codeUndefinedDatabase  = "3D000"
	codeFeatureUnsupported = "0A000"
	codeObjectState        = "55000"
)

func syntaxError(format string, args ...any) *Error {
	return &Error{Code: codeSyntaxError, Message: fmt.Sprintf(format, args...), Hint: "SHOW HELP lists the commands."}
}

// Parse reads one command. Keywords are case-insensitive; a database name
// is taken as written, or without its double quotes.
func Parse(text string) (Command, error) {
	words := strings.Fields(strings.TrimSpace(strings.TrimRight(strings.TrimSpace(text), ";")))
	if len(words) == 0 {
		return Command{}, syntaxError("empty command")
	}
	verb := Verb(strings.ToUpper(words[0]))
	args := words[1:]
	switch verb {
	case Show:
		if len(args) != 1 {
			return Command{}, syntaxError("SHOW takes one of: %s", strings.Join(showable, ", "))
		}
		what := strings.ToUpper(args[0])
		for _, s := range showable {
			if s == what {
				return Command{Verb: Show, Arg: what}, nil
			}
		}
		return Command{}, syntaxError("cannot SHOW %s: SHOW takes one of: %s", args[0], strings.Join(showable, ", "))
	case Pause, Resume, Reconnect, Kill:
		if len(args) > 1 {
			return Command{}, syntaxError("%s takes at most one database name", verb)
		}
		if len(args) == 0 {
			if verb == Kill {
				return Command{}, syntaxError("KILL needs a database name")
			}
			return Command{Verb: verb}, nil
		}
		db := args[0]
		if len(db) >= 2 && db[0] == '"' && db[len(db)-1] == '"' {
			db = strings.ReplaceAll(db[1:len(db)-1], `""`, `"`)
		}
		return Command{Verb: verb, Arg: db}, nil
	case Reload, Shutdown:
		if len(args) > 0 {
			return Command{}, syntaxError("%s takes no arguments", verb)
		}
		return Command{Verb: verb}, nil
	}
	return Command{}, syntaxError("unknown command %q", words[0])
}

// Split cuts a simple-query string into its commands at semicolons
// (console commands hold no quoted semicolons).
func Split(query string) []string {
	var out []string
	for _, part := range strings.Split(query, ";") {
		if strings.TrimSpace(part) != "" {
			out = append(out, part)
		}
	}
	return out
}

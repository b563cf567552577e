package admin

import (
	"errors"
	"slices"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want Command
		code string // SQLSTATE of the error, "" for none
	}{
		{"SHOW POOLS", Command{Show, "POOLS"}, ""},
		{"show pools;", Command{Show, "POOLS"}, ""},
		{"  Show   Stats ;  ", Command{Show, "STATS"}, ""},
		{"SHOW PINS", Command{Show, "PINS"}, ""},
		{"SHOW help", Command{Show, "HELP"}, ""},
		{"SHOW", Command{}, codeSyntaxError},
		{"SHOW LISTS", Command{}, codeSyntaxError},
		{"SHOW POOLS STATS", Command{}, codeSyntaxError},
		{"PAUSE", Command{Pause, ""}, ""},
		{"pause app", Command{Pause, "app"}, ""},
		{`PAUSE "My DB"`, Command{}, codeSyntaxError}, // two words once split
		{`PAUSE "MyDB"`, Command{Pause, "MyDB"}, ""},
		{`RESUME "a""b"`, Command{Resume, `a"b`}, ""},
		{"RESUME", Command{Resume, ""}, ""},
		{"RECONNECT app", Command{Reconnect, "app"}, ""},
		{"KILL app", Command{Kill, "app"}, ""},
		{"KILL", Command{}, codeSyntaxError},
		{"KILL a b", Command{}, codeSyntaxError},
		{"RELOAD", Command{Reload, ""}, ""},
		{"RELOAD now", Command{}, codeSyntaxError},
		{"SHUTDOWN", Command{Shutdown, ""}, ""},
		{"SELECT 1", Command{}, codeSyntaxError},
		{"", Command{}, codeSyntaxError},
		{";", Command{}, codeSyntaxError},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if tt.code != "" {
			var e *Error
			if !errors.As(err, &e) || e.Code != tt.code {
				t.Errorf("Parse(%q) error = %v, want SQLSTATE %s", tt.in, err, tt.code)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestSplit(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"SHOW POOLS", []string{"SHOW POOLS"}},
		{"SHOW POOLS; SHOW STATS;", []string{"SHOW POOLS", " SHOW STATS"}},
		{" ; ;", nil},
		{"", nil},
	}
	for _, tt := range tests {
		if got := Split(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("Split(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"SHOW POOLS", "PAUSE \"x\"", "KILL", "resume a;", "\"", "SHOW \x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cmd, err := Parse(s)
		if err == nil && cmd.Verb == "" {
			t.Fatalf("Parse(%q) gave no verb and no error", s)
		}
	})
}

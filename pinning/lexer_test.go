package pinning

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// lexAll returns every token of src, checking that they tile it.
func lexAll(t testing.TB, syn Syntax, src string) []Token {
	t.Helper()
	lx := syn.NewLexer(src)
	var toks []Token
	pos := 0
	for {
		tok := lx.Next()
		if tok.Kind == EOF {
			if tok.Pos != len(src) {
				t.Fatalf("EOF at %d, want %d", tok.Pos, len(src))
			}
			return toks
		}
		if tok.Pos != pos || tok.Text == "" || src[tok.Pos:tok.End()] != tok.Text {
			t.Fatalf("token %v at %d does not continue at %d in %q", tok.Kind, tok.Pos, pos, src)
		}
		pos = tok.End()
		toks = append(toks, tok)
	}
}

// show renders the significant tokens as "Kind:text" words.
func show(toks []Token) string {
	var b strings.Builder
	for _, tok := range toks {
		if tok.Kind == Space || tok.Kind == Comment {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%v:%s", tok.Kind, tok.Text)
		if tok.Unterminated {
			b.WriteString("(open)")
		}
	}
	return b.String()
}

func TestLexer(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"keywords and identifiers", "SELECT a_1, B$x FROM t", "Ident:SELECT Ident:a_1 Punct:, Ident:B$x Ident:FROM Ident:t"},
		{"set inside string", "SELECT 'SET x TO 1'", "Ident:SELECT String:'SET x TO 1'"},
		{"doubled quote", "SELECT 'it''s'", "Ident:SELECT String:'it''s'"},
		{"comment hides set", "/* SET */ SELECT 1", "Ident:SELECT Number:1"},
		{"line comment", "SELECT 1 -- ; SET a=1\n, 2", "Ident:SELECT Number:1 Punct:, Number:2"},
		{"nested comment", "/* a /* b */ SET x=1; */ SELECT 1", "Ident:SELECT Number:1"},
		{"comment star slash star", "/* x */* 2", "Op:* Number:2"},
		{"dollar semicolon", "SELECT $$;$$", "Ident:SELECT DollarString:$$;$$"},
		{"dollar tag", "SELECT $fn$ $$ ; $x$ $fn$", "Ident:SELECT DollarString:$fn$ $$ ; $x$ $fn$"},
		{"dollar tag with digits", "$a1$x$a1$", "DollarString:$a1$x$a1$"},
		{"dollar in identifier", "SELECT a$$b$$", "Ident:SELECT Ident:a$$b$$"},
		{"param", "SELECT $1, $23", "Ident:SELECT Param:$1 Punct:, Param:$23"},
		{"lone dollar", "SELECT $ 1", "Ident:SELECT Op:$ Number:1"},
		{"escape string quote", `SELECT E'\';SET a=1'`, `Ident:SELECT String:E'\';SET a=1'`},
		{"escape string backslash at end", `SELECT E'a\\'`, `Ident:SELECT String:E'a\\'`},
		{"standard string backslash", `SELECT 'a\'; SET b=1`, `Ident:SELECT String:'a\' Semicolon:; Ident:SET Ident:b Op:= Number:1`},
		{"unicode string", `SELECT U&'d\0061t'`, `Ident:SELECT String:U&'d\0061t'`},
		{"unicode string no backslash escape", `SELECT U&'\'; x`, `Ident:SELECT String:U&'\' Semicolon:; Ident:x`},
		{"national string", "SELECT N'x'", "Ident:SELECT String:N'x'"},
		{"bit strings", "SELECT B'101', x'1F'", "Ident:SELECT BitString:B'101' Punct:, BitString:x'1F'"},
		{"bit string no doubling", "SELECT b'1''0'", "Ident:SELECT BitString:b'1' String:'0'"},
		{"quoted identifier", `SELECT "weird;name", "a""b"`, `Ident:SELECT QuotedIdent:"weird;name" Punct:, QuotedIdent:"a""b"`},
		{"unicode identifier", `SELECT U&"d\0061t"`, `Ident:SELECT QuotedIdent:U&"d\0061t"`},
		{"U& without quote", `SELECT U&1`, `Ident:SELECT Ident:U Op:& Number:1`},
		{"string continuation", "SELECT 'a'\n  'b' 'c'", "Ident:SELECT String:'a'\n  'b' String:'c'"},
		{"continuation over comment", "SELECT 'a' -- x'\n'b'", "Ident:SELECT String:'a' -- x'\n'b'"},
		{"no continuation without newline", "SELECT 'a' 'b'", "Ident:SELECT String:'a' String:'b'"},
		{"no continuation over block comment", "SELECT 'a'\n/**/'b'", "Ident:SELECT String:'a' String:'b'"},
		{"numbers", "1 1.5 .5 1. 1e10 1.5E-3 0x1F 0o17 0b101 1_000", "Number:1 Number:1.5 Number:.5 Number:1. Number:1e10 Number:1.5E-3 Number:0x1F Number:0o17 Number:0b101 Number:1_000"},
		{"number range", "1..10", "Number:1 Op:.. Number:10"},
		{"number then identifier", "1e 1x", "Number:1 Ident:e Number:1 Ident:x"},
		{"typecast", "'1'::int", "String:'1' Op::: Ident:int"},
		{"named argument", "f(a := 1, b => 2)", "Ident:f Punct:( Ident:a Op::= Number:1 Punct:, Ident:b Op:=> Number:2 Punct:)"},
		{"equals minus", "SET x=-5", "Ident:SET Ident:x Op:= Op:- Number:5"},
		{"operator keeps special", "a ?- b", "Ident:a Op:?- Ident:b"},
		{"operator stops at comment", "a +-- c\n b", "Ident:a Op:+ Ident:b"},
		{"operator stops at block comment", "a */* c */ b", "Ident:a Op:* Ident:b"},
		{"plus minus run", "1 +-+- 2", "Number:1 Op:+ Op:- Op:+ Op:- Number:2"},
		{"operator then plus minus", "a <=-+ b", "Ident:a Op:<= Op:- Op:+ Ident:b"},
		{"semicolons", "a;b", "Ident:a Semicolon:; Ident:b"},
		{"brackets", "a[1]", "Ident:a Punct:[ Number:1 Punct:]"},
		{"unicode identifier chars", "SELECT café", "Ident:SELECT Ident:café"},
		{"unterminated string", "SELECT 'abc", "Ident:SELECT String:'abc(open)"},
		{"unterminated escape string", `SELECT E'abc\`, `Ident:SELECT String:E'abc\(open)`},
		{"unterminated identifier", `SELECT "abc`, `Ident:SELECT QuotedIdent:"abc(open)`},
		{"unterminated dollar", "SELECT $x$abc$x", "Ident:SELECT DollarString:$x$abc$x(open)"},
		{"unterminated comment", "SELECT /* abc", "Ident:SELECT"},
		{"unterminated bit string", "SELECT X'1", "Ident:SELECT BitString:X'1(open)"},
		{"control bytes", "a\x00b", "Ident:a Op:\x00 Ident:b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := show(lexAll(t, Syntax{}, tt.src))
			if got != tt.want {
				t.Errorf("lex %q\n got %s\nwant %s", tt.src, got, tt.want)
			}
		})
	}
}

func TestLexerStandardConformingStringsOff(t *testing.T) {
	off := Syntax{StandardConformingStringsOff: true}
	src := `SELECT 'a\'; SET b=1'`
	if got, want := show(lexAll(t, off, src)), `Ident:SELECT String:'a\'; SET b=1'`; got != want {
		t.Errorf("lex %q\n got %s\nwant %s", src, got, want)
	}
	if got := slices.Collect(off.Statements(src)); len(got) != 1 {
		t.Errorf("Statements = %q, want one statement", got)
	}
}

func TestLexerUnterminatedComment(t *testing.T) {
	toks := lexAll(t, Syntax{}, "SELECT /* a /* b */ c")
	last := toks[len(toks)-1]
	if last.Kind != Comment || !last.Unterminated {
		t.Errorf("last token %+v, want an unterminated comment", last)
	}
}

func TestStatements(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"one", "SELECT 1", []string{"SELECT 1"}},
		{"trailing semicolons and space", " SELECT 1 ;; ; ", []string{"SELECT 1"}},
		{"two", "SET a = 1; SET b = 2;", []string{"SET a = 1", "SET b = 2"}},
		{"empty", " ; -- nothing\n /* x */ ;", nil},
		{"comments trimmed", "/* head */ SELECT 1 /* tail */ ; -- x\nSELECT 2", []string{"SELECT 1", "SELECT 2"}},
		{"semicolon in string", "SELECT ';'; SELECT 2", []string{"SELECT ';'", "SELECT 2"}},
		{"semicolon in dollar quote", "SELECT $$;$$; SELECT 2", []string{"SELECT $$;$$", "SELECT 2"}},
		{"semicolon in identifier", `SELECT 1 AS "a;b"; SELECT 2`, []string{`SELECT 1 AS "a;b"`, "SELECT 2"}},
		{"semicolon in escape string", `SELECT E'\';SET a=1'; SELECT 2`, []string{`SELECT E'\';SET a=1'`, "SELECT 2"}},
		{"semicolon in parentheses", "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); NOTIFY t); SELECT 1",
			[]string{"CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); NOTIFY t)", "SELECT 1"}},
		{"begin atomic", "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 1 END; END; SET x = 1",
			[]string{"CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 1 END; END", "SET x = 1"}},
		{"create or replace procedure", "create or replace procedure p() begin atomic insert into t values (1); end; select 1",
			[]string{"create or replace procedure p() begin atomic insert into t values (1); end", "select 1"}},
		{"begin transaction is not a block", "BEGIN; SET x = 1; COMMIT", []string{"BEGIN", "SET x = 1", "COMMIT"}},
		{"case outside function", "SELECT CASE WHEN a THEN 1 END; SELECT 2", []string{"SELECT CASE WHEN a THEN 1 END", "SELECT 2"}},
		{"unterminated string swallows the rest", "SELECT 'a; SET x = 1", []string{"SELECT 'a; SET x = 1"}},
		{"stray close paren", "SELECT 1); SELECT 2", []string{"SELECT 1)", "SELECT 2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := slices.Collect(Statements(tt.src))
			if !slices.Equal(got, tt.want) {
				t.Errorf("Statements(%q)\n got %q\nwant %q", tt.src, got, tt.want)
			}
		})
	}
}

func TestStatementsStopEarly(t *testing.T) {
	n := 0
	for range Statements("SELECT 1; SELECT 2; SELECT 3") {
		n++
		if n == 2 {
			break
		}
	}
	if n != 2 {
		t.Errorf("iterated %d statements, want 2", n)
	}
}

func TestIdentAndStringValues(t *testing.T) {
	first := func(src string) Token {
		lx := NewLexer(src)
		return lx.Next()
	}
	idents := []struct{ src, want string }{
		{"FooBar", "foobar"},
		{`"FooBar"`, "FooBar"},
		{`"a""b"`, `a"b`},
		{`U&"d\0061t"`, "dat"},
		{`U&"\+01F600"`, "\U0001F600"},
		{strings.Repeat("a", 70), strings.Repeat("a", 63)},
		{`"` + strings.Repeat("é", 40) + `"`, strings.Repeat("é", 31)},
		{`"abc`, "abc"},
	}
	for _, tt := range idents {
		if got := identName(first(tt.src)); got != tt.want {
			t.Errorf("identName(%s) = %q, want %q", tt.src, got, tt.want)
		}
	}
	strs := []struct {
		src, want string
		backslash bool
	}{
		{`'plain'`, "plain", false},
		{`'it''s'`, "it's", false},
		{`'a\nb'`, `a\nb`, false},
		{`'a\nb'`, "a\nb", true},
		{`E'\n\t\b\f\r\\\'\x41\101\u00e9\U0001F600\q'`, "\n\t\b\f\r\\'AAé\U0001F600q", false},
		{`E'\uD83D\uDE00'`, "\U0001F600", false},
		{`U&'d\0061t\\'`, `dat\`, false},
		{`N'x'`, "x", false},
		{"'a'\n'b'\n -- c\n'c'", "abc", false},
		{`'open`, "open", false},
		{`'open''`, "open'", false},
	}
	for _, tt := range strs {
		if got := stringValue(first(tt.src), tt.backslash, '\\'); got != tt.want {
			t.Errorf("stringValue(%s, %v) = %q, want %q", tt.src, tt.backslash, got, tt.want)
		}
	}
}

func TestParseBool(t *testing.T) {
	for s, want := range map[string]bool{"t": true, "TRUE": true, "tr": true, "yes": true, "y": true, "on": true, "1": true, " true ": true,
		"f": false, "false": false, "no": false, "n": false, "off": false, "of": false, "0": false} {
		if got, ok := parseBool(s); !ok || got != want {
			t.Errorf("parseBool(%q) = %v, %v; want %v, true", s, got, ok, want)
		}
	}
	for _, s := range []string{"", "o", "truex", "2", "maybe"} {
		if _, ok := parseBool(s); ok {
			t.Errorf("parseBool(%q) ok, want not", s)
		}
	}
}

// TestLexerLinear checks inputs that a careless lexer handles in quadratic
// time: a long run of + and -, and many unterminated starts.
func TestLexerLinear(t *testing.T) {
	for _, src := range []string{
		strings.Repeat("+-", 200000),
		strings.Repeat("'a'\n ", 100000),
		strings.Repeat("$a", 100000),
		strings.Repeat("/*", 100000),
		strings.Repeat("1.", 100000),
	} {
		n := 0
		lx := NewLexer(src)
		for lx.Next().Kind != EOF {
			n++
			if n > len(src)+1 {
				t.Fatal("lexer does not advance")
			}
		}
	}
}

package pinning

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

var fuzzSeeds = []string{
	"SELECT 'SET x TO 1'",
	"/* SET */ SELECT 1",
	"SELECT $$;$$",
	`SELECT E'\';SET a=1'`,
	"/* a /* b */ c */ SET x = 1",
	`SELECT "weird;name" FROM t`,
	"SET client_encoding TO 'unicode'; SET statement_timeout TO 300000; SET timezone TO utc",
	"SELECT pg_try_advisory_lock(1); SELECT pg_advisory_unlock(1)",
	"SELECT set_config('a', 'b', false), set_config('c', $1, true)",
	"CREATE TEMP TABLE t ON COMMIT DROP AS SELECT nextval('s')",
	"WITH x AS (SELECT 1) SELECT * INTO TEMP t FROM x",
	"DECLARE c CURSOR WITH HOLD FOR SELECT 1; CLOSE c",
	"PREPARE p (int) AS SELECT $1; EXECUTE p(1); DEALLOCATE p",
	"EXPLAIN (ANALYZE, FORMAT JSON) SELECT pg_advisory_lock(1)",
	"CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END; SET x = 1",
	"SET TIME ZONE INTERVAL '+02:00' HOUR TO MINUTE",
	"SET application_name = U&'d!0061t' UESCAPE '!'",
	"SELECT 'a'\n -- c\n'b', B'1', X'F', 1.5e-3, 0x_1F, $1",
	"SELECT 'unterminated",
	`SELECT "unterminated`,
	"SELECT $tag$ unterminated",
	"SELECT /* unterminated",
	"a +-+- b */* c",
	"SET \"MyApp\" . \"Tenant\" = -42",
	"DROP TABLE IF EXISTS a, pg_temp.b, s.c CASCADE",
	"((SELECT 1)); ) ; (",
}

// splitRanges returns the [start, end) offsets of the statements of src.
func splitRanges(syn Syntax, src string) [][2]int {
	var r [][2]int
	lx := syn.NewLexer(src)
	for {
		sc := newScanner(lx)
		sc.drain()
		if sc.start >= 0 {
			r = append(r, [2]int{sc.start, sc.end})
		}
		if sc.atEOF {
			return r
		}
		lx = sc.lx
	}
}

func FuzzLexer(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, src string, scsOff bool) {
		syn := Syntax{StandardConformingStringsOff: scsOff}
		toks := lexAll(t, syn, src) // checks that tokens tile the input
		for _, tok := range toks {
			if tok.Unterminated && tok.End() != len(src) {
				t.Fatalf("unterminated %v token ends at %d, before the end %d", tok.Kind, tok.End(), len(src))
			}
		}

		// Statements are in order, start and end on significant tokens,
		// and everything between them is white space, comments or
		// semicolons.
		ranges := splitRanges(syn, src)
		pieces := slices.Collect(syn.Statements(src))
		if len(pieces) != len(ranges) {
			t.Fatalf("Statements gave %d pieces, ranges %d", len(pieces), len(ranges))
		}
		ri := 0
		for _, tok := range toks {
			for ri < len(ranges) && tok.Pos >= ranges[ri][1] {
				ri++
			}
			inside := ri < len(ranges) && tok.Pos >= ranges[ri][0]
			switch {
			case inside && tok.End() > ranges[ri][1]:
				t.Fatalf("token %v %q crosses the end of statement %d", tok.Kind, tok.Text, ri)
			case inside && (tok.Pos == ranges[ri][0] || tok.End() == ranges[ri][1]) &&
				(tok.Kind == Space || tok.Kind == Comment):
				t.Fatalf("statement %d starts or ends with %v", ri, tok.Kind)
			case !inside && tok.Kind != Space && tok.Kind != Comment && tok.Kind != Semicolon:
				t.Fatalf("%v token %q at %d is outside every statement", tok.Kind, tok.Text, tok.Pos)
			}
		}
		for i, p := range pieces {
			if p != src[ranges[i][0]:ranges[i][1]] {
				t.Fatalf("piece %d is %q, range says %q", i, p, src[ranges[i][0]:ranges[i][1]])
			}
			if i > 0 && ranges[i][0] < ranges[i-1][1] {
				t.Fatalf("statements %d and %d overlap", i-1, i)
			}
			// A statement on its own is one statement, itself.
			if again := slices.Collect(syn.Statements(p)); len(again) != 1 || again[0] != p {
				t.Fatalf("piece %q splits again into %q", p, again)
			}
		}
		// Joined back with semicolons, the pieces split the same way.
		if again := slices.Collect(syn.Statements(strings.Join(pieces, ";\n"))); !slices.Equal(again, pieces) {
			t.Fatalf("rejoined pieces split into %q, want %q", again, pieces)
		}
	})
}

func FuzzClassify(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, src string, scsOff bool) {
		syn := Syntax{StandardConformingStringsOff: scsOff}
		pieces := slices.Collect(syn.Statements(src))
		var all []Statement
		for st := range syn.Analyze(src) {
			all = append(all, st)
			_ = st.Kind.String()
			_ = RDSProxyReason(st, len(src))
			if st.Text == "" {
				t.Fatalf("empty statement from Analyze")
			}
		}
		if len(all) != len(pieces) {
			t.Fatalf("Analyze gave %d statements, Statements %d", len(all), len(pieces))
		}
		for i, st := range all {
			if st.Text != pieces[i] {
				t.Fatalf("statement %d text %q, piece %q", i, st.Text, pieces[i])
			}
			// A statement classifies the same alone as in its string.
			if alone := syn.Classify(pieces[i]); !reflect.DeepEqual(alone, st) {
				t.Fatalf("statement %q alone: %s; in its string: %s", pieces[i], describe(alone), describe(st))
			}
			if st.Kind == Prepare && st.Body != "" {
				_ = syn.Classify(st.Body)
			}
		}
		first := syn.Classify(src)
		if len(all) == 0 {
			if !reflect.DeepEqual(first, Statement{}) {
				t.Fatalf("Classify of an empty string gave %s", describe(first))
			}
		} else if !reflect.DeepEqual(first, all[0]) {
			t.Fatalf("Classify gave %s, Analyze's first %s", describe(first), describe(all[0]))
		}
	})
}

// fuzzMarker is a value no digest may show. The fuzzer rarely invents it,
// and inputs that contain it on their own are skipped.
const fuzzMarker = "zq9secret"

func FuzzDigest(f *testing.F) {
	for i, s := range fuzzSeeds {
		f.Add(s, "", uint8(i))
		f.Add("SELECT", s, uint8(i))
	}
	f.Add("SET x TO", "", uint8(0))
	f.Add("SELECT 1 IN (", ")", uint8(1))
	f.Add("SELECT 'a'\n", "\n'b'", uint8(2))
	f.Fuzz(func(t *testing.T, a, b string, form uint8) {
		for _, src := range []string{a, b, a + b} {
			d := Digest(src)
			// The digest holds no constant: lexed again, it has none.
			for _, tok := range lexAll(t, Syntax{}, d) {
				if tok.IsLiteral() {
					t.Fatalf("digest of %q is %q, which still has the %v %q", src, d, tok.Kind, tok.Text)
				}
			}
		}

		// Put a literal holding the marker where a token starts, between
		// a and b, and check that the digest never shows it.
		literals := []string{
			"'" + fuzzMarker + "'",
			"E'" + fuzzMarker + `\''`,
			"$m$" + fuzzMarker + "$m$",
			"U&'" + fuzzMarker + "'",
			"'x'\n'" + fuzzMarker + "'",
			"$$" + fuzzMarker + "$$",
		}
		src := a + " " + literals[int(form)%len(literals)] + " " + b
		if strings.Count(strings.ToLower(src), fuzzMarker) != 1 {
			return
		}
		for _, syn := range []Syntax{{}, {StandardConformingStringsOff: true}} {
			if toks := lexAll(t, syn, a); len(toks) > 0 {
				last := toks[len(toks)-1]
				if last.Unterminated || (last.Kind == Comment && strings.HasPrefix(last.Text, "--")) {
					continue // a swallows what follows
				}
			}
			if d := syn.Digest(src); strings.Contains(strings.ToLower(d), fuzzMarker) {
				t.Fatalf("digest of %q shows the literal: %q", src, d)
			}
		}
	})
}

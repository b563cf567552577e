package integration

import (
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestAuthQuery: users that exist only in PostgreSQL log in to pgpoolx
// with their PostgreSQL password, looked up through auth.query.
func TestAuthQuery(t *testing.T) {
	c := pg.Get(t)
	db := c.NewDatabase(t)
	ctx := t.Context()
	role := func(name string) string { return name + "_" + db }
	err := c.Exec(ctx, db, fmt.Sprintf(`
		SET password_encryption = 'scram-sha-256';
		CREATE ROLE %[1]s LOGIN PASSWORD 'alice-pw';
		SET password_encryption = 'md5';
		CREATE ROLE %[2]s LOGIN PASSWORD 'bob-pw';
		CREATE ROLE %[3]s LOGIN;
		CREATE ROLE %[4]s LOGIN;
		CREATE FUNCTION public.user_lookup(name text, OUT usename name, OUT passwd text)
			LANGUAGE sql SECURITY DEFINER
			AS $$ SELECT rolname, rolpassword FROM pg_catalog.pg_authid WHERE rolname = name $$;
		REVOKE ALL ON FUNCTION public.user_lookup(text) FROM public;
		GRANT EXECUTE ON FUNCTION public.user_lookup(text) TO %[4]s;`,
		role("alice"), role("bob"), role("nopw"), role("lookup")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Exec(ctx, db, fmt.Sprintf("DROP FUNCTION public.user_lookup(text); DROP ROLE %s, %s, %s, %s",
			role("alice"), role("bob"), role("nopw"), role("lookup")))
	})
	authYAML := func(typ string) string {
		return fmt.Sprintf("auth:\n  type: %s\n  query: SELECT usename, passwd FROM public.user_lookup($1)\n  query_user: %s\n", typ, role("lookup"))
	}
	login := func(p *pooler, user, password string) error {
		dsn := strings.Replace(p.dsn(""), "postgres@", user+":"+password+"@", 1)
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		var one int
		return conn.QueryRow(ctx, "SELECT 1").Scan(&one)
	}

	t.Run("scram-sha-256", func(t *testing.T) {
		p := startPoolerFor(t, c, db, authYAML("scram-sha-256"), "")
		if err := login(p, role("alice"), "alice-pw"); err != nil {
			t.Fatalf("alice with her PostgreSQL password: %v", err)
		}
		for _, tt := range []struct{ what, user, password string }{
			{"wrong password", role("alice"), "nope"},
			{"unknown user", role("nobody"), "x"},
			{"user without a password", role("nopw"), "x"},
			// SCRAM cannot check an md5 hash, as in PostgreSQL.
			{"md5-hashed password", role("bob"), "bob-pw"},
		} {
			err := login(p, tt.user, tt.password)
			assertCode(t, err, "28P01")
		}
		for _, e := range p.logs.FilterMessage("client authentication failed").All() {
			if strings.Contains(fmt.Sprint(e.ContextMap()), "nope") {
				t.Errorf("a log line holds the password: %v", e.ContextMap())
			}
		}
	})
	t.Run("md5", func(t *testing.T) {
		p := startPoolerFor(t, c, db, authYAML("md5"), "")
		if err := login(p, role("bob"), "bob-pw"); err != nil {
			t.Fatalf("bob with his PostgreSQL password: %v", err)
		}
		assertCode(t, login(p, role("bob"), "bob-pw2"), "28P01")
	})
	t.Run("a failing auth.query", func(t *testing.T) {
		p := startPoolerFor(t, c, db, "auth:\n  type: md5\n  query: SELECT usename, passwd FROM public.no_such_function($1)\n  query_user: "+role("lookup")+"\n", "")
		err := login(p, role("bob"), "bob-pw")
		assertCode(t, err, "42883") // undefined function: the server's own words
	})
}

package config_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/pgpoolx/pgpoolx/config"
)

// env returns a lookup function over the given NAME, value pairs.
func env(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(name string) (string, bool) {
		v, ok := m[name]
		return v, ok
	}
}

// minimal is the smallest valid configuration.
const minimal = `
databases:
  appdb:
    host: db.internal
`

func problemsOf(t *testing.T, err error) []config.Problem {
	t.Helper()
	if err == nil {
		t.Fatal("Parse succeeded, want problems")
	}
	var p *config.Problems
	if !errors.As(err, &p) {
		t.Fatalf("error is %T, want *config.Problems: %v", err, err)
	}
	if len(p.List) == 0 {
		t.Fatal("*Problems with an empty list")
	}
	return p.List
}

func mustParse(t *testing.T, data string, lookupEnv func(string) (string, bool)) *config.Config {
	t.Helper()
	c, err := config.Parse([]byte(data), lookupEnv)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return c
}

func TestParseProblems(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		env     []string
		path    string
		message string // the whole message, or its start when prefix is set
		prefix  bool
	}{
		// The admin endpoint and console.
		{
			name:    "admin_listen without a port",
			yaml:    "admin_listen: localhost\n" + minimal,
			path:    "admin_listen",
			message: `must be host:port, such as "127.0.0.1:9127", or empty for none`,
		},
		{
			name:    "admin_users as a mapping",
			yaml:    "admin_users:\n  a: b\n" + minimal,
			path:    "admin_users",
			message: "line 2: expected a list, found a mapping",
		},
		{
			name:    "admin_users entry not among auth.users",
			yaml:    "admin_users: [ops]\nauth:\n  type: md5\n  users:\n    app:\n      password: x\n" + minimal,
			path:    "admin_users[0]",
			message: `"ops" is not in auth.users, so it could never log in`,
		},
		{
			name:    "empty admin user",
			yaml:    "admin_users: ['']\n" + minimal,
			path:    "admin_users[0]",
			message: "a user name must not be empty",
		},
		// Decoding.
		{
			name:    "unknown key at top level with suggestion",
			yaml:    "listne: 127.0.0.1:6432\n" + minimal,
			path:    "listne",
			message: "unknown key (did you mean listen?)",
		},
		{
			name: "unknown key in a database with suggestion",
			yaml: `
databases:
  appdb:
    host: db
    pool_sise: 5
`,
			path:    "databases.appdb.pool_sise",
			message: "unknown key (did you mean pool_size?)",
		},
		{
			name:    "unknown key without suggestion",
			yaml:    "frobnicate: yes\n" + minimal,
			path:    "frobnicate",
			message: "unknown key",
		},
		{
			name:    "unknown key under log",
			yaml:    "log:\n  levle: debug\n" + minimal,
			path:    "log.levle",
			message: "unknown key (did you mean level?)",
		},
		{
			name: "unknown key under a user",
			yaml: `
auth:
  type: md5
  users:
    app:
      passwrd: x
` + minimal,
			path:    "auth.users.app.passwrd",
			message: "unknown key (did you mean password?)",
		},
		{
			name:    "key in the wrong case",
			yaml:    "Listen: :6432\n" + minimal,
			path:    "Listen",
			message: "unknown key (did you mean listen?)",
		},
		{
			name:    "key with a dot is quoted in the path",
			yaml:    "log.level: debug\n" + minimal,
			path:    `"log.level"`,
			message: "unknown key",
		},
		{
			name: "integer that is not a number",
			yaml: `
databases:
  appdb:
    host: db
    pool_size: abc
`,
			path:    "databases.appdb.pool_size",
			message: "line 5: expected a whole number",
		},
		{
			name: "integer that is a fraction",
			yaml: `
databases:
  appdb:
    host: db
    pool_size: 1.5
`,
			path:    "databases.appdb.pool_size",
			message: "line 5: expected a whole number",
		},
		{
			name:    "integer out of range",
			yaml:    "max_client_conn: 99999999999999999999999\n" + minimal,
			path:    "max_client_conn",
			message: "line 1: number out of range",
		},
		{
			name:    "mapping where a value belongs",
			yaml:    "listen:\n  host: x\n" + minimal,
			path:    "listen",
			message: "line 2: expected a single value, found a mapping",
		},
		{
			name:    "list where a value belongs",
			yaml:    "pool_mode: [session]\n" + minimal,
			path:    "pool_mode",
			message: "line 1: expected a single value, found a list",
		},
		{
			name:    "value where a mapping belongs",
			yaml:    "databases: appdb\n",
			path:    "databases",
			message: "line 1: expected a mapping of keys to values, found a single value",
		},
		{
			name:    "value where a section belongs",
			yaml:    "log: debug\n" + minimal,
			path:    "log",
			message: "line 1: expected a mapping of keys to values, found a single value",
		},
		{
			name:    "duplicate key",
			yaml:    "listen: :6432\nlisten: :6433\n" + minimal,
			path:    "listen",
			message: "line 2: duplicate key (first written on line 1)",
		},
		{
			name:    "merge of a value",
			yaml:    "databases:\n  appdb:\n    <<: 5\n    host: db\n",
			path:    "databases.appdb",
			message: `line 3: "<<" can only merge a mapping or a list of mappings, found a single value`,
		},
		{
			name:    "yaml syntax error",
			yaml:    "listen: [\n",
			path:    "",
			message: "yaml: ",
			prefix:  true,
		},
		{
			name:    "file is not a mapping",
			yaml:    "- listen\n",
			path:    "",
			message: `line 1: the configuration must be a mapping of keys to values (like "listen: 127.0.0.1:6432"), found a list`,
		},
		{
			name:    "two documents",
			yaml:    minimal + "---\nlisten: :1\n",
			path:    "",
			message: "line 5: a second YAML document; the configuration must be a single document",
		},

		// Environment.
		{
			name: "unset environment variable",
			yaml: `
auth:
  type: md5
  users:
    app:
      password: ${APP_PASSWORD}
` + minimal,
			path:    "auth.users.app.password",
			message: "environment variable APP_PASSWORD is not set",
		},
		{
			name:    "unterminated reference",
			yaml:    "listen: ${LISTEN\n" + minimal,
			env:     []string{"LISTEN", ":1"},
			path:    "listen",
			message: `"${" without a closing "}" (write "$${" for a literal "${")`,
		},
		{
			name:    "invalid variable name",
			yaml:    "listen: ${LIS-TEN}\n" + minimal,
			path:    "listen",
			message: `invalid environment variable name in "${...}": use letters, digits and _ (write "$${" for a literal "${")`,
		},
		{
			name:    "empty variable name",
			yaml:    "listen: ${}\n" + minimal,
			path:    "listen",
			message: `invalid environment variable name in "${...}"`,
			prefix:  true,
		},

		// Durations.
		{
			name:    "duration without unit",
			yaml:    "connect_timeout: 5\n" + minimal,
			path:    "connect_timeout",
			message: `line 1: a duration needs a unit, such as "30s", "250ms" or "1h"`,
		},
		{
			name:    "duration without unit, quoted",
			yaml:    "server_lifetime: \"3600\"\n" + minimal,
			path:    "server_lifetime",
			message: `line 1: a duration needs a unit, such as "30s", "250ms" or "1h"`,
		},
		{
			name:    "negative duration",
			yaml:    "acquire_timeout: -5s\n" + minimal,
			path:    "acquire_timeout",
			message: "line 1: a duration must not be negative",
		},
		{
			name:    "invalid duration",
			yaml:    "server_idle_timeout: soon\n" + minimal,
			path:    "server_idle_timeout",
			message: `line 1: invalid duration: write a number with a unit, such as "30s", "250ms" or "1h30m"`,
		},
		{
			name:    "duration as a mapping",
			yaml:    "shutdown_timeout: {s: 1}\n" + minimal,
			path:    "shutdown_timeout",
			message: `line 1: expected a duration such as "30s"`,
		},

		// Validation.
		{
			name:    "listen without port",
			yaml:    "listen: localhost\n" + minimal,
			path:    "listen",
			message: `must be host:port, such as "127.0.0.1:6432" or ":6432"`,
		},
		{
			name:    "listen port out of range",
			yaml:    "listen: 127.0.0.1:70000\n" + minimal,
			path:    "listen",
			message: "port must be a number from 0 to 65535 (0 picks a free port)",
		},
		{
			name:    "listen port by service name",
			yaml:    "listen: 127.0.0.1:postgresql\n" + minimal,
			path:    "listen",
			message: "port must be a number from 0 to 65535 (0 picks a free port)",
		},
		{
			name:    "pool_mode",
			yaml:    "pool_mode: statement\n" + minimal,
			path:    "pool_mode",
			message: "must be one of transaction, session",
		},
		{
			name:    "max_client_conn",
			yaml:    "max_client_conn: -1\n" + minimal,
			path:    "max_client_conn",
			message: "must be at least 1",
		},
		{
			name:    "log.level",
			yaml:    "log:\n  level: verbose\n" + minimal,
			path:    "log.level",
			message: "must be one of debug, info, warn, error",
		},
		{
			name:    "log.format",
			yaml:    "log:\n  format: text\n" + minimal,
			path:    "log.format",
			message: "must be one of json, console",
		},
		{
			name:    "auth.type",
			yaml:    "auth:\n  type: password\n" + minimal,
			path:    "auth.type",
			message: "must be one of trust, md5, scram-sha-256",
		},
		{
			name:    "auth without users",
			yaml:    "auth:\n  type: scram-sha-256\n" + minimal,
			path:    "auth.users",
			message: "at least one user is required when auth.type is scram-sha-256",
		},
		{
			name:    "user without password",
			yaml:    "auth:\n  type: md5\n  users:\n    app:\n" + minimal,
			path:    "auth.users.app.password",
			message: "required when auth.type is md5",
		},
		{
			name:    "user with empty password from the environment",
			yaml:    "auth:\n  type: md5\n  users:\n    app:\n      password: ${APP_PASSWORD}\n" + minimal,
			env:     []string{"APP_PASSWORD", ""},
			path:    "auth.users.app.password",
			message: "required when auth.type is md5",
		},
		{
			name:    "md5 hash with scram-sha-256",
			yaml:    "auth:\n  type: scram-sha-256\n  users:\n    app:\n      password: md5e10adc3949ba59abbe56e057f20f883e\n" + minimal,
			path:    "auth.users.app.password",
			message: "an md5 hash cannot be used for scram-sha-256 authentication; give the plaintext password or a SCRAM-SHA-256 verifier",
		},
		{
			name:    "SCRAM verifier with md5",
			yaml:    "auth:\n  type: md5\n  users:\n    app:\n      password: SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy\n" + minimal,
			path:    "auth.users.app.password",
			message: "a SCRAM-SHA-256 verifier cannot be used for md5 authentication; give the plaintext password or its md5 hash",
		},
		{
			name:    "empty user name",
			yaml:    "auth:\n  type: md5\n  users:\n    \"\":\n      password: x\n" + minimal,
			path:    `auth.users.""`,
			message: "a user name must not be empty",
		},
		{
			name:    "no databases key",
			yaml:    "listen: :6432\n",
			path:    "databases",
			message: "at least one database is required",
		},
		{
			name:    "empty databases",
			yaml:    "databases: {}\n",
			path:    "databases",
			message: "at least one database is required",
		},
		{
			name:    "empty file",
			yaml:    "",
			path:    "databases",
			message: "at least one database is required",
		},
		{
			name:    "reserved database name",
			yaml:    "databases:\n  pgpoolx:\n    host: db\n",
			path:    "databases.pgpoolx",
			message: "the name pgpoolx is reserved for the admin console",
		},
		{
			name:    "empty database name",
			yaml:    "databases:\n  \"\":\n    host: db\n",
			path:    `databases.""`,
			message: "a database name must not be empty",
		},
		{
			name:    "database without host",
			yaml:    "databases:\n  appdb:\n    port: 5433\n",
			path:    "databases.appdb.host",
			message: "required",
		},
		{
			name:    "empty database entry",
			yaml:    "databases:\n  appdb:\n",
			path:    "databases.appdb.host",
			message: "required",
		},
		{
			name:    "database port negative",
			yaml:    "databases:\n  appdb:\n    host: db\n    port: -1\n",
			path:    "databases.appdb.port",
			message: "must be from 1 to 65535",
		},
		{
			name:    "database port too big",
			yaml:    "databases:\n  appdb:\n    host: db\n    port: 65536\n",
			path:    "databases.appdb.port",
			message: "must be from 1 to 65535",
		},
		{
			name:    "pool_size negative",
			yaml:    "databases:\n  appdb:\n    host: db\n    pool_size: -1\n",
			path:    "databases.appdb.pool_size",
			message: "must be from 1 to 10000",
		},
		{
			name:    "pool_size too big",
			yaml:    "databases:\n  appdb:\n    host: db\n    pool_size: 10001\n",
			path:    "databases.appdb.pool_size",
			message: "must be from 1 to 10000",
		},
		{
			name:    "database pool_mode",
			yaml:    "databases:\n  appdb:\n    host: db\n    pool_mode: Session\n",
			path:    "databases.appdb.pool_mode",
			message: "must be one of transaction, session",
		},
		{
			name:    "unknown key under pinning",
			yaml:    "pinning: {max_query_byte: 5}\n" + minimal,
			path:    "pinning.max_query_byte",
			message: "unknown key (did you mean max_query_bytes?)",
		},
		{
			name:    "pinning.max_query_bytes just too small",
			yaml:    "pinning:\n  max_query_bytes: 1023\n" + minimal,
			path:    "pinning.max_query_bytes",
			message: "must be from 1024 to 1073741824",
		},
		{
			name:    "pinning.max_query_bytes negative",
			yaml:    "pinning:\n  max_query_bytes: -1\n" + minimal,
			path:    "pinning.max_query_bytes",
			message: "must be from 1024 to 1073741824",
		},
		{
			name:    "pinning.max_query_bytes just too big",
			yaml:    "pinning:\n  max_query_bytes: 1073741825\n" + minimal,
			path:    "pinning.max_query_bytes",
			message: "must be from 1024 to 1073741824",
		},
		{
			name:    "pinning.max_query_bytes far too big",
			yaml:    "pinning:\n  max_query_bytes: 9223372036854775807\n" + minimal,
			path:    "pinning.max_query_bytes",
			message: "must be from 1024 to 1073741824",
		},
		{
			name:    "pinning.max_query_bytes with a unit",
			yaml:    "pinning:\n  max_query_bytes: 1MiB\n" + minimal,
			path:    "pinning.max_query_bytes",
			message: "line 2: expected a whole number",
		},
		{
			name:    "pinning.rds_proxy_report not a boolean",
			yaml:    "pinning:\n  rds_proxy_report: sometimes\n" + minimal,
			path:    "pinning.rds_proxy_report",
			message: "line 2: expected true or false",
		},
		{
			name:    "pinning.rds_proxy_report as a list",
			yaml:    "pinning:\n  rds_proxy_report: [true]\n" + minimal,
			path:    "pinning.rds_proxy_report",
			message: "line 2: expected a single value, found a list",
		},
		{
			name:    "pinning as a value",
			yaml:    "pinning: on\n" + minimal,
			path:    "pinning",
			message: "line 1: expected a mapping of keys to values, found a single value",
		},
		{
			name:    "connect_timeout 0",
			yaml:    "connect_timeout: 0\n" + minimal,
			path:    "connect_timeout",
			message: "must be greater than 0; this timeout cannot be disabled",
		},
		{
			name:    "acquire_timeout 0",
			yaml:    "acquire_timeout: 0s\n" + minimal,
			path:    "acquire_timeout",
			message: "must be greater than 0; this timeout cannot be disabled",
		},
		{
			name:    "client_login_timeout 0",
			yaml:    "client_login_timeout: \"0\"\n" + minimal,
			path:    "client_login_timeout",
			message: "must be greater than 0; this timeout cannot be disabled",
		},
		{
			name:    "shutdown_timeout 0",
			yaml:    "shutdown_timeout: 0ms\n" + minimal,
			path:    "shutdown_timeout",
			message: "must be greater than 0; this timeout cannot be disabled",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Parse([]byte(tt.yaml), env(tt.env...))
			if c != nil {
				t.Errorf("Parse returned a config together with an error")
			}
			list := problemsOf(t, err)
			for _, p := range list {
				if p.Path != tt.path {
					continue
				}
				if p.Message == tt.message || tt.prefix && strings.HasPrefix(p.Message, tt.message) {
					want := tt.path + ": " + p.Message
					if tt.path == "" {
						want = p.Message
					}
					if !strings.Contains(err.Error(), want) {
						t.Errorf("Error() = %q, want it to contain %q", err.Error(), want)
					}
					return
				}
			}
			t.Errorf("no problem %q at path %q; got:\n%v", tt.message, tt.path, err)
		})
	}
}

func TestParseReportsEveryProblem(t *testing.T) {
	const data = `
listen: nowhere
pool_mode: statement
max_client_conn: lots
log:
  level: loud
  colour: yes
auth:
  type: md5
  users:
    app:
      password: ${APP_PASSWORD}
    admin: {}
connect_timeout: 5
databases:
  pgpoolx:
    host: db
  appdb:
    port: 99999
    pool_sise: 5
`
	_, err := config.Parse([]byte(data), env())
	list := problemsOf(t, err)
	want := []config.Problem{
		{"max_client_conn", "line 4: expected a whole number"},
		{"log.colour", "unknown key"},
		{"auth.users.app.password", "environment variable APP_PASSWORD is not set"},
		{"connect_timeout", `line 14: a duration needs a unit, such as "30s", "250ms" or "1h"`},
		{"databases.appdb.pool_sise", "unknown key (did you mean pool_size?)"},
		{"listen", `must be host:port, such as "127.0.0.1:6432" or ":6432"`},
		{"pool_mode", "must be one of transaction, session"},
		{"log.level", "must be one of debug, info, warn, error"},
		{"auth.users.admin.password", "required when auth.type is md5"},
		{"databases.appdb.host", "required"},
		{"databases.appdb.port", "must be from 1 to 65535"},
		{"databases.pgpoolx", "the name pgpoolx is reserved for the admin console"},
	}
	if !reflect.DeepEqual(list, want) {
		t.Errorf("problems:\n%v\nwant:\n%v", err, &config.Problems{List: want})
	}
	if got := strings.Count(err.Error(), "\n") + 1; got != len(want) {
		t.Errorf("Error() has %d lines, want one per problem (%d)", got, len(want))
	}
}

func TestParseNeverRepeatsSecrets(t *testing.T) {
	const secret = "hunter2-very-secret"
	tests := []struct {
		name string
		yaml string
	}{
		{"bad duration", "connect_timeout: ${SECRET}\n" + minimal},
		{"bad integer", "max_client_conn: ${SECRET}\n" + minimal},
		{"bad pool mode", "pool_mode: ${SECRET}\n" + minimal},
		{"bad listen", "listen: ${SECRET}\n" + minimal},
		{"bad max_query_bytes", "pinning:\n  max_query_bytes: ${SECRET}\n" + minimal},
		{"bad rds_proxy_report", "pinning:\n  rds_proxy_report: ${SECRET}\n" + minimal},
		{"md5 hash for scram", "auth:\n  type: scram-sha-256\n  users:\n    app:\n      password: md5" + strings.Repeat("ab", 16) + "\n" + minimal},
		{"broken reference in password", "auth:\n  type: md5\n  users:\n    app:\n      password: " + secret + "${x\n" + minimal},
		{"bad name in password", "auth:\n  type: md5\n  users:\n    app:\n      password: ${" + secret + "}\n" + minimal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tt.yaml), env("SECRET", secret))
			problemsOf(t, err)
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), strings.Repeat("ab", 16)) {
				t.Errorf("error repeats a secret: %v", err)
			}
		})
	}
}

func TestParseDefaults(t *testing.T) {
	c := mustParse(t, minimal, env())
	want := &config.Config{
		Listen:             "127.0.0.1:6432",
		PoolMode:           config.PoolModeTransaction,
		MaxClientConn:      10000,
		MaxMessageBytes:    1 << 30,
		TLS:                config.TLS{Mode: config.TLSDisable},
		Log:                config.Log{Level: "info", Format: "json"},
		Auth:               config.Auth{Type: config.AuthTrust},
		Pinning:            config.Pinning{MaxQueryBytes: 1048576, RDSProxyReport: false},
		PreparedStatements: config.PreparedStatements{CacheSize: 1000},
		ConnectTimeout:     config.Duration(5 * time.Second),
		AcquireTimeout:     config.Duration(30 * time.Second),
		ServerIdleTimeout:  config.Duration(10 * time.Minute),
		ServerLifetime:     config.Duration(time.Hour),
		ClientIdleTimeout:  0,
		ClientLoginTimeout: config.Duration(60 * time.Second),
		ShutdownTimeout:    config.Duration(30 * time.Second),
		EventLoop:          new(true),
		StatsPeriod:        config.Duration(time.Minute),
		Databases: map[string]*config.Database{
			"appdb": {
				Host:     "db.internal",
				Port:     5432,
				DBName:   "appdb",
				PoolSize: 20,
				PoolMode: config.PoolModeTransaction,
				SSLMode:  "prefer",
			},
		},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", c, want)
	}

	t.Run("database pool_mode follows the top level", func(t *testing.T) {
		c := mustParse(t, "pool_mode: session\n"+minimal, env())
		if got := c.Databases["appdb"].PoolMode; got != config.PoolModeSession {
			t.Errorf("pool_mode = %q, want session", got)
		}
	})
	t.Run("null is the same as absent", func(t *testing.T) {
		c := mustParse(t, "listen:\nserver_lifetime: ~\ndatabases:\n  appdb:\n    host: db\n    port: null\n", env())
		if c.Listen != "127.0.0.1:6432" || c.ServerLifetime.D() != time.Hour || c.Databases["appdb"].Port != 5432 {
			t.Errorf("got listen %q, server_lifetime %v, port %d; want the defaults", c.Listen, c.ServerLifetime, c.Databases["appdb"].Port)
		}
	})
}

func TestParseExplicitValues(t *testing.T) {
	const data = `
listen: 0.0.0.0:7432
pool_mode: session
max_client_conn: 50
log: {level: debug, format: console}
pinning: {max_query_bytes: 4096, rds_proxy_report: true}
connect_timeout: 1s
acquire_timeout: 2s
server_idle_timeout: 0
server_lifetime: "0"
client_idle_timeout: 0s
client_login_timeout: 3s
shutdown_timeout: 4s
databases:
  appdb:
    host: db
    port: 6543
    dbname: real_name
    user: app
    password: pw
    pool_size: 7
    pool_mode: transaction
    init_query: SET search_path TO app
`
	c := mustParse(t, data, env())
	if c.ServerIdleTimeout != 0 {
		t.Errorf("server_idle_timeout = %v, want an explicit 0 kept", c.ServerIdleTimeout)
	}
	if c.ServerLifetime != 0 {
		t.Errorf("server_lifetime = %v, want an explicit 0 kept", c.ServerLifetime)
	}
	if c.ClientIdleTimeout != 0 {
		t.Errorf("client_idle_timeout = %v, want 0", c.ClientIdleTimeout)
	}
	if c.Listen != "0.0.0.0:7432" || c.PoolMode != config.PoolModeSession || c.MaxClientConn != 50 ||
		c.Log != (config.Log{Level: "debug", Format: "console"}) ||
		c.Pinning != (config.Pinning{MaxQueryBytes: 4096, RDSProxyReport: true}) ||
		c.ConnectTimeout.D() != time.Second || c.AcquireTimeout.D() != 2*time.Second ||
		c.ClientLoginTimeout.D() != 3*time.Second || c.ShutdownTimeout.D() != 4*time.Second {
		t.Errorf("top-level values not kept: %+v", c)
	}
	wantDB := config.Database{Host: "db", Port: 6543, DBName: "real_name", User: "app", Password: "pw",
		PoolSize: 7, PoolMode: config.PoolModeTransaction, InitQuery: "SET search_path TO app", SSLMode: "prefer"}
	if got := *c.Databases["appdb"]; got != wantDB {
		t.Errorf("database = %+v, want %+v", got, wantDB)
	}
}

func TestParsePinning(t *testing.T) {
	tests := []struct {
		name string
		yaml string // the pinning section, or nothing
		env  []string
		want config.Pinning
	}{
		{"absent", "", nil, config.Pinning{MaxQueryBytes: 1 << 20}},
		{"empty section", "pinning:\n", nil, config.Pinning{MaxQueryBytes: 1 << 20}},
		{"empty mapping", "pinning: {}\n", nil, config.Pinning{MaxQueryBytes: 1 << 20}},
		{"null values", "pinning:\n  max_query_bytes: ~\n  rds_proxy_report: ~\n", nil, config.Pinning{MaxQueryBytes: 1 << 20}},
		{"zero takes the default", "pinning:\n  max_query_bytes: 0\n", nil, config.Pinning{MaxQueryBytes: 1 << 20}},
		{"explicit", "pinning:\n  max_query_bytes: 65536\n  rds_proxy_report: true\n", nil, config.Pinning{MaxQueryBytes: 65536, RDSProxyReport: true}},
		{"lowest", "pinning:\n  max_query_bytes: 1024\n", nil, config.Pinning{MaxQueryBytes: 1024}},
		{"highest", "pinning:\n  max_query_bytes: 1073741824\n", nil, config.Pinning{MaxQueryBytes: 1 << 30}},
		{"explicit false", "pinning:\n  rds_proxy_report: false\n", nil, config.Pinning{MaxQueryBytes: 1 << 20}},
		{"yes", "pinning:\n  rds_proxy_report: yes\n", nil, config.Pinning{MaxQueryBytes: 1 << 20, RDSProxyReport: true}},
		{"quoted", "pinning:\n  max_query_bytes: \"2048\"\n  rds_proxy_report: \"True\"\n", nil, config.Pinning{MaxQueryBytes: 2048, RDSProxyReport: true}},
		{"from the environment", "pinning:\n  max_query_bytes: ${MQB}\n  rds_proxy_report: ${RPR}\n", []string{"MQB", "8192", "RPR", "true"}, config.Pinning{MaxQueryBytes: 8192, RDSProxyReport: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, tt.yaml+minimal, env(tt.env...))
			if c.Pinning != tt.want {
				t.Errorf("pinning = %+v, want %+v", c.Pinning, tt.want)
			}
		})
	}
}

func TestParseEnv(t *testing.T) {
	tests := []struct {
		name  string
		value string // the YAML text of auth.users.app.password
		env   []string
		want  string
	}{
		{"whole value", "${APP_PASSWORD}", []string{"APP_PASSWORD", "s3cret"}, "s3cret"},
		{"inside text", "pre-${A}-${B}-post", []string{"A", "1", "B", "2"}, "pre-1-2-post"},
		{"quoted", `"${A}"`, []string{"A", "x y"}, "x y"},
		{"escape", "$${A}", nil, "${A}"},
		{"escape next to a reference", "$${A}${A}", []string{"A", "v"}, "${A}v"},
		{"lone dollars are literal", "a$b$$c$", nil, "a$b$$c$"},
		{"SCRAM verifier needs no escaping", "SCRAM-SHA-256$4096:c2FsdA==$c3Q=:c2U=", nil, "SCRAM-SHA-256$4096:c2FsdA==$c3Q=:c2U="},
		{"value is not expanded again", "${A}", []string{"A", "${B}", "B", "no"}, "${B}"},
		{"set but empty inside text", "x${A}y", []string{"A", ""}, "xy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := "auth:\n  type: scram-sha-256\n  users:\n    app:\n      password: " + tt.value + "\n" + minimal
			c := mustParse(t, data, env(tt.env...))
			if got := c.Auth.Users["app"].Password; got != tt.want {
				t.Errorf("password = %q, want %q", got, tt.want)
			}
		})
	}

	t.Run("numbers and durations", func(t *testing.T) {
		data := `
connect_timeout: ${TIMEOUT}
databases:
  appdb:
    host: ${PGHOST}
    port: "${PGPORT}"
    pool_size: ${POOL}
`
		c := mustParse(t, data, env("TIMEOUT", "2s", "PGHOST", "db", "PGPORT", "6000", "POOL", "9"))
		db := c.Databases["appdb"]
		if c.ConnectTimeout.D() != 2*time.Second || db.Host != "db" || db.Port != 6000 || db.PoolSize != 9 {
			t.Errorf("got connect_timeout %v, %+v", c.ConnectTimeout, db)
		}
	})
	t.Run("unset in several places", func(t *testing.T) {
		data := "listen: ${L}\ndatabases:\n  appdb:\n    host: ${H}\n    password: ${H}${P}\n"
		_, err := config.Parse([]byte(data), env())
		want := []config.Problem{
			{"listen", "environment variable L is not set"},
			{"databases.appdb.host", "environment variable H is not set"},
			{"databases.appdb.password", "environment variable H is not set"},
			{"databases.appdb.password", "environment variable P is not set"},
		}
		if got := problemsOf(t, err); !reflect.DeepEqual(got, want) {
			t.Errorf("got\n%v\nwant\n%v", err, &config.Problems{List: want})
		}
	})
	t.Run("nil lookup means nothing is set", func(t *testing.T) {
		_, err := config.Parse([]byte("listen: ${L}\n"+minimal), nil)
		if got := problemsOf(t, err); got[0] != (config.Problem{Path: "listen", Message: "environment variable L is not set"}) {
			t.Errorf("got %v", err)
		}
	})
	t.Run("keys are not expanded", func(t *testing.T) {
		_, err := config.Parse([]byte("databases:\n  ${DB}:\n    host: db\n"), env("DB", "appdb"))
		if err != nil {
			t.Fatal(err)
		}
	})
}

func TestDuration(t *testing.T) {
	tests := []struct {
		yaml    string
		want    time.Duration
		wantErr string
	}{
		{yaml: "5s", want: 5 * time.Second},
		{yaml: "250ms", want: 250 * time.Millisecond},
		{yaml: "1h", want: time.Hour},
		{yaml: "1h30m", want: 90 * time.Minute},
		{yaml: `"10m"`, want: 10 * time.Minute},
		{yaml: "0", want: 0},
		{yaml: "0.0", want: 0},
		{yaml: `"0"`, want: 0},
		{yaml: "0s", want: 0},
		{yaml: "~", want: 42}, // null leaves the value alone
		{yaml: "5", wantErr: "line 1: a duration needs a unit"},
		{yaml: "1.5", wantErr: "line 1: a duration needs a unit"},
		{yaml: "-1", wantErr: "line 1: a duration needs a unit"},
		{yaml: "-1s", wantErr: "line 1: a duration must not be negative"},
		{yaml: "5 seconds", wantErr: "line 1: invalid duration"},
		{yaml: `""`, wantErr: "line 1: invalid duration"},
		{yaml: "[1s]", wantErr: "line 1: expected a duration"},
	}
	for _, tt := range tests {
		t.Run(tt.yaml, func(t *testing.T) {
			var v struct {
				D config.Duration `yaml:"d"`
			}
			v.D = 42
			err := yaml.Unmarshal([]byte("d: "+tt.yaml), &v)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if v.D.D() != tt.want {
				t.Errorf("got %v, want %v", v.D.D(), tt.want)
			}
		})
	}

	t.Run("round trip", func(t *testing.T) {
		out, err := yaml.Marshal(map[string]config.Duration{"d": config.Duration(90 * time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		var back map[string]config.Duration
		if err := yaml.Unmarshal(out, &back); err != nil {
			t.Fatal(err)
		}
		if back["d"].D() != 90*time.Second {
			t.Errorf("round trip via %q gave %v", out, back["d"])
		}
	})
}

func TestParseAnchorsAndMerges(t *testing.T) {
	const data = `
databases:
  appdb: &common
    host: db.internal
    pool_size: 30
    init_query: SET timezone TO utc
  reports:
    <<: *common
    pool_size: 5
  archive:
    <<: [{port: 6000}, *common]
    host: archive.internal
`
	c := mustParse(t, data, env())
	want := map[string]config.Database{
		"appdb":   {Host: "db.internal", Port: 5432, DBName: "appdb", PoolSize: 30, PoolMode: "transaction", InitQuery: "SET timezone TO utc", SSLMode: "prefer"},
		"reports": {Host: "db.internal", Port: 5432, DBName: "reports", PoolSize: 5, PoolMode: "transaction", InitQuery: "SET timezone TO utc", SSLMode: "prefer"},
		"archive": {Host: "archive.internal", Port: 6000, DBName: "archive", PoolSize: 30, PoolMode: "transaction", InitQuery: "SET timezone TO utc", SSLMode: "prefer"},
	}
	for name, w := range want {
		if got := *c.Databases[name]; got != w {
			t.Errorf("%s = %+v, want %+v", name, got, w)
		}
	}

	t.Run("unknown key in a merged mapping", func(t *testing.T) {
		_, err := config.Parse([]byte("databases:\n  a: &x\n    host: db\n    hots: db\n  b:\n    <<: *x\n"), env())
		list := problemsOf(t, err)
		if len(list) != 2 || list[0].Path != "databases.a.hots" || list[1].Path != "databases.b.hots" {
			t.Errorf("got\n%v", err)
		}
	})
	t.Run("a mapping that merges itself", func(t *testing.T) {
		_, err := config.Parse([]byte("databases:\n  a: &x\n    host: db\n    <<: *x\n"), env())
		if err != nil {
			t.Fatal(err)
		}
	})
}

func TestDatabase(t *testing.T) {
	c := mustParse(t, minimal, env())
	if db, ok := c.Database("appdb"); !ok || db.Host != "db.internal" {
		t.Errorf(`Database("appdb") = %v, %v`, db, ok)
	}
	if db, ok := c.Database("other"); ok || db != nil {
		t.Errorf(`Database("other") = %v, %v; want nil, false`, db, ok)
	}
	if _, ok := (&config.Config{}).Database("appdb"); ok {
		t.Error("found a database in an empty config")
	}
}

func TestValidateWithoutDefaults(t *testing.T) {
	// A Config built in code without Parse: Validate must still name every
	// problem and not panic on nil entries.
	c := &config.Config{PoolMode: config.PoolModeSession, Databases: map[string]*config.Database{"appdb": nil}}
	err := c.Validate()
	paths := map[string]bool{}
	for _, p := range problemsOf(t, err) {
		paths[p.Path] = true
	}
	for _, want := range []string{"listen", "max_client_conn", "log.level", "log.format", "auth.type",
		"connect_timeout", "acquire_timeout", "client_login_timeout", "shutdown_timeout",
		"pinning.max_query_bytes",
		"databases.appdb.host", "databases.appdb.port", "databases.appdb.pool_size", "databases.appdb.pool_mode"} {
		if !paths[want] {
			t.Errorf("no problem at %s; got:\n%v", want, err)
		}
	}
	if err := mustParse(t, minimal, env()).Validate(); err != nil {
		t.Errorf("Validate of a parsed config: %v", err)
	}
}

func TestProblemsError(t *testing.T) {
	p := &config.Problems{List: []config.Problem{
		{Path: "", Message: "yaml: line 1: bad"},
		{Path: "databases.appdb.port", Message: "must be from 1 to 65535"},
	}}
	want := "yaml: line 1: bad\ndatabases.appdb.port: must be from 1 to 65535"
	if got := p.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestExampleFile(t *testing.T) {
	data, err := os.ReadFile("../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c := mustParse(t, string(data), env("APP_PASSWORD", "example"))
	// The example shows every default; parsing it must give what leaving
	// everything out gives.
	def := mustParse(t, "databases:\n  appdb:\n    host: 127.0.0.1\n    init_query: SET statement_timeout TO 300000; SET timezone TO utc\n", env())
	if !reflect.DeepEqual(c, def) {
		t.Errorf("example file values differ from the defaults:\n got %+v\nwant %+v", c, def)
	}

	t.Run("commented-out users example", func(t *testing.T) {
		// Turning on md5 with the example's users block must work.
		s := strings.Replace(string(data), "  type: trust", "  type: md5", 1)
		s = strings.Replace(s, "  # users:\n  #   app:\n  #     password: ${APP_PASSWORD}", "  users:\n    app:\n      password: ${APP_PASSWORD}", 1)
		c := mustParse(t, s, env("APP_PASSWORD", "example"))
		if c.Auth.Users["app"].Password != "example" {
			t.Errorf("users block not found in the example; did its layout change?")
		}
	})
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pgpoolx.yaml")
	if err := os.WriteFile(path, []byte(minimal), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Database("appdb"); !ok {
		t.Error("appdb missing")
	}

	_, err = config.Load(filepath.Join(dir, "missing.yaml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of a missing file: %v, want fs.ErrNotExist", err)
	}
}

func FuzzParse(f *testing.F) {
	if data, err := os.ReadFile("../config.example.yaml"); err == nil {
		f.Add(data)
	}
	for _, s := range []string{
		"",
		minimal,
		"databases:\n  a: &x\n    host: db\n    <<: *x\n",
		"databases:\n  appdb:\n    <<: [{port: 1}, *nope]\n",
		"auth:\n  type: md5\n  users:\n    app:\n      password: ${SECRET}$${X}${\n" + minimal,
		"connect_timeout: ${SECRET}\nserver_lifetime: 0\n" + minimal,
		"a: &a [*a]\nlisten: *a\n",
		"--- 1\n--- 2\n",
		"databases: {a: {host: x, port: 99999999999999999999}}",
		"pinning: {max_query_bytes: ${SECRET}, rds_proxy_report: ${SECRET}}\n" + minimal,
	} {
		f.Add([]byte(s))
	}
	const secret = "fuzz-secret-value"
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := config.Parse(data, env("SECRET", secret, "APP_PASSWORD", secret))
		if err == nil {
			if c == nil {
				t.Fatal("nil config and nil error")
			}
			if err := c.Validate(); err != nil {
				t.Fatalf("Parse accepted a config that Validate rejects: %v", err)
			}
			return
		}
		if c != nil {
			t.Fatal("config returned together with an error")
		}
		var p *config.Problems
		if !errors.As(err, &p) || len(p.List) == 0 {
			t.Fatalf("error %T %v, want a non-empty *Problems", err, err)
		}
		for _, pr := range p.List {
			if strings.Contains(pr.Path+pr.Message, "\n") {
				t.Errorf("problem spans lines: %q", pr)
			}
		}
		if !strings.Contains(string(data), secret) && strings.Contains(err.Error(), secret) {
			t.Errorf("error repeats an environment value: %v", err)
		}
	})
}

func TestPreparedStatementsCacheSize(t *testing.T) {
	base := "databases: {appdb: {host: h}}\n"
	tests := []struct {
		yaml    string
		want    int
		problem string
	}{
		{"", 1000, ""},
		{"prepared_statements: {cache_size: 50}\n", 50, ""},
		{"prepared_statements: {cache_size: -1}\n", 0, "prepared_statements.cache_size: must be from 1 to 100000"},
		{"prepared_statements: {cache_size: 100001}\n", 0, "prepared_statements.cache_size: must be from 1 to 100000"},
		{"prepared_statements: {cache_sise: 5}\n", 0, "prepared_statements.cache_sise: unknown key"},
	}
	for _, tt := range tests {
		t.Run(tt.yaml, func(t *testing.T) {
			c, err := config.Parse([]byte(base+tt.yaml), nil)
			if tt.problem != "" {
				if err == nil || !strings.Contains(err.Error(), tt.problem) {
					t.Fatalf("err = %v, want %q", err, tt.problem)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.PreparedStatements.CacheSize != tt.want {
				t.Errorf("cache_size = %d, want %d", c.PreparedStatements.CacheSize, tt.want)
			}
		})
	}
}

func TestAdminSettings(t *testing.T) {
	tests := []struct {
		yaml string
		want []string
	}{
		{"admin_users: [ops, dba]\n", []string{"ops", "dba"}},
		{"admin_users: ops\n", []string{"ops"}},
		{"admin_users:\n  - ops\n", []string{"ops"}},
		{"", nil},
	}
	for _, tt := range tests {
		c := mustParse(t, tt.yaml+"admin_listen: 127.0.0.1:0\n"+minimal, nil)
		if !reflect.DeepEqual(c.AdminUsers, tt.want) {
			t.Errorf("%q: AdminUsers = %q, want %q", tt.yaml, c.AdminUsers, tt.want)
		}
		if c.AdminListen != "127.0.0.1:0" {
			t.Errorf("AdminListen = %q", c.AdminListen)
		}
	}
}

func TestSettingsListEveryTopLevelKey(t *testing.T) {
	c := mustParse(t, "admin_users: [ops]\n"+minimal, nil)
	got := map[string]config.Setting{}
	for _, s := range c.Settings() {
		got[s.Key] = s
	}
	for key, want := range map[string]string{
		"max_client_conn": "10000", "admin_users": "ops", "acquire_timeout": "30s",
		"pinning.max_query_bytes": "1048576", "listen": "127.0.0.1:6432",
	} {
		if got[key].Value != want {
			t.Errorf("setting %s = %q, want %q", key, got[key].Value, want)
		}
	}
	if got["listen"].Changeable || !got["pool_mode"].Changeable {
		t.Errorf("changeable: listen %v, pool_mode %v; want false, true", got["listen"].Changeable, got["pool_mode"].Changeable)
	}
	// Every key of the YAML's top level (and its sections) is listed.
	typ := reflect.TypeFor[config.Config]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "databases" {
			continue // SHOW DATABASES
		}
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[config.Duration]() {
			for j := range f.Type.NumField() {
				sub, _, _ := strings.Cut(f.Type.Field(j).Tag.Get("yaml"), ",")
				if sub == "users" || strings.Contains(sub, "password") {
					continue // credentials are never shown
				}
				if _, ok := got[name+"."+sub]; !ok {
					t.Errorf("Settings lacks %s.%s", name, sub)
				}
			}
			continue
		}
		if _, ok := got[name]; !ok {
			t.Errorf("Settings lacks %s", name)
		}
	}
}

func TestSecurityProblems(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, yaml, path, message string
	}{
		{"bad tls mode", "tls: {mode: on}\n", "tls.mode", "must be one of disable, allow, require"},
		{"tls without files", "tls: {mode: require}\n", "tls.cert_file", "required when tls.mode is require"},
		{"tls files that do not load", "tls: {mode: allow, cert_file: " + garbage + ", key_file: " + garbage + "}\n", "tls", "cannot load the certificate and key: tls: failed to find any PEM data in certificate input"},
		{"negative per-user cap", "max_client_conn_per_user: -1\n", "max_client_conn_per_user", "must not be negative (0: no cap)"},
		{"tiny max message", "max_message_bytes: 100\n", "max_message_bytes", "must be from 65536 to 1073741824"},
		{"auth query with trust", "auth: {query: 'SELECT usename, passwd FROM pg_shadow WHERE usename = $1', query_user: a}\n", "auth.query", "needs auth.type md5 or scram-sha-256: with trust no password is checked"},
		{"auth query without $1", "auth: {type: md5, query: 'SELECT 1', query_user: a}\n", "auth.query", "must take the user name as $1"},
		{"auth query without user", "auth: {type: md5, query: 'SELECT $1, null'}\n", "auth.query_user", "required with auth.query: the user pgpoolx logs in as to run it"},
		{"auth query user without query", "auth: {type: md5, users: {a: {password: x}}, query_user: a}\n", "auth.query", "required when auth.query_user or auth.query_password is set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tt.yaml+minimal), env())
			for _, p := range problemsOf(t, err) {
				if p.Path == tt.path && p.Message == tt.message {
					return
				}
			}
			t.Errorf("want %s: %s; got\n%v", tt.path, tt.message, err)
		})
	}
	dbTests := []struct {
		name, lines, path, message string
	}{
		{"bad sslmode", "sslmode: verify", "databases.appdb.sslmode", "must be one of disable, allow, prefer, require, verify-ca, verify-full"},
		{"verify-full without a CA", "sslmode: verify-full", "databases.appdb.sslrootcert", "required with sslmode verify-full: the CA certificates (PEM) that sign the server's certificate"},
		{"unreadable CA", "sslmode: verify-ca\n    sslrootcert: " + filepath.Join(dir, "none.pem"), "databases.appdb.sslrootcert", "cannot read " + filepath.Join(dir, "none.pem") + ": no such file or directory"},
		{"negative database cap", "max_client_conn: -2", "databases.appdb.max_client_conn", "must not be negative (0: no cap)"},
	}
	for _, tt := range dbTests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse([]byte("databases:\n  appdb:\n    host: db\n    "+tt.lines+"\n"), env())
			for _, p := range problemsOf(t, err) {
				if p.Path == tt.path && p.Message == tt.message {
					return
				}
			}
			t.Errorf("want %s: %s; got\n%v", tt.path, tt.message, err)
		})
	}
}

func TestFileReferences(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "pw")
	if err := os.WriteFile(secret, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := mustParse(t, "databases:\n  appdb:\n    host: db\n    password: ${file:"+secret+"}\n", env())
	if got := c.Databases["appdb"].Password; got != "s3cret" {
		t.Errorf("password from file = %q, want s3cret (without the line break)", got)
	}
	missing := filepath.Join(dir, "missing")
	_, err := config.Parse([]byte("databases:\n  appdb:\n    host: db\n    password: x${file:"+missing+"}\n"), env())
	want := config.Problem{Path: "databases.appdb.password", Message: "cannot read " + missing + " for ${file:...}: no such file or directory"}
	if got := problemsOf(t, err); len(got) != 1 || got[0] != want {
		t.Errorf("got %v, want %v", got, want)
	}
}

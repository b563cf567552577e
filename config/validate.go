package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
)

// AdminDatabase is the database name a client uses to reach the admin
// console; no configured database may take it.
const AdminDatabase = "pgpoolx"

const maxPoolSize = 10000

// The bounds of max_message_bytes: a client must be able to send ordinary
// messages, and PostgreSQL accepts none over 1 GiB.
const (
	minMaxMessageBytes = 64 << 10
	maxMaxMessageBytes = 1 << 30
)

// The bounds of pinning.max_query_bytes: below 1 KiB ordinary statements
// would go unanalysed, and 1 GiB is about the largest message PostgreSQL
// accepts.
const (
	minMaxQueryBytes = 1 << 10
	maxMaxQueryBytes = 1 << 30
)

// Validate checks a configuration whose defaults have been applied (Parse
// does both) and returns a *Problems naming every problem by its YAML key
// path, or nil.
func (c *Config) Validate() error {
	var p Problems

	checkHostPort(&p, "listen", c.Listen, `must be host:port, such as "127.0.0.1:6432" or ":6432"`)
	if c.AdminListen != "" {
		checkHostPort(&p, "admin_listen", c.AdminListen, `must be host:port, such as "127.0.0.1:9127", or empty for none`)
	}
	for i, u := range c.AdminUsers {
		path := fmt.Sprintf("admin_users[%d]", i)
		switch {
		case u == "":
			p.addf(path, "a user name must not be empty")
		case c.Auth.Type != AuthTrust && c.Auth.Users[u] == nil:
			p.addf(path, "%q is not in auth.users, so it could never log in", u)
		}
	}
	checkPoolMode(&p, "pool_mode", c.PoolMode)
	if c.MaxClientConn < 1 {
		p.addf("max_client_conn", "must be at least 1")
	}
	if c.MaxClientConnPerUser < 0 {
		p.addf("max_client_conn_per_user", "must not be negative (0: no cap)")
	}
	if c.MaxMessageBytes < minMaxMessageBytes || c.MaxMessageBytes > maxMaxMessageBytes {
		p.addf("max_message_bytes", "must be from %d to %d", minMaxMessageBytes, maxMaxMessageBytes)
	}
	c.validateTLS(&p)
	checkOneOf(&p, "log.level", c.Log.Level, "debug", "info", "warn", "error")
	checkOneOf(&p, "log.format", c.Log.Format, "json", "console")
	if checkOneOf(&p, "auth.type", c.Auth.Type, AuthTrust, AuthMD5, AuthSCRAM) && c.Auth.Type != AuthTrust {
		c.validateUsers(&p)
	}
	c.validateAuthQuery(&p)

	if n := c.PreparedStatements.CacheSize; n < 1 || n > 100000 {
		p.addf("prepared_statements.cache_size", "must be from 1 to 100000")
	}
	if c.Pinning.MaxQueryBytes < minMaxQueryBytes || c.Pinning.MaxQueryBytes > maxMaxQueryBytes {
		p.addf("pinning.max_query_bytes", "must be from %d to %d", minMaxQueryBytes, maxMaxQueryBytes)
	}

	for _, t := range []struct {
		path string
		d    Duration
	}{
		{"connect_timeout", c.ConnectTimeout},
		{"acquire_timeout", c.AcquireTimeout},
		{"client_login_timeout", c.ClientLoginTimeout},
		{"shutdown_timeout", c.ShutdownTimeout},
	} {
		if t.d <= 0 {
			p.addf(t.path, "must be greater than 0; this timeout cannot be disabled")
		}
	}
	for _, t := range []struct {
		path string
		d    Duration
	}{
		{"server_idle_timeout", c.ServerIdleTimeout},
		{"server_lifetime", c.ServerLifetime},
		{"client_idle_timeout", c.ClientIdleTimeout},
		{"stats_period", c.StatsPeriod},
	} {
		if t.d < 0 {
			p.addf(t.path, "must not be negative (0 disables it)")
		}
	}

	if len(c.Databases) == 0 {
		p.addf("databases", "at least one database is required")
	}
	for _, name := range sortedKeys(c.Databases) {
		c.validateDatabase(&p, name, c.Databases[name])
	}
	return p.err()
}

func (c *Config) validateUsers(p *Problems) {
	if len(c.Auth.Users) == 0 && c.Auth.Query == "" {
		p.addf("auth.users", "at least one user is required when auth.type is %s", c.Auth.Type)
		return
	}
	for _, name := range sortedKeys(c.Auth.Users) {
		path := joinPath("auth.users", name)
		if name == "" {
			p.addf(path, "a user name must not be empty")
			continue
		}
		var pw string
		if u := c.Auth.Users[name]; u != nil {
			pw = u.Password
		}
		// Say what kind of password it is, never what it is.
		switch {
		case pw == "":
			p.addf(path+".password", "required when auth.type is %s", c.Auth.Type)
		case c.Auth.Type == AuthSCRAM && isMD5Hash(pw):
			p.addf(path+".password", "an md5 hash cannot be used for scram-sha-256 authentication; give the plaintext password or a SCRAM-SHA-256 verifier")
		case c.Auth.Type == AuthMD5 && isSCRAMVerifier(pw):
			p.addf(path+".password", "a SCRAM-SHA-256 verifier cannot be used for md5 authentication; give the plaintext password or its md5 hash")
		}
	}
}

func (c *Config) validateDatabase(p *Problems, name string, db *Database) {
	path := joinPath("databases", name)
	switch name {
	case "":
		p.addf(path, "a database name must not be empty")
	case AdminDatabase:
		p.addf(path, "the name %s is reserved for the admin console", AdminDatabase)
	}
	if db == nil {
		db = &Database{}
	}
	if db.Host == "" {
		p.addf(path+".host", "required")
	}
	if db.Port < 1 || db.Port > 65535 {
		p.addf(path+".port", "must be from 1 to 65535")
	}
	if db.PoolSize < 1 || db.PoolSize > maxPoolSize {
		p.addf(path+".pool_size", "must be from 1 to %d", maxPoolSize)
	}
	if db.PoolMode != c.PoolMode { // an inherited bad value is reported once, at the top
		checkPoolMode(p, path+".pool_mode", db.PoolMode)
	}
	if db.MaxClientConn < 0 {
		p.addf(path+".max_client_conn", "must not be negative (0: no cap)")
	}
	if checkOneOf(p, path+".sslmode", db.SSLMode, "disable", "allow", "prefer", "require", "verify-ca", "verify-full") {
		switch {
		case db.SSLRootCert != "":
			checkReadable(p, path+".sslrootcert", db.SSLRootCert)
		case db.SSLMode == "verify-ca" || db.SSLMode == "verify-full":
			p.addf(path+".sslrootcert", "required with sslmode %s: the CA certificates (PEM) that sign the server's certificate", db.SSLMode)
		}
	}
}

// validateTLS checks the client TLS settings and that the certificate and
// key load.
func (c *Config) validateTLS(p *Problems) {
	if !checkOneOf(p, "tls.mode", c.TLS.Mode, TLSDisable, TLSAllow, TLSRequire) || c.TLS.Mode == TLSDisable {
		return
	}
	if c.TLS.CertFile == "" {
		p.addf("tls.cert_file", "required when tls.mode is %s", c.TLS.Mode)
	}
	if c.TLS.KeyFile == "" {
		p.addf("tls.key_file", "required when tls.mode is %s", c.TLS.Mode)
	}
	if c.TLS.CertFile != "" && c.TLS.KeyFile != "" {
		if _, err := tls.LoadX509KeyPair(c.TLS.CertFile, c.TLS.KeyFile); err != nil {
			p.addf("tls", "cannot load the certificate and key: %v", err)
		}
	}
}

// validateAuthQuery checks auth.query and the login that runs it.
func (c *Config) validateAuthQuery(p *Problems) {
	a := c.Auth
	if a.Query == "" {
		if a.QueryUser != "" || a.QueryPassword != "" {
			p.addf("auth.query", "required when auth.query_user or auth.query_password is set")
		}
		return
	}
	if a.Type == AuthTrust {
		p.addf("auth.query", "needs auth.type md5 or scram-sha-256: with trust no password is checked")
	}
	if a.QueryUser == "" {
		p.addf("auth.query_user", "required with auth.query: the user pgpoolx logs in as to run it")
	}
	if !strings.Contains(a.Query, "$1") {
		p.addf("auth.query", "must take the user name as $1")
	}
}

// checkReadable reports a file that cannot be read.
func checkReadable(p *Problems, path, file string) {
	if _, err := os.ReadFile(file); err != nil {
		p.addf(path, "cannot read %s: %v", file, errors.Unwrap(err))
	}
}

// Database returns the configured database a client asked for by name.
func (c *Config) Database(name string) (*Database, bool) {
	db, ok := c.Databases[name]
	return db, ok && db != nil
}

// checkHostPort checks a listen address: any host name or address will
// do, and an empty host means all interfaces.
func checkHostPort(p *Problems, path, v, form string) {
	if _, port, err := net.SplitHostPort(v); err != nil {
		p.addf(path, "%s", form)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		p.addf(path, "port must be a number from 0 to 65535 (0 picks a free port)")
	}
}

func checkPoolMode(p *Problems, path string, m PoolMode) {
	checkOneOf(p, path, string(m), string(PoolModeTransaction), string(PoolModeSession))
}

// checkOneOf records a problem unless v is one of allowed. A value that is
// not allowed is not repeated: it is a setting name, not a secret, but it
// may have come from the environment.
func checkOneOf(p *Problems, path, v string, allowed ...string) bool {
	if slices.Contains(allowed, v) {
		return true
	}
	p.addf(path, "must be one of %s", strings.Join(allowed, ", "))
	return false
}

// isMD5Hash reports whether pw is stored the way PostgreSQL stores md5
// passwords: "md5" and 32 hex digits.
func isMD5Hash(pw string) bool {
	if len(pw) != 35 || !strings.HasPrefix(pw, "md5") {
		return false
	}
	for _, c := range []byte(pw[3:]) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func isSCRAMVerifier(pw string) bool { return strings.HasPrefix(pw, "SCRAM-SHA-256$") }

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

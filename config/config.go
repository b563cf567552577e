// Package config holds pgpoolx's typed configuration: decoding from YAML,
// defaults in one place, and validation that reports every problem at once.
package config

import "time"

// PoolMode says how long a client keeps a server connection.
type PoolMode string

const (
	// PoolModeTransaction lends a server connection for one transaction
	// (or one extended-protocol batch up to Sync).
	PoolModeTransaction PoolMode = "transaction"
	// PoolModeSession lends a server connection for the client's whole life.
	PoolModeSession PoolMode = "session"
)

// Auth types a client may be asked to use.
const (
	AuthTrust = "trust"
	AuthMD5   = "md5"
	AuthSCRAM = "scram-sha-256"
)

// Config is the whole pgpoolx configuration file.
type Config struct {
	Listen string `yaml:"listen"`
	// AdminListen is the host:port of the HTTP endpoint for /metrics,
	// /healthz and /readyz ("": none).
	AdminListen string `yaml:"admin_listen"`
	// AdminUsers may use the admin console (database "pgpoolx").
	AdminUsers    []string `yaml:"admin_users"`
	PoolMode      PoolMode `yaml:"pool_mode"`
	MaxClientConn int      `yaml:"max_client_conn"`
	// MaxClientConnPerUser caps the clients of one user (0: no cap).
	MaxClientConnPerUser int `yaml:"max_client_conn_per_user"`
	// MaxMessageBytes is the largest message a client may send.
	MaxMessageBytes int     `yaml:"max_message_bytes"`
	TLS             TLS     `yaml:"tls"`
	Log             Log     `yaml:"log"`
	Auth            Auth    `yaml:"auth"`
	Pinning         Pinning `yaml:"pinning"`
	// PreparedStatements configures prepared statements in transaction mode.
	PreparedStatements PreparedStatements `yaml:"prepared_statements"`

	ConnectTimeout     Duration `yaml:"connect_timeout"`
	AcquireTimeout     Duration `yaml:"acquire_timeout"`
	ServerIdleTimeout  Duration `yaml:"server_idle_timeout"`
	ServerLifetime     Duration `yaml:"server_lifetime"`
	ClientIdleTimeout  Duration `yaml:"client_idle_timeout"`
	ClientLoginTimeout Duration `yaml:"client_login_timeout"`
	ShutdownTimeout    Duration `yaml:"shutdown_timeout"`
	// EventLoop runs plain TCP clients and server connections on an
	// epoll event loop (Linux) instead of a goroutine each; default true.
	EventLoop *bool `yaml:"event_loop"`
	// StatsPeriod is how often each pool's counters are logged (0: never).
	StatsPeriod Duration `yaml:"stats_period"`

	Databases map[string]*Database `yaml:"databases"`
}

// Log configures the structured logger.
type Log struct {
	Level  string `yaml:"level"`  // debug | info | warn | error
	Format string `yaml:"format"` // json | console
}

// TLS modes for client connections.
const (
	TLSDisable = "disable"
	TLSAllow   = "allow"
	TLSRequire = "require"
)

// TLS configures TLS for client connections.
type TLS struct {
	// Mode: disable (SSLRequest answered 'N'), allow (TLS if the client
	// asks), require (clients without TLS are refused).
	Mode     string `yaml:"mode"`
	CertFile string `yaml:"cert_file"` // PEM certificate chain
	KeyFile  string `yaml:"key_file"`  // PEM private key
}

// Auth configures how clients authenticate to pgpoolx.
type Auth struct {
	Type  string           `yaml:"type"`
	Users map[string]*User `yaml:"users"`
	// Query looks up the password (verifier) of a user not in Users, in
	// the database the client asked for: it takes the user name as $1 and
	// returns one row of (user name, password) like pg_shadow.
	Query string `yaml:"query"`
	// QueryUser and QueryPassword are how pgpoolx logs in to run Query.
	QueryUser     string `yaml:"query_user"`
	QueryPassword string `yaml:"query_password"`
}

// PreparedStatements bounds the statements pgpoolx keeps prepared.
type PreparedStatements struct {
	// CacheSize is how many statements each server connection keeps
	// prepared; the least recently used one beyond it is closed.
	CacheSize int `yaml:"cache_size"`
}

// Pinning configures how pgpoolx analyses statements for session state.
type Pinning struct {
	// MaxQueryBytes is the longest query text pgpoolx reads whole and
	// analyses; a longer one is passed through unread and the session
	// state is checked on the server after its transaction instead.
	MaxQueryBytes int `yaml:"max_query_bytes"`
	// RDSProxyReport logs, once per distinct statement digest, what AWS RDS
	// Proxy would pin the session for.
	RDSProxyReport bool `yaml:"rds_proxy_report"`
}

// User is one client credential.
type User struct {
	// Password is the plaintext password, an md5 hash ("md5" + hex) or a
	// SCRAM-SHA-256 verifier as PostgreSQL stores it in pg_authid.
	Password string `yaml:"password"`
}

// Database is one entry clients can connect to, and where it really lives.
type Database struct {
	Host      string   `yaml:"host"`
	Port      int      `yaml:"port"`
	DBName    string   `yaml:"dbname"`
	User      string   `yaml:"user"`
	Password  string   `yaml:"password"`
	PoolSize  int      `yaml:"pool_size"`
	PoolMode  PoolMode `yaml:"pool_mode"`
	InitQuery string   `yaml:"init_query"`
	// MaxClientConn caps the clients of this database (0: no cap).
	MaxClientConn int `yaml:"max_client_conn"`
	// SSLMode is libpq's sslmode for server connections: disable, allow,
	// prefer, require, verify-ca or verify-full.
	SSLMode string `yaml:"sslmode"`
	// SSLRootCert is the PEM file of the CA certificates that verify the
	// server (verify-ca, verify-full).
	SSLRootCert string `yaml:"sslrootcert"`
}

// Duration is a time.Duration written in YAML as a Go duration string
// ("5s", "250ms", "1h30m"); "0" disables the timeout where that is allowed.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// EventLoopOn reports whether event_loop is on (the default).
func (c *Config) EventLoopOn() bool { return c.EventLoop == nil || *c.EventLoop }

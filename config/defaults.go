package config

import "time"

// The defaults, in the one place they are applied. config.example.yaml
// repeats them for users; keep the two in step.
const (
	defaultListen             = "127.0.0.1:6432"
	defaultPoolMode           = PoolModeTransaction
	defaultMaxClientConn      = 10000
	defaultLogLevel           = "info"
	defaultLogFormat          = "json"
	defaultAuthType           = AuthTrust
	defaultConnectTimeout     = Duration(5 * time.Second)
	defaultAcquireTimeout     = Duration(30 * time.Second)
	defaultServerIdleTimeout  = Duration(10 * time.Minute)
	defaultServerLifetime     = Duration(time.Hour)
	defaultClientIdleTimeout  = Duration(0) // off
	defaultClientLoginTimeout = Duration(60 * time.Second)
	defaultShutdownTimeout    = Duration(30 * time.Second)
	defaultStatsPeriod        = Duration(time.Minute)
	defaultPort               = 5432
	defaultPoolSize           = 20
	defaultMaxQueryBytes      = 1 << 20 // 1 MiB
	defaultStatementCacheSize = 1000
	defaultMaxMessageBytes    = 1 << 30 // PostgreSQL's own limit
	defaultTLSMode            = TLSDisable
	defaultSSLMode            = "prefer"
)

// applyDefaults fills in what the file left out. Strings and numbers take
// their default when empty or zero. Durations take theirs only when the key
// was not written (present reports which key paths were), because for a
// duration 0 means something: "disabled" for server_idle_timeout,
// server_lifetime and client_idle_timeout, and a validation error for the
// timeouts that cannot be disabled, rather than a silent default.
func applyDefaults(c *Config, present func(path string) bool) {
	if c.Listen == "" {
		c.Listen = defaultListen
	}
	if c.PoolMode == "" {
		c.PoolMode = defaultPoolMode
	}
	if c.MaxClientConn == 0 {
		c.MaxClientConn = defaultMaxClientConn
	}
	if c.Log.Level == "" {
		c.Log.Level = defaultLogLevel
	}
	if c.Log.Format == "" {
		c.Log.Format = defaultLogFormat
	}
	if c.Auth.Type == "" {
		c.Auth.Type = defaultAuthType
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = defaultMaxMessageBytes
	}
	if c.EventLoop == nil {
		on := true
		c.EventLoop = &on
	}
	if c.TLS.Mode == "" {
		c.TLS.Mode = defaultTLSMode
	}
	if c.PreparedStatements.CacheSize == 0 {
		c.PreparedStatements.CacheSize = defaultStatementCacheSize
	}
	if c.Pinning.MaxQueryBytes == 0 {
		c.Pinning.MaxQueryBytes = defaultMaxQueryBytes
	}
	// Pinning.RDSProxyReport defaults to false, its zero value.

	durations := []struct {
		path string
		d    *Duration
		def  Duration
	}{
		{"connect_timeout", &c.ConnectTimeout, defaultConnectTimeout},
		{"acquire_timeout", &c.AcquireTimeout, defaultAcquireTimeout},
		{"server_idle_timeout", &c.ServerIdleTimeout, defaultServerIdleTimeout},
		{"server_lifetime", &c.ServerLifetime, defaultServerLifetime},
		{"client_idle_timeout", &c.ClientIdleTimeout, defaultClientIdleTimeout},
		{"client_login_timeout", &c.ClientLoginTimeout, defaultClientLoginTimeout},
		{"shutdown_timeout", &c.ShutdownTimeout, defaultShutdownTimeout},
		{"stats_period", &c.StatsPeriod, defaultStatsPeriod},
	}
	for _, d := range durations {
		if *d.d == 0 && !present(d.path) {
			*d.d = d.def
		}
	}

	for name, db := range c.Databases {
		if db == nil {
			continue // Validate reports it
		}
		if db.Port == 0 {
			db.Port = defaultPort
		}
		if db.DBName == "" {
			db.DBName = name
		}
		if db.PoolSize == 0 {
			db.PoolSize = defaultPoolSize
		}
		if db.PoolMode == "" {
			db.PoolMode = c.PoolMode
		}
		if db.SSLMode == "" {
			db.SSLMode = defaultSSLMode
		}
	}
}

package config

import (
	"strconv"
	"strings"
	"time"
)

// Setting is one top-level configuration value as the admin console's
// SHOW CONFIG lists it. Databases and users are listed elsewhere, and no
// password ever appears here.
type Setting struct {
	Key, Value, Default string
	// Changeable: a reload applies a new value without a restart.
	Changeable bool
}

// Settings lists c's top-level settings, by key.
func (c *Config) Settings() []Setting {
	dur := func(d Duration) string { return time.Duration(d).String() }
	return []Setting{
		{"acquire_timeout", dur(c.AcquireTimeout), dur(defaultAcquireTimeout), true},
		{"admin_listen", c.AdminListen, "", false},
		{"admin_users", strings.Join(c.AdminUsers, ","), "", true},
		{"auth.query", c.Auth.Query, "", true},
		{"auth.query_user", c.Auth.QueryUser, "", true},
		{"auth.type", c.Auth.Type, defaultAuthType, true},
		{"client_idle_timeout", dur(c.ClientIdleTimeout), dur(defaultClientIdleTimeout), true},
		{"client_login_timeout", dur(c.ClientLoginTimeout), dur(defaultClientLoginTimeout), true},
		{"connect_timeout", dur(c.ConnectTimeout), dur(defaultConnectTimeout), true},
		{"event_loop", strconv.FormatBool(c.EventLoopOn()), "true", true},
		{"listen", c.Listen, defaultListen, false},
		{"log.format", c.Log.Format, defaultLogFormat, false},
		{"log.level", c.Log.Level, defaultLogLevel, true},
		{"max_client_conn", strconv.Itoa(c.MaxClientConn), strconv.Itoa(defaultMaxClientConn), true},
		{"max_client_conn_per_user", strconv.Itoa(c.MaxClientConnPerUser), "0", true},
		{"max_message_bytes", strconv.Itoa(c.MaxMessageBytes), strconv.Itoa(defaultMaxMessageBytes), true},
		{"pinning.max_query_bytes", strconv.Itoa(c.Pinning.MaxQueryBytes), strconv.Itoa(defaultMaxQueryBytes), true},
		{"pinning.rds_proxy_report", strconv.FormatBool(c.Pinning.RDSProxyReport), "false", true},
		{"pool_mode", string(c.PoolMode), string(defaultPoolMode), true},
		{"prepared_statements.cache_size", strconv.Itoa(c.PreparedStatements.CacheSize), strconv.Itoa(defaultStatementCacheSize), true},
		{"server_idle_timeout", dur(c.ServerIdleTimeout), dur(defaultServerIdleTimeout), true},
		{"server_lifetime", dur(c.ServerLifetime), dur(defaultServerLifetime), true},
		{"shutdown_timeout", dur(c.ShutdownTimeout), dur(defaultShutdownTimeout), true},
		{"stats_period", dur(c.StatsPeriod), dur(defaultStatsPeriod), false},
		{"tls.cert_file", c.TLS.CertFile, "", true},
		{"tls.key_file", c.TLS.KeyFile, "", true},
		{"tls.mode", c.TLS.Mode, defaultTLSMode, true},
	}
}

package proxy

import (
	"errors"
	"slices"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/pgpoolx/pgpoolx/config"
)

// Reload re-reads the configuration file and applies it (RELOAD, SIGHUP).
// A file with errors changes nothing: the errors are logged and returned.
func (s *Server) Reload() error {
	if s.opts.ConfigFile == "" {
		return errors.New("pgpoolx was started without a configuration file to reload")
	}
	cfg, err := config.Load(s.opts.ConfigFile)
	if err != nil {
		s.log.Error("configuration reload rejected; the running configuration stays", zap.String("file", s.opts.ConfigFile), zap.Error(err))
		return err
	}
	return s.Apply(cfg)
}

// Apply puts a new, valid configuration in force without dropping
// clients. Pool sizes, timeouts and limits apply at once. Server
// connections opened under a changed server address, user, password or
// init query are closed once idle, and new ones get the new values.
// Clients of a removed database are closed once idle. Settings that need
// a restart (listen, admin_listen, log.format, stats_period) are logged and
// left as they are.
func (s *Server) Apply(cfg *config.Config) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	st, err := newSettings(cfg)
	if err != nil {
		s.log.Error("configuration reload rejected; the running configuration stays", zap.Error(err))
		return err
	}
	old := s.config()
	var level zapcore.Level
	if err := level.Set(cfg.Log.Level); err != nil {
		return err // Validate already checked it
	}
	for _, r := range []struct {
		key      string
		old, new string
	}{
		{"listen", old.Listen, cfg.Listen},
		{"admin_listen", old.AdminListen, cfg.AdminListen},
		{"log.format", old.Log.Format, cfg.Log.Format},
		{"stats_period", old.StatsPeriod.D().String(), cfg.StatsPeriod.D().String()},
	} {
		if r.old != r.new {
			s.log.Warn("setting changed in the file needs a restart to apply", zap.String("key", r.key),
				zap.String("running", r.old), zap.String("file", r.new))
		}
	}
	s.settings.Store(st)
	if s.opts.Level != nil {
		s.opts.Level.SetLevel(level)
	}

	var added, removed, changed []string
	for name := range cfg.Databases {
		if _, ok := old.Databases[name]; !ok {
			added = append(added, name)
		} else if *old.Databases[name] != *cfg.Databases[name] {
			changed = append(changed, name)
		}
	}
	for name := range old.Databases {
		if _, ok := cfg.Databases[name]; !ok {
			removed = append(removed, name)
		}
	}
	s.mu.Lock()
	for key, p := range s.pools {
		dbc, ok := cfg.Database(key.db)
		if !ok {
			delete(s.pools, key)
			p.Close()
			continue
		}
		p.SetOptions(poolOptions(cfg, dbc, key.user))
	}
	for db, p := range s.lookups {
		if _, ok := cfg.Database(db); !ok || cfg.Auth.Query == "" {
			delete(s.lookups, db)
			p.Close()
		}
	}
	for db := range s.paused {
		if _, ok := cfg.Database(db); db != "" && !ok {
			delete(s.paused, db)
		}
	}
	s.mu.Unlock()
	for _, db := range removed {
		for _, c := range s.allClients(db) {
			c.stopWhenIdle(fatalf(codeInvalidCatalogName, "database %q was removed from pgpoolx's configuration", db))
		}
	}
	slices.Sort(added)
	slices.Sort(removed)
	slices.Sort(changed)
	s.log.Info("configuration reloaded", zap.Strings("databases_added", added),
		zap.Strings("databases_removed", removed), zap.Strings("databases_changed", changed),
		zap.String("log_level", cfg.Log.Level))
	return nil
}

package proxy

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"go.uber.org/zap"

	"github.com/pgpoolx/pgpoolx/admin"
	"github.com/pgpoolx/pgpoolx/config"
	"github.com/pgpoolx/pgpoolx/stats"
	"github.com/pgpoolx/pgpoolx/wire"
)

// The Server is the admin console's backend (admin.Backend) and the
// source of /metrics.

// startAdmin finishes the startup of an admin console session: only
// admin_users may open one.
func (c *client) startAdmin() error {
	if !c.srv.settings.Load().admins[c.user] {
		c.log.Warn("admin console refused", zap.String("client_addr", c.netConn.RemoteAddr().String()))
		return fatalf(codeInvalidAuthSpec, "user %q is not allowed to use the admin console (see admin_users)", c.user)
	}
	c.admin = true
	c.queue(&pgproto3.AuthenticationOk{})
	for _, p := range [][2]string{
		{"server_version", "15.0 (pgpoolx " + c.srv.Version() + ")"},
		{"server_encoding", "UTF8"},
		{"client_encoding", "UTF8"},
		{"DateStyle", "ISO, MDY"},
		{"integer_datetimes", "on"},
		{"standard_conforming_strings", "on"},
		{"application_name", c.appName},
	} {
		c.scratch = wire.AppendParameterStatus(c.scratch[:0], p[0], p[1])
		c.out().Write(c.scratch)
	}
	var key [8]byte
	binary.BigEndian.PutUint32(key[:4], uint32(c.id)&0x7fffffff)
	c.queue(&pgproto3.BackendKeyData{ProcessID: binary.BigEndian.Uint32(key[:4]), SecretKey: key[4:]})
	c.queue(&pgproto3.ReadyForQuery{TxStatus: wire.TxIdle})
	c.log.Info("admin console session opened", zap.String("client_addr", c.netConn.RemoteAddr().String()))
	return c.out().Flush()
}

// Version is pgpoolx's version.
func (s *Server) Version() string {
	if s.opts.Version == "" {
		return "dev"
	}
	return s.opts.Version
}

// Pools returns the state of every pool.
func (s *Server) Pools() []stats.Pool { return s.poolSnapshots() }

// Clients returns every client connection.
func (s *Server) Clients() []stats.Client { return s.clientSnapshots() }

// Servers returns every server connection.
func (s *Server) Servers() []stats.Server { return s.serverSnapshots() }

// Databases returns the configured databases.
func (s *Server) Databases() []stats.Database { return s.databaseSnapshots() }

// Config returns the configuration in force.
func (s *Server) Config() []config.Setting { return s.config().Settings() }

// DatabaseStats returns each database's traffic totals and averages.
func (s *Server) DatabaseStats() []stats.DatabaseStats {
	totals := s.totalsByDatabase()
	s.mu.Lock()
	rates := s.rates
	s.mu.Unlock()
	var out []stats.DatabaseStats
	for _, name := range slices.Sorted(maps.Keys(s.config().Databases)) {
		out = append(out, stats.DatabaseStats{Database: name, Totals: totals[name], Rates: rates[name]})
	}
	return out
}

// checkDatabase returns an error unless db is "" (all) or configured.
func (s *Server) checkDatabase(db string) error {
	if _, ok := s.config().Database(db); db != "" && !ok {
		return admin.UnknownDatabase(db)
	}
	return nil
}

// Pause holds new transactions of db ("" for all databases), waits for
// the running ones to finish, then closes the idle server connections, so
// that PostgreSQL can be restarted or failed over under pgpoolx. Pinned
// and session-mode clients between transactions keep their server
// connection (and lose it if the server goes away).
func (s *Server) Pause(ctx context.Context, db string) error {
	if err := s.checkDatabase(db); err != nil {
		return err
	}
	s.mu.Lock()
	s.paused[db] = true
	s.mu.Unlock()
	for _, p := range s.allPools(db) {
		p.Pause()
	}
	s.log.Info("pausing", zap.String("db", db))
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for !s.settled(db) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	closed := 0
	for _, p := range s.allPools(db) {
		closed += p.CloseAllIdle()
	}
	s.log.Info("paused", zap.String("db", db), zap.Int("server_conns_closed", closed))
	return nil
}

// settled reports whether every server connection of db's pools is idle
// in its pool or held by a client between transactions (pinned, or in
// session mode): no client is inside a transaction or request, and none
// is between taking a connection and using it, or between finishing and
// giving it back.
func (s *Server) settled(db string) bool {
	held := map[*serverPool]int{}
	for _, c := range s.allClients(db) {
		c.mu.Lock()
		att, idle := c.att, c.track.Idle()
		c.mu.Unlock()
		if att != nil && !idle {
			return false
		}
		if att != nil {
			held[c.pool]++
		}
	}
	for _, p := range s.allPools(db) {
		if p.InUse() > held[p] {
			return false
		}
	}
	return true
}

// Resume ends PAUSE or KILL of db ("" for all databases).
func (s *Server) Resume(db string) error {
	if err := s.checkDatabase(db); err != nil {
		return err
	}
	s.mu.Lock()
	was := s.paused[db]
	if db == "" {
		was = len(s.paused) > 0
		clear(s.paused)
	}
	delete(s.paused, db)
	stillAll := s.paused[""]
	s.mu.Unlock()
	if !was {
		return admin.StateError("%s is not paused", describeDB(db))
	}
	if !stillAll {
		for _, p := range s.allPools(db) {
			p.Resume()
		}
	}
	s.log.Info("resumed", zap.String("db", db))
	return nil
}

func describeDB(db string) string {
	if db == "" {
		return "pgpoolx"
	}
	return fmt.Sprintf("database %q", db)
}

// Kill disconnects every client of db and closes its server connections;
// db stays paused until RESUME.
func (s *Server) Kill(db string) error {
	if err := s.checkDatabase(db); err != nil {
		return err
	}
	s.mu.Lock()
	s.paused[db] = true
	s.mu.Unlock()
	pools := s.allPools(db)
	for _, p := range pools {
		p.Pause()
		p.Reconnect() // what clients still hold is closed when released
	}
	clients := s.allClients(db)
	for _, c := range clients {
		c.sendFatal(fatalf(codeAdminShutdown, "terminating connection due to administrator command (KILL %s)", db))
		c.netConn.Close()
	}
	s.log.Info("killed", zap.String("db", db), zap.Int("clients", len(clients)))
	return nil
}

// Reconnect replaces db's server connections ("" for all) as each
// becomes idle.
func (s *Server) Reconnect(db string) error {
	if err := s.checkDatabase(db); err != nil {
		return err
	}
	for _, p := range s.allPools(db) {
		p.Reconnect()
	}
	s.log.Info("reconnecting server connections", zap.String("db", db))
	return nil
}

// Shutdown starts a graceful shutdown, as SIGTERM does.
func (s *Server) Shutdown() {
	s.shutdownOnce.Do(func() { close(s.shutdownReq) })
}

// Ready returns nil when every configured database accepts TCP
// connections and none of its pools is backing off after a failure to
// open a server connection (a wrong password, a failing init query).
func (s *Server) Ready(ctx context.Context) error {
	cfg := s.config()
	names := slices.Sorted(maps.Keys(cfg.Databases))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		dbc := cfg.Databases[name]
		wg.Go(func() {
			dctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout.D())
			defer cancel()
			var d net.Dialer
			nc, err := d.DialContext(dctx, "tcp", net.JoinHostPort(dbc.Host, strconv.Itoa(dbc.Port)))
			if err != nil {
				errs[i] = fmt.Errorf("database %q: %w", name, err)
				return
			}
			nc.Close()
		})
	}
	wg.Wait()
	for _, p := range s.allPools("") {
		if err := p.DialFailure(); err != nil {
			errs = append(errs, fmt.Errorf("database %q, user %q: %w", p.key.db, p.key.user, err))
		}
	}
	return errors.Join(errs...)
}

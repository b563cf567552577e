package proxy

import (
	"context"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/pgpoolx/pgpoolx/config"
	"github.com/pgpoolx/pgpoolx/pgdial"
	"github.com/pgpoolx/pgpoolx/pool"
	"github.com/pgpoolx/pgpoolx/stats"
)

type poolKey struct{ db, user string }

// serverPool is a pool of server connections for one (database, server
// user) pair and the traffic counters of the clients it serves.
type serverPool struct {
	*pool.Pool
	key   poolKey
	stats stats.Counters

	// settings interns the clients' session settings: clients with the
	// same settings share one map, so a server connection left with them
	// is recognised by identity (session.SyncSQL) at each hand-over.
	settingsMu sync.Mutex
	settings   map[string]map[string]string

	// offLoop is set once a server connection of the pool could not go
	// to the event loop: its clients stay on goroutines, rather than
	// leave the loop at every transaction.
	offLoop atomic.Bool
}

// maxInterned bounds the distinct settings a pool interns.
const maxInterned = 10000

// intern returns the pool's map equal to m, adopting m if it has none.
// Maps of settings are replaced, never modified, so sharing them is safe.
func (p *serverPool) intern(m map[string]string) map[string]string {
	keys := slices.Sorted(maps.Keys(m))
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte(0)
		b.WriteString(m[k])
		b.WriteByte(0)
	}
	key := b.String()
	p.settingsMu.Lock()
	defer p.settingsMu.Unlock()
	if got, ok := p.settings[key]; ok {
		return got
	}
	if p.settings == nil {
		p.settings = map[string]map[string]string{}
	}
	if len(p.settings) < maxInterned {
		p.settings[key] = m
	}
	return m
}

// poolFor returns the pool of server connections for a client of database
// db (its client-facing name) logged in as user.
func (s *Server) poolFor(db string, dbc *config.Database, user string, creds *pgdial.Credentials) *serverPool {
	serverUser := dbc.User
	if serverUser == "" {
		serverUser = user
	}
	key := poolKey{db, serverUser}
	// Credentials learned at a client's login serve a pool that logs in
	// as that client's user with no password configured.
	useCreds := creds != nil && dbc.User == "" && dbc.Password == ""
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.pools[key]; ok {
		if useCreds {
			p.SetCredentials(creds)
		}
		return p
	}
	p := &serverPool{
		key:  key,
		Pool: pool.New(poolOptions(s.config(), dbc, serverUser), s.log.Named("pool").With(zap.String("db", db), zap.String("user", serverUser))),
	}
	p.Adopt = func(nc net.Conn) net.Conn {
		lc := s.adopt(nc)
		if lc == nil && s.eventLoop() != nil {
			p.offLoop.Store(true)
		}
		return lc
	}
	if s.paused[db] || s.paused[""] {
		p.Pause()
	}
	if useCreds {
		p.SetCredentials(creds)
	}
	s.pools[key] = p
	return p
}

// poolOptions are the options of the pool of database dbc for serverUser.
func poolOptions(cfg *config.Config, dbc *config.Database, serverUser string) pool.Options {
	return pool.Options{
		Host:           dbc.Host,
		Port:           dbc.Port,
		DBName:         dbc.DBName,
		User:           serverUser,
		Password:       dbc.Password,
		SSLMode:        dbc.SSLMode,
		SSLRootCert:    dbc.SSLRootCert,
		Size:           dbc.PoolSize,
		InitQuery:      dbc.InitQuery,
		ConnectTimeout: cfg.ConnectTimeout.D(),
		AcquireTimeout: cfg.AcquireTimeout.D(),
		IdleTimeout:    cfg.ServerIdleTimeout.D(),
		Lifetime:       cfg.ServerLifetime.D(),

		StatementCacheSize: cfg.PreparedStatements.CacheSize,
	}
}

// allPools returns the pools, optionally only those of database db.
func (s *Server) allPools(db string) []*serverPool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return valuesWhere(s.pools, func(p *serverPool) bool { return db == "" || p.key.db == db })
}

// allClients returns the registered clients, optionally only those of
// database db.
func (s *Server) allClients(db string) []*client {
	s.mu.Lock()
	defer s.mu.Unlock()
	return valuesWhere(s.clients, func(c *client) bool { return db == "" || c.db == db })
}

// valuesWhere returns the values of m that keep accepts (all, if keep is
// nil), for use after the lock guarding m is let go.
func valuesWhere[K comparable, V any](m map[K]V, keep func(V) bool) []V {
	out := make([]V, 0, len(m))
	for _, v := range m {
		if keep == nil || keep(v) {
			out = append(out, v)
		}
	}
	return out
}

func (s *Server) reapIdleServers(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.sweepLoopClients(now)
			for _, p := range s.allPools("") {
				p.CloseIdle(now)
			}
			s.mu.Lock()
			lookups := valuesWhere(s.lookups, nil)
			s.mu.Unlock()
			for _, p := range lookups {
				p.CloseIdle(now)
			}
		}
	}
}

// ratePeriod is the period over which SHOW STATS averages.
const ratePeriod = 15 * time.Second

// computeRates keeps each database's per-second averages over the last
// ratePeriod, for SHOW STATS.
func (s *Server) computeRates(ctx context.Context) {
	t := time.NewTicker(ratePeriod)
	defer t.Stop()
	prev, prevAt := s.totalsByDatabase(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			cur := s.totalsByDatabase()
			rates := map[string]stats.Rates{}
			for db, t := range cur {
				rates[db] = stats.RatesBetween(prev[db], t, now.Sub(prevAt))
			}
			s.mu.Lock()
			s.rates = rates
			s.mu.Unlock()
			prev, prevAt = cur, now
		}
	}
}

// totalsByDatabase sums the counters of each database's pools.
func (s *Server) totalsByDatabase() map[string]stats.Totals {
	totals := map[string]stats.Totals{}
	for _, p := range s.allPools("") {
		totals[p.key.db] = totals[p.key.db].Add(p.stats.Snapshot())
	}
	return totals
}

// logStatsEvery logs each pool's counters every period until ctx ends.
func (s *Server) logStatsEvery(ctx context.Context, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.logStats()
		}
	}
}

// logStats logs one "pool stats" line per pool: its server connections,
// the clients waiting for one, and the prepared statements pgpoolx keeps
// on servers and for clients (both bounded, and here visible).
func (s *Server) logStats() {
	for _, ps := range s.poolSnapshots() {
		s.log.Info("pool stats",
			zap.String("db", ps.Database),
			zap.String("user", ps.User),
			zap.Int("clients", ps.ClientsActive+ps.ClientsWaiting+ps.ClientsIdle),
			zap.Int("clients_pinned", ps.ClientsPinned),
			zap.Int("clients_waiting", ps.ClientsWaiting),
			zap.Int("server_conns", ps.ServersActive+ps.ServersIdle+ps.ServersLogin),
			zap.Int("server_conns_idle", ps.ServersIdle),
			zap.Int("server_prepared_statements", ps.PreparedStatements),
			zap.Int("client_prepared_statements", ps.ClientPreparedStatements),
			zap.Uint64("transactions", ps.Totals.Xacts))
	}
}

package proxy

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/pgpoolx/pgpoolx/auth"
	"github.com/pgpoolx/pgpoolx/config"
	"github.com/pgpoolx/pgpoolx/pinning"
	"github.com/pgpoolx/pgpoolx/pool"
)

type poolKey struct{ db, user string }

// Server accepts client connections and serves them from its pools.
type Server struct {
	cfg *config.Config
	log *zap.Logger

	// unnamedTokens numbers the clients' unnamed statements, so a server
	// connection can tell whose unnamed statement it holds.
	unnamedTokens atomic.Uint64

	secrets map[string]auth.Secret // client credentials by user name

	mu       sync.Mutex
	rdsSeen  map[string]struct{} // digests already reported as RDS Proxy pins
	pools    map[poolKey]*pool.Pool
	clients  map[uint32]*client // by the process id pgpoolx issued
	nextID   uint64
	stopping bool
	wg       sync.WaitGroup // one per client goroutine
}

// NewServer returns a server for cfg, which must be valid.
func NewServer(cfg *config.Config, log *zap.Logger) (*Server, error) {
	secrets := map[string]auth.Secret{}
	for name, u := range cfg.Auth.Users {
		s, err := auth.ParseSecret(name, u.Password)
		if err != nil {
			return nil, fmt.Errorf("auth.users.%s.password: %w", name, err)
		}
		secrets[name] = s
	}
	return &Server{
		cfg:     cfg,
		log:     log,
		secrets: secrets,
		pools:   map[poolKey]*pool.Pool{},
		clients: map[uint32]*client{},
	}, nil
}

// Serve accepts clients on ln until ctx is cancelled, then shuts down
// gracefully: no new clients, idle clients are told and closed, clients in
// a transaction may finish it within shutdown_timeout, then everything is
// closed. It returns after every client and server connection is closed.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	// Client sessions outlive ctx by up to shutdown_timeout.
	sessCtx, cancelSessions := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSessions()

	go s.reapIdleServers(sessCtx)
	if d := s.cfg.StatsPeriod.D(); d > 0 {
		go s.logStatsEvery(sessCtx, d)
	}

	acceptDone := make(chan error, 1)
	go func() { acceptDone <- s.acceptLoop(sessCtx, ln) }()

	var err error
	select {
	case <-ctx.Done():
	case err = <-acceptDone:
	}
	ln.Close()
	s.shutdown(cancelSessions)
	return err
}

func (s *Server) acceptLoop(ctx context.Context, ln net.Listener) error {
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscallEMFILE) {
				// Out of file descriptors, say: back off instead of spinning.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed", zap.Error(err), zap.Duration("retry_in", delay))
				time.Sleep(delay)
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		delay = 0
		if tc, ok := nc.(*net.TCPConn); ok {
			tc.SetNoDelay(true)
			tc.SetKeepAlive(true)
		}
		s.mu.Lock()
		if s.stopping {
			s.mu.Unlock()
			nc.Close()
			continue
		}
		s.nextID++
		c := newClient(s, nc, s.nextID)
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			c.serve(ctx)
		}()
	}
}

// register gives c a process id and secret for BackendKeyData, within
// 1..2^31-1 because clients pass it to pg_terminate_backend(int4).
// It refuses the client when max_client_conn are already registered.
func (s *Server) register(c *client) error {
	var b [8]byte
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return fatalf(codeAdminShutdown, "pgpoolx is shutting down")
	}
	if len(s.clients) >= s.cfg.MaxClientConn {
		return fatalf(codeTooManyConnections, "sorry, too many clients already (max_client_conn is %d)", s.cfg.MaxClientConn)
	}
	for {
		rand.Read(b[:])
		pid := binary.BigEndian.Uint32(b[:4]) & 0x7fffffff
		if pid == 0 || s.clients[pid] != nil {
			continue
		}
		c.keyPID, c.keySec = pid, binary.BigEndian.Uint32(b[4:])
		s.clients[pid] = c
		return nil
	}
}

func (s *Server) unregister(c *client) {
	s.mu.Lock()
	if s.clients[c.keyPID] == c {
		delete(s.clients, c.keyPID)
	}
	s.mu.Unlock()
}

func (s *Server) lookup(pid uint32) *client {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.clients[pid]
}

// maxRDSDigests bounds the digests remembered for the RDS Proxy report.
const maxRDSDigests = 10000

// reportRDSProxy logs, once per digest, that AWS RDS Proxy would pin a
// session running this statement.
func (s *Server) reportRDSProxy(log *zap.Logger, digest string, r pinning.Reason, initQuery string) {
	s.mu.Lock()
	_, seen := s.rdsSeen[digest]
	if !seen && len(s.rdsSeen) < maxRDSDigests {
		if s.rdsSeen == nil {
			s.rdsSeen = map[string]struct{}{}
		}
		s.rdsSeen[digest] = struct{}{}
	}
	s.mu.Unlock()
	if !seen {
		fields := []zap.Field{
			zap.String("reason", r.Code),
			zap.String("detail", r.Detail),
			zap.String("digest", digest),
			zap.String("hint", r.Hint),
		}
		if initQuery != "" {
			fields = append(fields, zap.String("init_query", initQuery))
		}
		log.Info("would pin on rds proxy", fields...)
	}
}

// poolFor returns the pool of server connections for a client of database
// db (its client-facing name) logged in as user.
func (s *Server) poolFor(db string, dbc *config.Database, user string) *pool.Pool {
	serverUser := dbc.User
	if serverUser == "" {
		serverUser = user
	}
	key := poolKey{db, serverUser}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.pools[key]; ok {
		return p
	}
	p := pool.New(pool.Options{
		Host:           dbc.Host,
		Port:           dbc.Port,
		DBName:         dbc.DBName,
		User:           serverUser,
		Password:       dbc.Password,
		Size:           dbc.PoolSize,
		InitQuery:      dbc.InitQuery,
		ConnectTimeout: s.cfg.ConnectTimeout.D(),
		AcquireTimeout: s.cfg.AcquireTimeout.D(),
		IdleTimeout:    s.cfg.ServerIdleTimeout.D(),
		Lifetime:       s.cfg.ServerLifetime.D(),

		StatementCacheSize: s.cfg.PreparedStatements.CacheSize,
	}, s.log.Named("pool").With(zap.String("db", db), zap.String("user", serverUser)))
	s.pools[key] = p
	return p
}

func (s *Server) reapIdleServers(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.mu.Lock()
			pools := make([]*pool.Pool, 0, len(s.pools))
			for _, p := range s.pools {
				pools = append(pools, p)
			}
			s.mu.Unlock()
			for _, p := range pools {
				p.CloseIdle(now)
			}
		}
	}
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

// clientStat sums what the clients of one pool hold.
type clientStat struct{ clients, pinned, statements int }

// logStats logs one "pool stats" line per pool: its server connections,
// the clients waiting for one, and the prepared statements pgpoolx keeps
// on servers and for clients (both bounded, and here visible).
func (s *Server) logStats() {
	s.mu.Lock()
	clients := make([]*client, 0, len(s.clients))
	for _, c := range s.clients {
		clients = append(clients, c)
	}
	pools := make(map[poolKey]*pool.Pool, len(s.pools))
	for k, p := range s.pools {
		pools[k] = p
	}
	s.mu.Unlock()
	byPool := map[*pool.Pool]clientStat{}
	for _, c := range clients {
		c.mu.Lock()
		cs := byPool[c.pool]
		cs.clients++
		if c.pin != "" {
			cs.pinned++
		}
		cs.statements += len(c.stmts)
		byPool[c.pool] = cs
		c.mu.Unlock()
	}
	for k, p := range pools {
		st, cs := p.Stat(), byPool[p]
		s.log.Info("pool stats",
			zap.String("db", k.db),
			zap.String("user", k.user),
			zap.Int("clients", cs.clients),
			zap.Int("clients_pinned", cs.pinned),
			zap.Int("clients_waiting", st.Waiting),
			zap.Int("server_conns", st.Total),
			zap.Int("server_conns_idle", st.Idle),
			zap.Int("server_prepared_statements", st.PreparedStatements),
			zap.Int("client_prepared_statements", cs.statements))
	}
}

// shutdown closes idle clients now, gives the others shutdown_timeout to
// finish their transactions, then closes everything.
func (s *Server) shutdown(cancelSessions context.CancelFunc) {
	s.mu.Lock()
	s.stopping = true
	clients := make([]*client, 0, len(s.clients))
	for _, c := range s.clients {
		clients = append(clients, c)
	}
	s.mu.Unlock()
	s.log.Info("shutting down", zap.Int("clients", len(clients)))
	for _, c := range clients {
		c.stopWhenIdle()
	}

	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	timer := time.NewTimer(s.cfg.ShutdownTimeout.D())
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		s.mu.Lock()
		left := len(s.clients)
		s.mu.Unlock()
		s.log.Warn("shutdown timeout: closing clients still in a transaction", zap.Int("clients", left))
		s.mu.Lock()
		clients = clients[:0]
		for _, c := range s.clients {
			clients = append(clients, c)
		}
		s.mu.Unlock()
		for _, c := range clients {
			c.terminateIfBetweenMessages()
		}
		cancelSessions() // every client's socket closes with its context
		<-done
	}
	s.mu.Lock()
	for _, p := range s.pools {
		p.Close()
	}
	s.mu.Unlock()
}

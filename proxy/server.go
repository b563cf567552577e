package proxy

import (
	"context"
	"crypto/rand"
	"crypto/tls"
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
	"github.com/pgpoolx/pgpoolx/stats"
)

// Server accepts client connections and serves them from its pools.
type Server struct {
	log *zap.Logger
	// settings is the configuration in force and what is derived from it;
	// a reload swaps it whole.
	settings atomic.Pointer[settings]
	opts     Options
	started  time.Time

	// unnamedTokens numbers the clients' unnamed statements, so a server
	// connection can tell whose unnamed statement it holds.
	unnamedTokens atomic.Uint64

	// shutdownReq is closed by the admin console's SHUTDOWN.
	shutdownReq  chan struct{}
	shutdownOnce sync.Once
	reloadMu     sync.Mutex // one reload at a time

	mu       sync.Mutex
	rdsSeen  map[string]struct{} // digests already reported as RDS Proxy pins
	pools    map[poolKey]*serverPool
	clients  map[uint32]*client    // by the process id pgpoolx issued
	perUser  map[string]int        // registered clients by user
	perDB    map[string]int        // registered clients by database
	consoles map[*client]struct{}  // admin console sessions
	lookups  map[string]*pool.Pool // auth.query connections by database
	paused   map[string]bool       // databases paused by PAUSE or KILL ("" = all)
	rates    map[string]stats.Rates
	nextID   uint64
	stopping bool
	wg       sync.WaitGroup // one per client, from accept to its end
}

// Options are what a Server needs besides its configuration.
type Options struct {
	// ConfigFile is re-read by RELOAD (and SIGHUP, through Reload).
	ConfigFile string
	// Level is the logger's level, which a reload changes.
	Level *zap.AtomicLevel
	// Version is pgpoolx's version, shown by the admin console.
	Version string
}

// settings is one configuration and what is parsed from it.
type settings struct {
	cfg     *config.Config
	secrets map[string]auth.Secret // client credentials by user name
	admins  map[string]bool
	tls     *tls.Config // for clients; nil when tls.mode is disable
}

func newSettings(cfg *config.Config) (*settings, error) {
	st := &settings{cfg: cfg, secrets: map[string]auth.Secret{}, admins: map[string]bool{}}
	if cfg.TLS.Mode != config.TLSDisable {
		cert, err := tls.LoadX509KeyPair(cfg.TLS.CertFile, cfg.TLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		st.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	for name, u := range cfg.Auth.Users {
		s, err := auth.ParseSecret(name, u.Password)
		if err != nil {
			return nil, fmt.Errorf("auth.users.%s.password: %w", name, err)
		}
		st.secrets[name] = s
	}
	for _, u := range cfg.AdminUsers {
		st.admins[u] = true
	}
	return st, nil
}

// NewServer returns a server for cfg, which must be valid.
func NewServer(cfg *config.Config, log *zap.Logger, opts ...Options) (*Server, error) {
	st, err := newSettings(cfg)
	if err != nil {
		return nil, err
	}
	s := &Server{
		log:         log,
		started:     time.Now(),
		shutdownReq: make(chan struct{}),
		pools:       map[poolKey]*serverPool{},
		clients:     map[uint32]*client{},
		perUser:     map[string]int{},
		perDB:       map[string]int{},
		consoles:    map[*client]struct{}{},
		lookups:     map[string]*pool.Pool{},
		paused:      map[string]bool{},
	}
	if len(opts) > 0 {
		s.opts = opts[0]
	}
	s.settings.Store(st)
	return s, nil
}

// config returns the configuration in force.
func (s *Server) config() *config.Config { return s.settings.Load().cfg }

// secret returns the credential of a client user, if configured.
func (s *Server) secret(user string) (auth.Secret, bool) {
	sec, ok := s.settings.Load().secrets[user]
	return sec, ok
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
	go s.computeRates(sessCtx)
	if d := s.config().StatsPeriod.D(); d > 0 {
		go s.logStatsEvery(sessCtx, d)
	}

	acceptDone := make(chan error, 1)
	go func() { acceptDone <- s.acceptLoop(sessCtx, ln) }()

	var err error
	select {
	case <-ctx.Done():
	case <-s.shutdownReq:
		s.log.Info("shutdown requested from the admin console")
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
		// Go's Accept has already set TCP_NODELAY and TCP keepalives
		// (net.ListenConfig's defaults), which clients need.
		if lc := s.adopt(nc); lc != nil {
			nc = lc
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
		go c.serve(ctx) // which calls s.wg.Done when the client ends
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
	cfg := s.config()
	if max := cfg.MaxClientConn; len(s.clients) >= max {
		return fatalf(codeTooManyConnections, "sorry, too many clients already (max_client_conn is %d)", max)
	}
	if max := cfg.MaxClientConnPerUser; max > 0 && s.perUser[c.user] >= max {
		return fatalf(codeTooManyConnections, "too many connections for user %q (max_client_conn_per_user is %d)", c.user, max)
	}
	if dbc, ok := cfg.Database(c.db); ok && dbc.MaxClientConn > 0 && s.perDB[c.db] >= dbc.MaxClientConn {
		return fatalf(codeTooManyConnections, "too many connections for database %q (its max_client_conn is %d)", c.db, dbc.MaxClientConn)
	}
	for {
		rand.Read(b[:])
		pid := binary.BigEndian.Uint32(b[:4]) & 0x7fffffff
		if pid == 0 || s.clients[pid] != nil {
			continue
		}
		c.keyPID, c.keySec = pid, binary.BigEndian.Uint32(b[4:])
		s.clients[pid] = c
		s.perUser[c.user]++
		s.perDB[c.db]++
		return nil
	}
}

// addAdminSession records an admin console session, so that shutdown can
// close it; false if pgpoolx is shutting down.
func (s *Server) addAdminSession(c *client) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return false
	}
	s.consoles[c] = struct{}{}
	return true
}

func (s *Server) removeAdminSession(c *client) {
	s.mu.Lock()
	delete(s.consoles, c)
	s.mu.Unlock()
}

func (s *Server) unregister(c *client) {
	s.mu.Lock()
	if s.clients[c.keyPID] == c {
		delete(s.clients, c.keyPID)
		decrement(s.perUser, c.user)
		decrement(s.perDB, c.db)
	}
	s.mu.Unlock()
}

// decrement lowers a count, forgetting it at zero.
func decrement(m map[string]int, key string) {
	if m[key]--; m[key] <= 0 {
		delete(m, key)
	}
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

// shutdown closes idle clients now, gives the others shutdown_timeout to
// finish their transactions, then closes everything.
func (s *Server) shutdown(cancelSessions context.CancelFunc) {
	s.mu.Lock()
	s.stopping = true
	clients := valuesWhere(s.clients, nil)
	for c := range s.consoles {
		c.netConn.Close()
	}
	s.mu.Unlock()
	s.log.Info("shutting down", zap.Int("clients", len(clients)))
	for _, c := range clients {
		c.stopWhenIdle(fatalf(codeAdminShutdown, "terminating connection because pgpoolx is shutting down"))
	}

	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	timer := time.NewTimer(s.config().ShutdownTimeout.D())
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		clients = s.allClients("")
		s.log.Warn("shutdown timeout: closing clients still in a transaction", zap.Int("clients", len(clients)))
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
	for _, p := range s.lookups {
		p.Close()
	}
	s.mu.Unlock()
}

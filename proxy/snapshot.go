package proxy

import (
	"cmp"
	"crypto/tls"
	"maps"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/pgpoolx/pgpoolx/pool"
	"github.com/pgpoolx/pgpoolx/stats"
)

// What the admin console and /metrics read: snapshots of the pools,
// clients, server connections and databases, taken without stopping
// anyone for longer than a field copy.

// clientView is what a snapshot reads of one client under its lock.
type clientView struct {
	c       *client
	pool    *serverPool
	srv     *pool.Conn // the server connection it holds, or nil
	waiting time.Duration
	waits   bool
	parked  bool
	pin     string
	pinned  time.Time
	pinTx   int
	digest  string
	stmts   int
}

func (c *client) view() clientView {
	v := clientView{c: c, pool: c.pool, parked: c.parked.Load()}
	if t := c.waitSince.Load(); t != 0 {
		v.waits, v.waiting = true, time.Since(time.Unix(0, t))
	}
	c.mu.Lock()
	if c.att != nil {
		v.srv = c.att.srv
	}
	v.pin, v.pinned, v.pinTx, v.digest = string(c.pin), c.pinnedAt, c.pinTx, c.pinDigest
	v.stmts = len(c.stmts)
	c.mu.Unlock()
	return v
}

func (v clientView) state() string {
	switch {
	case v.srv != nil:
		return "active"
	case v.waits:
		return "waiting"
	}
	return "idle"
}

// clientViews reads every client of a pool (not the admin sessions),
// ordered by connection time.
func (s *Server) clientViews() []clientView {
	var views []clientView
	for _, c := range s.allClients("") {
		if c.pool != nil {
			views = append(views, c.view())
		}
	}
	slices.SortFunc(views, func(a, b clientView) int { return a.c.connectedAt.Compare(b.c.connectedAt) })
	return views
}

// poolSnapshots returns the state of every pool, by database and user.
func (s *Server) poolSnapshots() []stats.Pool {
	pools := s.allPools("")
	slices.SortFunc(pools, func(a, b *serverPool) int {
		return cmp.Or(strings.Compare(a.key.db, b.key.db), strings.Compare(a.key.user, b.key.user))
	})
	byPool := make(map[*serverPool]*stats.Pool, len(pools))
	out := make([]stats.Pool, len(pools))
	for i, p := range pools {
		st := p.Stat()
		out[i] = stats.Pool{
			Database:           p.key.db,
			User:               p.key.user,
			ServersIdle:        st.Idle,
			ServersLogin:       st.Dialing,
			ServersActive:      st.Total - st.Idle - st.Dialing,
			MaxWait:            st.MaxWait,
			PreparedStatements: st.PreparedStatements,
			InitQueryFailures:  st.InitFailures,
			Paused:             st.Paused,
			Totals:             p.stats.Snapshot(),
		}
		if dbc, ok := s.config().Database(p.key.db); ok {
			out[i].PoolMode = string(dbc.PoolMode)
		}
		byPool[p] = &out[i]
	}
	for _, v := range s.clientViews() {
		ps := byPool[v.pool]
		if ps == nil {
			continue
		}
		switch v.state() {
		case "active":
			ps.ClientsActive++
		case "waiting":
			ps.ClientsWaiting++
		default:
			ps.ClientsIdle++
		}
		if v.pin != "" {
			ps.ClientsPinned++
		}
		if v.parked {
			ps.ClientsParked++
		}
		ps.ClientPreparedStatements += v.stmts
	}
	return out
}

// clientSnapshots returns every client of a pool.
func (s *Server) clientSnapshots() []stats.Client {
	views := s.clientViews()
	out := make([]stats.Client, len(views))
	for i, v := range views {
		c := v.c
		out[i] = stats.Client{
			ID:                 c.id,
			PID:                c.keyPID,
			Database:           c.db,
			User:               c.user,
			State:              v.state(),
			ConnectTime:        c.connectedAt,
			Wait:               v.waiting,
			ApplicationName:    c.appName,
			Pin:                v.pin,
			PinnedAt:           v.pinned,
			PinDigest:          v.digest,
			PinnedTransactions: v.pinTx,
		}
		if v.pin != "" {
			out[i].PinDetail = c.pin.Detail()
		}
		if c.tlsState != nil {
			out[i].TLS = tls.VersionName(c.tlsState.Version)
		}
		out[i].Addr, out[i].Port = splitAddr(c.netConn.RemoteAddr())
		out[i].LocalAddr, out[i].LocalPort = splitAddr(c.netConn.LocalAddr())
		if v.srv != nil {
			out[i].ServerPID = v.srv.PID
		}
	}
	return out
}

// serverSnapshots returns every open server connection: those lent to
// clients, then the idle ones.
func (s *Server) serverSnapshots() []stats.Server {
	var out []stats.Server
	add := func(p *serverPool, srv *pool.Conn, state string, clientPID uint32, app string) {
		sv := stats.Server{
			Database:        p.key.db,
			User:            p.key.user,
			State:           state,
			ConnectTime:     srv.Created(),
			PID:             srv.PID,
			ClientPID:       clientPID,
			ApplicationName: app,
		}
		sv.Addr, sv.Port = splitAddr(srv.Addr())
		sv.LocalAddr, sv.LocalPort = splitAddr(srv.LocalAddr())
		out = append(out, sv)
	}
	for _, v := range s.clientViews() {
		if v.srv != nil {
			add(v.pool, v.srv, "active", v.c.keyPID, v.c.appName)
		}
	}
	for _, p := range s.allPools("") {
		for _, srv := range p.Idle() {
			add(p, srv, "idle", 0, "")
		}
	}
	return out
}

// databaseSnapshots returns the configured databases and their state.
func (s *Server) databaseSnapshots() []stats.Database {
	cfg := s.config()
	conns := map[string]int{}
	for _, p := range s.allPools("") {
		conns[p.key.db] += p.Stat().Total
	}
	s.mu.Lock()
	paused := maps.Clone(s.paused)
	s.mu.Unlock()
	var out []stats.Database
	for _, name := range slices.Sorted(maps.Keys(cfg.Databases)) {
		dbc := cfg.Databases[name]
		out = append(out, stats.Database{
			Name:               name,
			Host:               dbc.Host,
			Port:               dbc.Port,
			DBName:             dbc.DBName,
			ForceUser:          dbc.User,
			PoolSize:           dbc.PoolSize,
			PoolMode:           string(dbc.PoolMode),
			CurrentConnections: conns[name],
			Paused:             paused[""] || paused[name],
		})
	}
	return out
}

// splitAddr returns a TCP address's host and port.
func splitAddr(a net.Addr) (string, int) {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String(), ta.Port
	}
	if a == nil {
		return "", 0
	}
	return a.String(), 0
}

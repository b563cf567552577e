package proxy

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"maps"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"go.uber.org/zap"

	"github.com/pgpoolx/pgpoolx/admin"
	"github.com/pgpoolx/pgpoolx/auth"
	"github.com/pgpoolx/pgpoolx/config"
	"github.com/pgpoolx/pgpoolx/netloop"
	"github.com/pgpoolx/pgpoolx/pgdial"
	"github.com/pgpoolx/pgpoolx/pool"
	"github.com/pgpoolx/pgpoolx/session"
	"github.com/pgpoolx/pgpoolx/wire"
)

// maxStartupLen bounds the startup packet, as PostgreSQL does.
const maxStartupLen = 10000

// attachment is one lending of a server connection to a client.
type attachment struct {
	srv  *pool.Conn
	done chan struct{} // closed when its relay ends

	// The relay's own state.
	fatal bool // the server sent a FATAL error: it is about to close
	// Traffic counted by the relay and added to the pool's counters at
	// each ReadyForQuery, rather than per message.
	sent, queries uint64
	txStart       time.Time // when the transaction under way started (or the attachment)
	// lc is srv's socket while the event loop relays it (fast.go), else
	// nil; tls says TLS runs over lc, which keeps input of its own.
	lc  *netloop.Conn
	tls bool
}

// client is one client connection and its session.
type client struct {
	srv     *Server
	id      uint64
	netConn net.Conn
	raw     syscall.RawConn // netConn's socket, to wait on it without a buffer; nil for TLS
	br      *bufio.Reader   // nil while parked (idle.go)
	r       *wire.Reader    // read only by the client loop
	w       *bufio.Writer   // written under wmu, by whichever goroutine answers; see out()
	wmu     sync.Mutex
	log     *zap.Logger

	db          string
	user        string
	mode        config.PoolMode
	pool        *serverPool
	connectedAt time.Time
	tlsState    *tls.ConnectionState // nil: not TLS
	// passThrough are credentials to log in to PostgreSQL as the client,
	// learned from its login when auth.query found its password.
	passThrough  *pgdial.Credentials
	appName      string            // application_name from the startup packet
	admin        bool              // a session of the admin console
	startupSet   map[string]string // settings from the startup packet
	keyPID       uint32
	keySec       uint32
	scratch      []byte // the client loop's buffer for message bodies
	relayBuf     []byte // the relay's buffer for message bodies
	scratchRelay []byte // the relay's buffer for messages to the client

	// The unnamed statement the client last prepared, to re-create it on
	// another server connection (pgx's describe-then-execute needs it).
	unnamedParse  []byte
	unnamedEffect session.Effect
	// The client's named prepared statements, by the client's names.
	stmts map[string]*session.Statement
	// Named Parses held back while no server connection was free, to be
	// answered by pgpoolx at Sync or sent ahead of the batch's next message.
	deferred []stmtRef
	preBuf   []byte // messages pgpoolx sends ahead of the client's
	msgBuf   []byte // bodies the client loop reads whole
	refBuf   []byte // rewritten Describe/Close bodies

	// lastRelay is closed when the relay of the latest attachment returns.
	lastRelay chan struct{}

	// failing is set after pgpoolx answered an extended-protocol message
	// with an error: like the server, it then ignores messages up to Sync.
	failing bool

	mu sync.Mutex // guards the fields below, shared with the relay
	// want are the session settings (as pg_settings shows them) the
	// client's transactions must run with: the baseline, its startup
	// settings, and what its own SETs left. defaults are what RESET goes
	// back to. Both maps are replaced, never modified.
	want     map[string]string
	defaults map[string]string
	// custom are the custom settings ("myapp.tenant") the client has
	// touched; PostgreSQL does not list them, so the probe asks by name.
	custom map[string]struct{}
	// reported are the parameter values the client was last told.
	reported map[string]string
	att      *attachment
	// idleSince is when the client last gave a server connection back
	// (or connected); readDeadline is the read deadline set on netConn.
	idleSince    time.Time
	readDeadline time.Time
	// reading: the loop is reading a message (no deadline applies), not
	// waiting for one.
	reading bool
	// lost: the server connection failed under the client, which is being
	// disconnected. Nothing more it sent may run: not on another server
	// connection, where it would run outside its transaction.
	lost        bool
	track       session.Tracker
	pin         session.Reason // why the client keeps its server connection, or ""
	pinnedAt    time.Time
	pinTx       int    // transactions ended while pinned
	pinDigest   string // digest of the statement that pinned it
	dirty       bool   // the transaction under way may change session state
	dirtyDigest string // digest of the statement that made it dirty
	// dirtyOnlyLocks: every statement that made it dirty could change
	// nothing but advisory locks (session.Effect.OnlyLocks).
	dirtyOnlyLocks bool
	// otherState: the last full probe found state other than advisory
	// locks (temp tables, LISTEN...), which only a full probe can see go.
	otherState bool
	dirtyBytes int
	loaded     bool // the client ran LOAD: pinned for good
	// dropStatements: the client ran DISCARD ALL or DEALLOCATE ALL, so the
	// server and the client lost every prepared statement.
	dropStatements bool
	unnamedToken   uint64 // which unnamed statement is the client's (stmt.go)
	cancelling     int    // cancel requests in flight for att
	cancelDone     *sync.Cond
	// stopping is the error a client is closed with once it is idle
	// (pgpoolx shuts down, or its database was removed), or nil.
	stopping *clientError

	// waitSince is when the client started waiting for a server
	// connection (unix nanoseconds), or 0.
	waitSince atomic.Int64
	// reqStart is when the client sent the request (Query or Sync) whose
	// ReadyForQuery is awaited (unix nanoseconds), or 0.
	reqStart atomic.Int64
	// parked: the client waits without its buffers (idle.go).
	parked atomic.Bool
	// bytesIn counts what the client sent since it was last added to the
	// pool's counters; only the client loop touches it.
	bytesIn uint64

	// The event loop (fast.go). lc is the client's socket when the loop
	// can run it (plain TCP), else nil; inLoop says the loop runs it now.
	lc     *netloop.Conn
	inLoop atomic.Bool
	ctx    context.Context // the session's, for the loop's use
	// stopCtx undoes the AfterFunc that closes the socket with ctx.
	stopCtx func() bool
	// wait is the loop's place in the pool's queue (made on first use);
	// waiting says the client is in the queue now.
	wait    *pool.Wait
	waiting bool
	// taken is a server connection the loop took for the client, and
	// pendingErr why it got none; acquire hands either over.
	taken      *pool.Conn
	pendingErr error
	// loopErr is a read error the loop met; the client loop returns it.
	loopErr error
}

func newClient(s *Server, nc net.Conn, id uint64) *client {
	br := readers.Get().(*bufio.Reader)
	br.Reset(nc)
	c := &client{
		srv:     s,
		id:      id,
		netConn: nc,
		raw:     rawConn(nc),
		br:      br,
		r:       wire.NewReader(br, s.config().MaxMessageBytes),
		log:     s.log.Named("client").WithLazy(zap.Uint64("client_id", id)),

		connectedAt: time.Now(),
		track:       session.NewTracker(),
		stmts:       map[string]*session.Statement{},
		custom:      map[string]struct{}{},
	}
	c.cancelDone = sync.NewCond(&c.mu)
	return c
}

// serve runs the client from its first byte to its last, or until the
// event loop takes it (fast.go); end finishes it then.
func (c *client) serve(ctx context.Context) {
	c.ctx = ctx
	c.stopCtx = context.AfterFunc(ctx, func() { c.netConn.Close() })
	handedOn := false // to runGoroutine, which ends the client with end
	defer func() {
		if !handedOn {
			c.stopCtx()
			c.netConn.Close()
			c.srv.wg.Done()
		}
	}()

	if t := c.srv.config().ClientLoginTimeout.D(); t > 0 {
		c.netConn.SetDeadline(time.Now().Add(t))
	}
	ok, err := c.startup(ctx)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		// client_login_timeout, as PostgreSQL's authentication_timeout:
		// a client that sent its startup packet is told; a socket that
		// never sent one is closed without a word.
		c.log.Debug("client did not finish logging in within client_login_timeout")
		if c.user != "" {
			c.sendFatal(fatalf(codeQueryCanceled, "canceling authentication due to timeout (client_login_timeout)"))
		}
		return
	}
	if err != nil {
		c.sendFatal(err)
		return
	}
	if !ok {
		return // a cancel request, or a client that left early
	}
	c.netConn.SetDeadline(time.Time{})
	c.mu.Lock()
	c.idleSince = time.Now()
	c.mu.Unlock()
	if c.admin {
		if !c.srv.addAdminSession(c) {
			return // shutting down
		}
		defer c.srv.removeAdminSession(c)
		err = admin.Serve(ctx, c.r, c.out(), c.srv)
		if err != nil && !isDisconnect(err) {
			c.log.Info("admin console session closed", zap.Error(err))
		}
		return
	}
	handedOn = true
	c.lc = loopConn(c.netConn)
	c.runGoroutine()
}

// end finishes a client session whose loop returned err.
func (c *client) end(err error) {
	if err != nil && !isDisconnect(err) {
		c.sendFatal(err)
		c.log.Info("client closed", zap.Error(err), zap.Duration("duration", time.Since(c.connectedAt)))
	} else {
		c.log.Debug("client closed", zap.Duration("duration", time.Since(c.connectedAt)))
	}
	// Nothing more goes to the client: a relay still writing to it stops.
	c.netConn.Close()
	c.finish(c.ctx)
	c.srv.unregister(c)
	c.stopCtx()
	// Its buffers serve the next client: one that connects for a single
	// transaction (pgbench -C, a script) would otherwise cost two fresh
	// 8 KiB buffers and their collection.
	c.waitRelay()
	if c.br != nil {
		c.dropBuffers()
	}
	c.srv.wg.Done()
}

// startup reads the first packets, authenticates the client and sends it
// the parameters, key data and first ReadyForQuery. It returns false with
// no error for a cancel request.
func (c *client) startup(ctx context.Context) (bool, error) {
	var params map[string]string
	var minor uint32
	for params == nil {
		body, err := c.readStartupPacket()
		if err != nil {
			if isDisconnect(err) {
				return false, nil
			}
			return false, err
		}
		code := binary.BigEndian.Uint32(body)
		switch {
		case code == wire.SSLRequestCode:
			if ok, err := c.startTLS(ctx); !ok || err != nil {
				return false, err
			}
		case code == wire.GSSENCRequestCode:
			// No GSS encryption: the client may go on without.
			if _, err := c.netConn.Write([]byte{'N'}); err != nil {
				return false, nil
			}
		case code == wire.CancelRequestCode:
			c.srv.cancel(ctx, body[4:])
			return false, nil
		case code>>16 == 3:
			minor = code & 0xffff
			if params, err = parseStartupParams(body[4:]); err != nil {
				return false, err
			}
		default:
			return false, fatalf(codeProtocolViolation, "unsupported frontend protocol %d.%d: pgpoolx speaks 3.0", code>>16, code&0xffff)
		}
	}
	if minor > 0 || hasProtocolOptions(params) {
		// pgpoolx speaks 3.0; tell the client, which carries on with it.
		var opts []string
		for k := range params {
			if strings.HasPrefix(k, "_pq_.") {
				opts = append(opts, k)
			}
		}
		// Like PostgreSQL, send the whole version number (3.0), not the minor alone.
		c.queue(&pgproto3.NegotiateProtocolVersion{NewestMinorProtocol: wire.ProtocolVersion30, UnrecognizedOptions: opts})
	}

	c.user = params["user"]
	if c.user == "" {
		return false, fatalf(codeInvalidAuthSpec, "no PostgreSQL user name specified in startup packet")
	}
	if c.srv.config().TLS.Mode == config.TLSRequire && c.tlsState == nil {
		return false, fatalf(codeInvalidAuthSpec, "pgpoolx accepts only TLS connections: connect with sslmode=require or stronger (tls.mode is require)")
	}
	c.db = params["database"]
	if c.db == "" {
		c.db = c.user
	}
	if _, ok := params["replication"]; ok {
		return false, fatalf(codeFeatureNotSupported, "pgpoolx does not support replication connections")
	}
	c.log = c.log.WithLazy(zap.String("db", c.db), zap.String("user", c.user))

	c.appName = params["application_name"]

	if err := c.authenticate(ctx); err != nil {
		return false, err
	}
	if c.db == config.AdminDatabase {
		return true, c.startAdmin()
	}
	dbc, ok := c.srv.config().Databases[c.db]
	if !ok {
		return false, fatalf(codeInvalidCatalogName, "database %q does not exist", c.db)
	}
	startup, err := session.StartupSettings(params)
	if err != nil {
		return false, fatalf(codeInvalidParameter, "%v", err)
	}
	c.startupSet = startup
	c.mode = dbc.PoolMode
	c.pool = c.srv.poolFor(c.db, dbc, c.user, c.passThrough)
	if err := c.srv.register(c); err != nil {
		return false, err
	}

	// A server connection tells the parameters to report, in the server's
	// own spelling, with this client's settings applied. When none is free
	// now, the pool's last known parameters serve: a client must be able
	// to connect while others hold every server connection (pgbench opens
	// its clients one by one on a single thread). Session mode needs its
	// server connection now anyway.
	// Settings that read back as given (application_name) need no server
	// either: a crowd of clients logging in at once (a deploy, pgbench)
	// then does not queue for server connections one by one.
	var a *attachment
	var report map[string]string
	noServer := c.mode == config.PoolModeTransaction && session.KnownWithoutServer(c.startupSet)
	if !noServer {
		a, report, err = c.startSession(ctx, c.mode == config.PoolModeSession)
	}
	if noServer || errors.Is(err, pool.ErrWouldWait) {
		if base, params := c.pool.Baseline(); params != nil && !session.SpelledByServerOnly(c.startupSet) {
			c.want = c.pool.intern(session.Overlay(base, c.startupSet))
			c.defaults = c.want
			report, err = session.ReportedParams(params, c.startupSet), nil
		} else {
			a, report, err = c.startSession(ctx, true)
		}
	}
	if err != nil {
		c.srv.unregister(c)
		return false, serverErrorFor(err, sevFatal, c.db)
	}
	c.mu.Lock()
	c.reported = maps.Clone(report)
	c.mu.Unlock()
	// Registered, the client may be told to go (shutdown, KILL) by another
	// goroutine, which writes under wmu.
	c.wmu.Lock()
	c.queue(&pgproto3.AuthenticationOk{})
	for name, value := range report {
		c.scratch = wire.AppendParameterStatus(c.scratch[:0], name, value)
		c.out().Write(c.scratch)
	}
	c.queue(&pgproto3.BackendKeyData{ProcessID: c.keyPID, SecretKey: binary.BigEndian.AppendUint32(nil, c.keySec)})
	c.queue(&pgproto3.ReadyForQuery{TxStatus: wire.TxIdle})
	err = c.out().Flush()
	c.wmu.Unlock()
	if err != nil {
		if a != nil {
			c.pool.Destroy(a.srv, "client left during startup")
		}
		c.srv.unregister(c)
		return false, nil
	}
	if a != nil {
		if c.mode == config.PoolModeSession {
			c.startRelay(ctx, a)
		} else {
			c.pool.Release(a.srv)
		}
	}
	c.log.Debug("client connected", zap.String("pool_mode", string(c.mode)))
	return true, nil
}

// startTLS answers an SSLRequest: 'S' and a TLS handshake when TLS is
// configured, else 'N' (the client may go on in clear, or give up). It
// returns false when the client is gone.
func (c *client) startTLS(ctx context.Context) (bool, error) {
	cfg := c.srv.settings.Load().tls
	if cfg == nil || c.tlsState != nil {
		_, err := c.netConn.Write([]byte{'N'})
		return err == nil, nil
	}
	if c.br.Buffered() > 0 {
		// Bytes sent before the handshake would be taken as sent under it.
		return false, fatalf(codeProtocolViolation, "received unencrypted data after SSL request")
	}
	if _, err := c.netConn.Write([]byte{'S'}); err != nil {
		return false, nil
	}
	tc := tls.Server(c.netConn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.log.Info("client TLS handshake failed", zap.String("client_addr", c.netConn.RemoteAddr().String()), zap.Error(err))
		return false, nil
	}
	state := tc.ConnectionState()
	c.netConn, c.tlsState, c.raw = tc, &state, nil
	c.br.Reset(tc)
	if c.w != nil {
		c.w.Reset(tc)
	}
	return true, nil
}

// startSession takes a server connection (without waiting unless wait),
// applies the client's startup settings to it and learns from the server
// how they read back, which become the client's settings and defaults. It
// returns the parameters to report to the client.
func (c *client) startSession(ctx context.Context, wait bool) (*attachment, map[string]string, error) {
	srv, err := c.acquire(ctx, wait)
	if err != nil {
		return nil, nil, err
	}
	want := session.Overlay(srv.Baseline, c.startupSet)
	if len(c.startupSet) > 0 || !maps.Equal(srv.Current, srv.Baseline) {
		probe := session.NewProbe()
		c.mu.Lock()
		for k := range c.startupSet {
			if session.IsCustom(k) {
				c.custom[k] = struct{}{}
			}
		}
		custom := c.customNamesLocked(srv)
		c.mu.Unlock()
		sql := session.SyncSQL(want, srv.Current) + session.ProbeSQL(nil, custom)
		if err := c.prepareServer(ctx, srv, sql, probe.Row); err != nil {
			return nil, nil, err
		}
		want = probe.Settings
	}
	want = c.pool.intern(want)
	srv.Current = want
	c.mu.Lock()
	c.want, c.defaults = want, want
	c.mu.Unlock()
	return newAttachment(srv, nil, false), srv.Params, nil
}

// readStartupPacket reads one length-prefixed packet without a type byte.
func (c *client) readStartupPacket() ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(c.br, hdr[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint32(hdr[:])) - 4
	if n < 4 || n > maxStartupLen {
		return nil, fatalf(codeProtocolViolation, "invalid length of startup packet")
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(c.br, body); err != nil {
		return nil, err
	}
	return body, nil
}

func parseStartupParams(b []byte) (map[string]string, error) {
	params := map[string]string{}
	for len(b) > 0 && b[0] != 0 {
		k, rest, ok := wire.CString(b)
		if !ok {
			return nil, fatalf(codeProtocolViolation, "invalid startup packet layout: expected terminator as last byte")
		}
		v, rest, ok := wire.CString(rest)
		if !ok {
			return nil, fatalf(codeProtocolViolation, "invalid startup packet layout: missing value for parameter %q", k)
		}
		params[string(k)] = string(v)
		b = rest
	}
	if len(b) != 1 {
		return nil, fatalf(codeProtocolViolation, "invalid startup packet layout: expected terminator as last byte")
	}
	return params, nil
}

func hasProtocolOptions(params map[string]string) bool {
	for k := range params {
		if strings.HasPrefix(k, "_pq_.") {
			return true
		}
	}
	return false
}

// authenticate runs the exchange auth.type asks for. A user not in
// auth.users is looked up with auth.query, when configured; a client that
// proves such a password leaves c.passThrough set, to log in to
// PostgreSQL as itself.
func (c *client) authenticate(ctx context.Context) error {
	cfg := c.srv.config()
	typ := cfg.Auth.Type
	if typ == config.AuthTrust || typ == "" {
		return nil
	}
	secret, known := c.srv.secret(c.user)
	lookedUp := false
	if dbc, ok := cfg.Database(c.db); !known && ok && cfg.Auth.Query != "" {
		var err error
		secret, known, err = c.srv.lookupSecret(ctx, c.db, dbc, c.user)
		if err != nil {
			ce := serverErrorFor(err, sevFatal, c.db)
			c.log.Warn("auth.query lookup failed", zap.String("sqlstate", ce.code), zap.Error(err))
			return ce
		}
		lookedUp = known
	}
	fail := func() error {
		c.log.Warn("client authentication failed", zap.String("auth", typ), zap.String("client_addr", c.netConn.RemoteAddr().String()))
		return fatalf(codeInvalidPassword, "password authentication failed for user %q", c.user)
	}
	switch typ {
	case config.AuthMD5:
		var salt [4]byte
		rand.Read(salt[:])
		c.queue(&pgproto3.AuthenticationMD5Password{Salt: salt})
		body, err := c.readAuthResponse()
		if err != nil {
			return err
		}
		var pm pgproto3.PasswordMessage
		if err := pm.Decode(body); err != nil {
			return fatalf(codeProtocolViolation, "invalid password packet")
		}
		if !known || !secret.CanMD5() || !secret.CheckMD5(c.user, salt, pm.Password) {
			return fail()
		}
		if lookedUp {
			c.passThrough = &pgdial.Credentials{MD5Hash: secret.MD5Hash()}
		}
		return nil
	case config.AuthSCRAM:
		var sc *auth.SCRAM
		if known && secret.CanSCRAM() {
			var err error
			if sc, err = auth.NewSCRAM(secret, rand.Reader); err != nil {
				return fail()
			}
		} else {
			sc = auth.NewSCRAMDecoy(c.user, rand.Reader)
		}
		c.queue(&pgproto3.AuthenticationSASL{AuthMechanisms: sc.Mechanisms()})
		body, err := c.readAuthResponse()
		if err != nil {
			return err
		}
		var first pgproto3.SASLInitialResponse
		if err := first.Decode(body); err != nil {
			return fatalf(codeProtocolViolation, "malformed SASL message")
		}
		serverFirst, err := sc.ClientFirst(first.AuthMechanism, first.Data)
		if err != nil {
			return fatalf(codeProtocolViolation, "%v", err)
		}
		c.queue(&pgproto3.AuthenticationSASLContinue{Data: serverFirst})
		if body, err = c.readAuthResponse(); err != nil {
			return err
		}
		var final pgproto3.SASLResponse
		if err := final.Decode(body); err != nil {
			return fatalf(codeProtocolViolation, "malformed SASL message")
		}
		serverFinal, err := sc.ClientFinal(final.Data)
		if errors.Is(err, auth.ErrBadPassword) {
			return fail()
		} else if err != nil {
			return fatalf(codeProtocolViolation, "%v", err)
		}
		c.queue(&pgproto3.AuthenticationSASLFinal{Data: serverFinal})
		if lookedUp {
			c.passThrough = &pgdial.Credentials{SCRAMClientKey: sc.ClientKey(), SCRAMServerKey: secret.SCRAMServerKey()}
		}
		return nil
	}
	return fatalf(codeInvalidAuthSpec, "unsupported auth type %q", typ)
}

// readAuthResponse flushes what is queued and reads the client's next
// password-type message.
func (c *client) readAuthResponse() ([]byte, error) {
	if err := c.out().Flush(); err != nil {
		return nil, err
	}
	typ, n, err := c.r.Next()
	if err != nil {
		return nil, err
	}
	if typ != wire.PasswordMessage {
		return nil, fatalf(codeProtocolViolation, "expected password response, got message type %q", typ)
	}
	if n > maxStartupLen {
		return nil, fatalf(codeProtocolViolation, "authentication message too long")
	}
	return c.r.ReadBody(nil)
}

// queue buffers a message for the client; only for use while no relay
// runs (startup) or under wmu.
func (c *client) queue(msg pgproto3.BackendMessage) {
	c.scratch, _ = msg.Encode(c.scratch[:0])
	c.out().Write(c.scratch)
}

// sendFatal tells the client why it is being disconnected, if it can.
func (c *client) sendFatal(err error) {
	var ce *clientError
	if !errors.As(err, &ce) {
		if isDisconnect(err) {
			return
		}
		ce = fatalf(codeProtocolViolation, "%v", err)
	}
	ce.severity = sevFatal
	c.countError(ce)
	// The deadline also frees a relay stuck writing to a client that does
	// not read, which holds wmu.
	c.netConn.SetWriteDeadline(time.Now().Add(time.Second))
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.out().Write(ce.appendTo(nil))
	c.out().Flush()
}

// sendError answers a client message with an ERROR (not fatal); the
// session goes on. With ready, a ReadyForQuery follows.
func (c *client) sendError(ce *clientError, ready bool) error {
	c.countError(ce)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.out().Write(ce.appendTo(nil))
	if ready {
		c.out().Write(wire.AppendReadyForQuery(c.scratch[:0], wire.TxIdle))
	}
	return c.out().Flush()
}

// countError counts an error pgpoolx itself sends the client.
func (c *client) countError(ce *clientError) {
	if c.pool != nil {
		c.pool.stats.Error(ce.code)
	}
}

func isDisconnect(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed)
}

// cancel routes a CancelRequest to the server connection the client named
// by the key holds right now, if any.
func (s *Server) cancel(ctx context.Context, body []byte) {
	if len(body) != 8 {
		return
	}
	pid := binary.BigEndian.Uint32(body[:4])
	key := body[4:8]
	c := s.lookup(pid)
	if c == nil {
		return
	}
	var want [4]byte
	binary.BigEndian.PutUint32(want[:], c.keySec)
	if subtle.ConstantTimeCompare(want[:], key) != 1 {
		s.log.Warn("cancel request with a wrong key", zap.Uint64("client_id", c.id))
		return
	}
	c.mu.Lock()
	a := c.att
	if a == nil {
		c.mu.Unlock()
		return // between transactions: nothing to cancel
	}
	c.cancelling++
	srvPID, srvKey, addr := a.srv.PID, a.srv.SecretKey, a.srv.Addr()
	c.mu.Unlock()

	cctx, cancel := context.WithTimeout(ctx, s.config().ConnectTimeout.D())
	err := pool.DialCancel(cctx, addr, srvPID, srvKey)
	cancel()
	if err != nil {
		c.log.Warn("cancel request failed", zap.Uint32("server_pid", srvPID), zap.Error(err))
	} else {
		c.log.Debug("cancel request forwarded", zap.Uint32("server_pid", srvPID))
	}
	c.mu.Lock()
	c.cancelling--
	if c.cancelling == 0 {
		c.cancelDone.Broadcast()
	}
	c.mu.Unlock()
}

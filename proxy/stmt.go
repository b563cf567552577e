package proxy

import (
	"strings"
	"unsafe"

	"github.com/pgpoolx/pgpoolx/pinning"
	"github.com/pgpoolx/pgpoolx/pool"
	"github.com/pgpoolx/pgpoolx/session"
	"github.com/pgpoolx/pgpoolx/wire"
)

// Prepared statements in transaction mode.
//
// A client's named statements are renamed to server-side names derived
// from their text and parameter types (session.Statement), so clients that
// prepare the same statement share one copy per server connection and two
// clients' names never collide. When a client uses a statement on a server
// connection that lacks it, pgpoolx sends a Parse first and eats its
// ParseComplete (session.Tracker counts replies). The unnamed statement is
// not renamed: a token tells whether the server connection still holds
// this client's unnamed statement, and it is parsed again when not.

// outMsg is what forward sends to the server for one client message:
// a body read whole (and maybe rewritten), or a Bind whose statement name
// is replaced while the rest streams, or (neither set) the message as it
// came.
type outMsg struct {
	typ      byte
	body     []byte // the whole body to send instead of streaming
	prefix   []byte // Bind: the client's portal and statement names
	portal   []byte // Bind: the portal name, kept
	stmtName string // Bind: the server-side statement name to send
}

// stmtRef is what one client message does with prepared statements.
type stmtRef struct {
	stmt         *session.Statement // the client's named statement involved
	parse        session.ParseRef   // for a Parse: what it prepares
	newStmt      bool               // a Parse of a new named statement
	dupStmt      bool               // a Parse of a name the client already uses
	unnamedNew   bool               // a Parse of the unnamed statement
	unnamedRef   bool               // a Bind or Describe of the unnamed statement
	closeUnnamed bool               // a Close of the unnamed statement

	// What the message does to session state, with the digest and size of
	// the statement that does it, for the pin log.
	effect     session.Effect
	digest     string
	queryBytes int
	// deallocate lists the names of a query made only of DEALLOCATE name.
	deallocate []string
}

// readStatementRef looks at the statement a Parse, Bind, Describe or Close
// names and fills out with what to send instead of the client's bytes.
func (c *client) readStatementRef(typ byte, n int, out *outMsg) (stmtRef, error) {
	var ref stmtRef
	switch typ {
	case wire.Query:
		if n > c.srv.config().Pinning.MaxQueryBytes {
			// Too long to analyse: it streams through, and the probe at
			// the end of its transaction finds what it did.
			ref.effect, ref.queryBytes = session.Effect{Changes: true}, n
			return ref, nil
		}
		body, err := c.r.ReadBody(c.msgBuf[:0])
		if err != nil {
			return ref, err
		}
		c.keepMsgBuf(body)
		out.body = body
		sql, _, _ := wire.CString(body)
		ref.deallocate = c.analyze(unsafeString(sql), &ref)
	case wire.Parse:
		body, err := c.r.ReadBody(c.msgBuf[:0])
		if err != nil {
			return ref, err
		}
		c.keepMsgBuf(body)
		name, rest, err := session.SplitParse(body)
		if err != nil {
			return ref, fatalf(codeProtocolViolation, "%v", err)
		}
		query, _, _ := wire.CString(rest)
		c.analyze(unsafeString(query), &ref)
		ref.effect.DropsStatements = false // DISCARD ALL as a prepared statement: rare enough
		if len(name) == 0 {
			c.unnamedParse = append(c.unnamedParse[:0], body...)
			out.body = c.unnamedParse
			ref.unnamedNew = true
			c.unnamedEffect = ref.effect
			return ref, nil
		}
		ref.parse.Client = string(name)
		c.mu.Lock()
		existing := c.stmts[ref.parse.Client]
		if existing == nil {
			ref.stmt = session.NewStatement(rest, ref.effect)
			c.stmts[ref.parse.Client] = ref.stmt
			ref.newStmt = true
		} else {
			// PostgreSQL refuses a Parse of a name in use; so will the
			// server, asked to prepare the existing statement again.
			ref.stmt, ref.dupStmt = existing, true
		}
		c.mu.Unlock()
		ref.parse.Server = ref.stmt.ServerName
		ref.parse.Duplicate = ref.dupStmt
		out.body = ref.stmt.Parse
	case wire.Bind:
		head, err := c.r.Peek(512)
		if err != nil {
			return ref, err
		}
		portal, rest, ok := wire.CString(head)
		if !ok {
			return ref, nil
		}
		name, _, ok := wire.CString(rest)
		switch {
		case !ok:
		case len(name) == 0:
			ref.unnamedRef = true
		default:
			c.mu.Lock()
			ref.stmt = c.stmts[string(name)]
			c.mu.Unlock()
			if ref.stmt != nil {
				out.prefix = head[:len(portal)+1+len(name)+1]
				out.portal = portal
				out.stmtName = ref.stmt.ServerName
			}
		}
	case wire.Describe, wire.Close:
		if n > 1024 {
			return ref, nil // no name pgpoolx knows: pass it on
		}
		body, err := c.r.ReadBody(c.msgBuf[:0])
		if err != nil {
			return ref, err
		}
		c.keepMsgBuf(body)
		out.body = body
		if len(body) < 2 || body[0] != 'S' {
			return ref, nil // a portal: nothing to rewrite
		}
		name, _, ok := wire.CString(body[1:])
		switch {
		case !ok:
		case len(name) == 0 && typ == wire.Describe:
			ref.unnamedRef = true
		case len(name) == 0:
			ref.closeUnnamed = true
		case typ == wire.Describe:
			c.mu.Lock()
			ref.stmt = c.stmts[string(name)]
			c.mu.Unlock()
			if ref.stmt != nil {
				out.body = appendStmtRef(c.refBuf[:0], 'S', ref.stmt.ServerName)
				c.refBuf = out.body[:0]
			}
		default:
			// The server-side statement may be shared: forget only the
			// client's name, but let the server answer in order.
			c.mu.Lock()
			delete(c.stmts, string(name))
			c.mu.Unlock()
			out.body = appendStmtRef(c.refBuf[:0], 'S', session.ClosedName)
			c.refBuf = out.body[:0]
		}
	}
	return ref, nil
}

// statementAheadLocked appends to pre what srv needs before the message
// described by ref, and updates what srv and the client hold. Call with
// c.mu held.
func (c *client) statementAheadLocked(pre []byte, srv *pool.Conn, typ byte, ref *stmtRef, out *outMsg) []byte {
	switch {
	case ref.unnamedNew:
		c.unnamedToken = c.srv.unnamedTokens.Add(1)
		srv.UnnamedToken = c.unnamedToken
		ref.parse.Token = c.unnamedToken
		ref.effect = session.Effect{} // it runs at Bind, not here
	case ref.closeUnnamed:
		c.unnamedToken = 0
		srv.UnnamedToken = 0
	case ref.unnamedRef && c.unnamedToken != 0 && srv.UnnamedToken != c.unnamedToken:
		pre = appendMsg(pre, wire.Parse, c.unnamedParse)
		c.track.InjectedParse(session.ParseRef{Token: c.unnamedToken})
		srv.UnnamedToken = c.unnamedToken
	case ref.unnamedRef && c.unnamedToken == 0 && srv.UnnamedToken != 0:
		// The server's unnamed statement is another client's: drop it, so
		// this client gets "does not exist" as it would from PostgreSQL.
		pre = appendCloseStatement(pre, "")
		c.track.InjectedClose()
		srv.UnnamedToken = 0
	case ref.newStmt:
		// The client's own Parse follows: it really runs and can fail as
		// it would.
		pre = c.beforeParseLocked(pre, srv, ref.stmt.ServerName, false)
	case ref.stmt != nil:
		if !srv.Prepared.Has(ref.stmt.ServerName) {
			pre = c.beforeParseLocked(pre, srv, ref.stmt.ServerName, true)
			pre = appendMsg(pre, wire.Parse, ref.stmt.Parse)
			c.track.InjectedParse(session.ParseRef{Server: ref.stmt.ServerName})
		}
	case typ == wire.Query:
		srv.UnnamedToken = 0 // a simple query drops the unnamed statement
	}
	if typ == wire.Bind {
		// A statement changes session state when it runs, not when parsed.
		switch {
		case ref.stmt != nil:
			ref.effect = ref.stmt.Effect
		case ref.unnamedRef:
			ref.effect = c.unnamedEffect
		}
	} else if typ == wire.Parse {
		ref.effect = session.Effect{}
	}
	if ref.effect.Changes {
		c.markDirtyLocked(ref.digest, ref.queryBytes, ref.effect.OnlyLocks)
		c.loaded = c.loaded || ref.effect.Load
		c.dropStatements = c.dropStatements || ref.effect.DropsStatements
	}
	return pre
}

// unsafeString views b as a string without copying it, for analyze, which
// keeps nothing of its input (digests are new strings): the hot path reads
// every simple query and must not copy it again.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// analyze classifies the statements of sql and notes in ref what they do
// to session state, and logs what RDS Proxy would pin for if asked to.
// When sql is nothing but DEALLOCATE name statements, it returns the names.
func (c *client) analyze(sql string, ref *stmtRef) (deallocate []string) {
	onlyDeallocate := true
	onlyLocks := true // every statement that changes state changes only locks
	c.mu.Lock()
	syntax := pinning.Syntax{StandardConformingStringsOff: c.want["standard_conforming_strings"] == "off"}
	c.mu.Unlock()
	rds := c.srv.config().Pinning.RDSProxyReport
	for st := range syntax.Analyze(sql) {
		e := session.EffectOf(st)
		c.noteCustomSettings(st)
		if e.Changes && !ref.effect.Changes {
			ref.digest, ref.queryBytes = syntax.Digest(st.Text), len(sql)
		}
		ref.effect.Changes = ref.effect.Changes || e.Changes
		if e.Changes && !e.OnlyLocks {
			onlyLocks = false
		}
		ref.effect.OnlyLocks = ref.effect.Changes && onlyLocks
		ref.effect.Load = ref.effect.Load || e.Load
		ref.effect.DropsStatements = ref.effect.DropsStatements || e.DropsStatements
		if rds {
			if r := pinning.RDSProxyReason(st, len(sql)); r.Code != "" {
				c.srv.reportRDSProxy(c.log, syntax.Digest(st.Text), r, initQueryFor(st))
			}
		}
		if st.Kind == pinning.Deallocate && onlyDeallocate {
			deallocate = append(deallocate, strings.Clone(st.Name))
		} else {
			onlyDeallocate = false
		}
	}
	if !onlyDeallocate {
		return nil
	}
	return deallocate
}

// initQueryFor returns the statement to move into RDS Proxy's
// initialization query so that a SET of a server setting stops pinning
// there, or "". Custom settings (myapp.x) may carry application data such
// as tenant ids: they are never suggested, since the value would be logged.
func initQueryFor(st pinning.Statement) string {
	if st.Kind != pinning.Set || st.Name == "" || session.IsCustom(st.Name) || st.ValueSQL == "" {
		return ""
	}
	if st.Name == "timezone" {
		return "SET TIME ZONE " + st.ValueSQL
	}
	return "SET " + st.Name + " TO " + st.ValueSQL
}

// noteCustomSettings remembers the custom settings a statement names, so
// the probe reads them. A set_config whose name is not a literal cannot be
// followed.
func (c *client) noteCustomSettings(st pinning.Statement) {
	var names []string
	switch st.Kind {
	case pinning.Set, pinning.SetLocal, pinning.Reset:
		if session.IsCustom(st.Name) {
			names = append(names, st.Name)
		}
	}
	for _, sc := range st.SetConfigs {
		if session.IsCustom(sc.Name) {
			names = append(names, sc.Name)
		}
	}
	if names == nil {
		return
	}
	c.mu.Lock()
	for _, n := range names {
		c.custom[strings.Clone(n)] = struct{}{}
	}
	c.mu.Unlock()
}

// answerDeallocate answers a simple query made of DEALLOCATE statements of
// the client's protocol-level prepared statements (ActiveRecord evicts its
// statement cache so), which exist on servers under other names and may be
// shared: the client forgets them and pgpoolx answers as PostgreSQL would.
// It answers only between statements, when no reply is under way, and
// returns false when the query must go to the server instead.
func (c *client) answerDeallocate(names []string) (bool, error) {
	c.mu.Lock()
	status := c.track.TxStatus()
	if !c.track.StartsGroup() || c.track.Pending() > 0 || status == wire.TxFailed || len(c.deferred) > 0 {
		c.mu.Unlock()
		return false, nil
	}
	for _, name := range names {
		if c.stmts[name] == nil {
			c.mu.Unlock()
			return false, nil
		}
	}
	for _, name := range names {
		delete(c.stmts, name)
	}
	c.mu.Unlock()

	c.wmu.Lock()
	defer c.wmu.Unlock()
	for range names {
		c.out().Write(wire.AppendHeader(c.scratch[:0], wire.CommandComplete, len("DEALLOCATE")+1))
		c.out().WriteString("DEALLOCATE\x00")
	}
	c.out().Write(wire.AppendReadyForQuery(c.scratch[:0], status))
	return true, c.out().Flush()
}

// sendParseLocked appends a client's held-back Parse (see forward) for srv.
// Call with c.mu held.
func (c *client) sendParseLocked(pre []byte, srv *pool.Conn, d stmtRef) []byte {
	pre = c.beforeParseLocked(pre, srv, d.stmt.ServerName, false)
	pre = appendMsg(pre, wire.Parse, d.stmt.Parse)
	c.track.ClientSent(wire.Parse, d.parse)
	return pre
}

// beforeParseLocked records that statement name is about to be prepared on
// srv and appends what must go before its Parse: a Close of it when srv
// has it (shared, or there from before), or always when pgpoolx makes the
// Parse itself (a Close of a missing statement is harmless, a stale record
// is not); and a Close of the statement this one pushes out of srv's
// bounded cache. The replies to these Closes are eaten. Call with c.mu
// held.
func (c *client) beforeParseLocked(pre []byte, srv *pool.Conn, name string, always bool) []byte {
	if always || srv.Prepared.Has(name) {
		pre = appendCloseStatement(pre, name)
		c.track.InjectedClose()
	}
	if evict := srv.Prepared.Add(name); evict != "" {
		pre = appendCloseStatement(pre, evict)
		c.track.InjectedClose()
	}
	return pre
}

// forgetFailedParsesLocked undoes what pgpoolx recorded for Parses the
// server refused or skipped: the server does not have those statements,
// and a client's own refused Parse leaves the client without it, as
// PostgreSQL would. Call with c.mu held.
func (c *client) forgetFailedParsesLocked(srv *pool.Conn, refs []session.ParseRef) {
	for _, r := range refs {
		switch {
		case r.Duplicate:
			// The statement was there: the server refused the name.
		case r.Server == "":
			// Only that unnamed statement is gone, not one parsed after it.
			if srv.UnnamedToken == r.Token {
				srv.UnnamedToken = 0
			}
			if !r.Injected && c.unnamedToken == r.Token {
				c.unnamedToken = 0
			}
		default:
			srv.Prepared.Remove(r.Server)
			if st := c.stmts[r.Client]; !r.Injected && st != nil && st.ServerName == r.Server {
				delete(c.stmts, r.Client)
			}
		}
	}
}

// answerDeferred answers a Sync that ends a batch of held-back Parses.
func (c *client) answerDeferred() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b := c.scratch[:0]
	for range c.deferred {
		b = wire.AppendParseComplete(b)
	}
	c.deferred = c.deferred[:0]
	c.out().Write(wire.AppendReadyForQuery(b, wire.TxIdle))
	return c.out().Flush()
}

// appendStmtRef appends a Describe/Close body naming a statement or portal.
func appendStmtRef(dst []byte, kind byte, name string) []byte {
	return append(append(append(dst, kind), name...), 0)
}

// appendCloseStatement appends a Close message for a prepared statement.
func appendCloseStatement(dst []byte, name string) []byte {
	dst = wire.AppendHeader(dst, wire.Close, len(name)+2)
	return append(append(append(dst, 'S'), name...), 0)
}

// appendMsg appends a whole message.
func appendMsg(dst []byte, typ byte, body []byte) []byte {
	return append(wire.AppendHeader(dst, typ, len(body)), body...)
}

// maxKeptBuf is the largest message buffer a client keeps between
// messages: an idle client should not hold on to its biggest query.
const maxKeptBuf = 64 << 10

// keepMsgBuf keeps body's array for the next message body, unless large.
func (c *client) keepMsgBuf(body []byte) {
	if cap(body) > maxKeptBuf {
		c.msgBuf = nil
		return
	}
	c.msgBuf = body[:0]
}

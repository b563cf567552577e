package proxy

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/pgpoolx/pgpoolx/pool"
	"github.com/pgpoolx/pgpoolx/session"
	"github.com/pgpoolx/pgpoolx/wire"
)

// pinUnknown is the reason logged when the session state could not be read.
const pinUnknown session.Reason = "unknown_state"

// markDirtyLocked notes that the transaction under way may change session
// state, so it is probed when it ends. digest and queryBytes describe the
// first statement that did it, for the pin log; onlyLocks says it can
// change nothing but advisory locks. Call with c.mu held.
func (c *client) markDirtyLocked(digest string, queryBytes int, onlyLocks bool) {
	if !c.dirty || c.dirtyDigest == "" && digest != "" {
		c.dirtyDigest, c.dirtyBytes = digest, queryBytes
	}
	c.dirtyOnlyLocks = onlyLocks && (!c.dirty || c.dirtyOnlyLocks)
	c.dirty = true
}

// probeLocked asks srv what session state the client's transaction left,
// takes its settings as the client's, and pins or unpins the client. It
// returns ParameterStatus messages for the client when the probe's
// fix-ups (RESET going back to the client's startup values) changed a
// reported parameter. Call with c.mu held; only the relay may call it.
func (c *client) probeLocked(ctx context.Context, srv *pool.Conn) ([]byte, error) {
	probe := session.NewProbe()
	// When the transaction could change nothing but advisory locks, and
	// the session held no other state, the locks are all there is to read.
	locksOnly := c.dirtyOnlyLocks && !c.otherState && !c.loaded && !c.dropStatements &&
		(c.pin == "" || c.pin == session.PinAdvisoryLock)
	sql := session.LockProbeSQL
	if !locksOnly {
		sql = session.ProbeSQL(c.defaults, c.customNamesLocked(srv))
	}
	pctx, cancel := context.WithTimeout(ctx, c.srv.config().ConnectTimeout.D())
	err := srv.Query(pctx, sql, probe.Row)
	cancel()
	var reason session.Reason
	var se *pool.ServerError
	switch {
	case errors.As(err, &se):
		// The state is unknown: keep the client where it is.
		c.log.Warn("session state probe failed", zap.Uint32("server_pid", srv.PID), zap.Error(err))
		reason = pinUnknown
	case err != nil:
		return nil, err
	case locksOnly:
		reason = probe.PinReason() // the settings are as they were
	default:
		c.want = c.pool.intern(probe.Settings)
		srv.Current = c.want
		c.otherState = probe.OtherState()
		reason = probe.PinReason()
	}
	if c.loaded {
		reason = session.PinLoad
	}
	if c.dropStatements {
		// DISCARD ALL or DEALLOCATE ALL: the server has no prepared
		// statements left, and neither has the client.
		srv.Prepared.Clear()
		clear(c.stmts)
		srv.UnnamedToken, c.unnamedToken = 0, 0
		c.dropStatements = false
	}
	c.setPinLocked(reason, srv.PID)
	c.dirty, c.dirtyDigest, c.dirtyBytes, c.dirtyOnlyLocks = false, "", 0, false

	return c.reportChangesLocked(nil, srv), nil
}

// reportChangesLocked appends a ParameterStatus for every reported
// parameter whose value on srv is not what the client was last told, and
// notes it as told: the client's view always matches the server its
// transactions run on. Call with c.mu held.
func (c *client) reportChangesLocked(dst []byte, srv *pool.Conn) []byte {
	for k, v := range srv.Params {
		if told, ok := c.reported[k]; !ok || told != v {
			dst = wire.AppendParameterStatus(dst, k, v)
			c.reported[k] = v
		}
	}
	return dst
}

// customNamesLocked lists the custom settings a probe of srv must read:
// those the client touched and those srv has. Call with c.mu held.
func (c *client) customNamesLocked(srv *pool.Conn) []string {
	var names []string
	for k := range c.custom {
		names = append(names, k)
	}
	for k := range srv.Current {
		if session.IsCustom(k) {
			names = append(names, k)
		}
	}
	return names
}

// setPinLocked moves the client to pinned (reason not "") or unpinned,
// logging each change once. Call with c.mu held.
func (c *client) setPinLocked(reason session.Reason, serverPID uint32) {
	switch {
	case reason != "" && c.pin == "":
		c.pin, c.pinnedAt, c.pinTx = reason, time.Now(), 0
		c.pinDigest = c.dirtyDigest
		c.pool.stats.Pinned(string(reason))
		c.log.Info("session pinned",
			zap.String("reason", string(reason)),
			zap.String("detail", reason.Detail()),
			zap.String("digest", c.dirtyDigest),
			zap.Int("query_bytes", c.dirtyBytes),
			zap.Uint32("server_pid", serverPID),
			zap.String("hint", reason.Hint()))
	case reason == "" && c.pin != "":
		c.log.Info("session unpinned",
			zap.String("reason", string(c.pin)),
			zap.Duration("pinned_for", time.Since(c.pinnedAt)),
			zap.Int("transactions", c.pinTx),
			zap.Uint32("server_pid", serverPID))
		c.pin = ""
	}
}

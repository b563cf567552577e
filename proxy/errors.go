package proxy

import (
	"errors"
	"fmt"
	"net"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgpoolx/pgpoolx/pool"
)

// SQLSTATE codes pgpoolx itself reports.
const (
	codeProtocolViolation    = "08P01"
	codeConnectionFailure    = "08006"
	codeCannotConnect        = "08001"
	codeTooManyConnections   = "53300"
	codeAdminShutdown        = "57P01"
	codeIdleSessionTimeout   = "57P05"
	codeInvalidPassword      = "28P01"
	codeInvalidAuthSpec      = "28000"
	codeInvalidCatalogName   = "3D000"
	codeFeatureNotSupported  = "0A000"
	codeInvalidParameter     = "22023"
	codeProgramLimitExceeded = "54000"
	codeQueryCanceled        = "57014"
)

// errServerLost ends a client whose server connection failed; the client
// was already told (serverLost), so it counts as a disconnect.
var errServerLost = fmt.Errorf("server connection lost: %w", net.ErrClosed)

// Error severities.
const (
	sevError = "ERROR"
	sevFatal = "FATAL"
)

// clientError is an error meant for the client, with its SQLSTATE.
type clientError struct {
	severity string
	code     string
	message  string
	detail   string
	hint     string
}

func (e *clientError) Error() string { return e.code + ": " + e.message }

func fatalf(code, format string, args ...any) *clientError {
	return &clientError{severity: sevFatal, code: code, message: fmt.Sprintf(format, args...)}
}

func (e *clientError) appendTo(dst []byte) []byte {
	msg := pgproto3.ErrorResponse{
		Severity:            e.severity,
		SeverityUnlocalized: e.severity,
		Code:                e.code,
		Message:             e.message,
		Detail:              e.detail,
		Hint:                e.hint,
	}
	dst, _ = msg.Encode(dst)
	return dst
}

// serverErrorFor turns a failure to get a usable server connection into
// what the client should see. A server's own error (bad password for the
// server-side user, unknown database, a failing init query) keeps the
// server's SQLSTATE and words.
func serverErrorFor(err error, severity, db string) *clientError {
	var pgErr *pgconn.PgError
	var srvErr *pool.ServerError
	var dialErr *pool.DialError
	var ce *clientError
	switch {
	case errors.As(err, &ce):
		ce.severity = severity
		return ce
	case errors.As(err, &srvErr):
		f := srvErr.Fields
		return &clientError{severity: severity, code: f.Code, message: f.Message, detail: f.Detail, hint: f.Hint}
	case errors.As(err, &dialErr) && dialErr.InInit:
		e := &clientError{severity: severity, code: codeCannotConnect,
			message: fmt.Sprintf("init query of database %q failed: %v", db, dialErr.Err),
			hint:    "Fix init_query for this database in the pgpoolx configuration."}
		if errors.As(dialErr.Err, &pgErr) {
			// The server's own SQLSTATE and words.
			e.code, e.detail = pgErr.Code, pgErr.Detail
			e.message = fmt.Sprintf("init query of database %q failed: %s", db, pgErr.Message)
		}
		return e
	case errors.As(err, &pgErr):
		return &clientError{severity: severity, code: pgErr.Code, message: pgErr.Message, detail: pgErr.Detail, hint: pgErr.Hint}
	case errors.Is(err, pool.ErrAcquireTimeout):
		return &clientError{severity: severity, code: codeTooManyConnections,
			message: fmt.Sprintf("timed out waiting for a free server connection to database %q", db),
			hint:    "All server connections of the pool are busy; raise pool_size or acquire_timeout, or shorten transactions."}
	case errors.Is(err, pool.ErrClosed):
		return &clientError{severity: severity, code: codeAdminShutdown, message: "pgpoolx is shutting down"}
	case errors.As(err, &dialErr):
		return &clientError{severity: severity, code: codeCannotConnect,
			message: fmt.Sprintf("pgpoolx cannot connect to the server of database %q: %v", db, dialErr.Err)}
	default:
		return &clientError{severity: severity, code: codeConnectionFailure,
			message: fmt.Sprintf("server connection for database %q failed: %v", db, err)}
	}
}

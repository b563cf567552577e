// Package initquery runs a database's init query on a new server
// connection and reports the baseline settings it leaves behind.
package initquery

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// ErrOpenTransaction is returned for an init query that leaves a
// transaction open: the connection could never be shared.
var ErrOpenTransaction = errors.New("the init query left a transaction open; end it with COMMIT")

// baselineQuery lists the settings changed in this session, which after
// the init query are exactly the ones it changed. RESET would take them
// back to the connection's startup values, so they are kept to restore.
const baselineQuery = `SELECT lower(name), setting FROM pg_settings WHERE source = 'session'`

// Run executes query (one or more statements, as a simple query) and
// returns the settings it changed, by lowercase name. An empty query runs
// nothing and changes nothing. A server error is returned as the
// *pgconn.PgError the server sent.
func Run(ctx context.Context, conn *pgconn.PgConn, query string) (map[string]string, error) {
	baseline := map[string]string{}
	if strings.TrimSpace(query) == "" {
		return baseline, nil
	}
	if _, err := conn.Exec(ctx, query).ReadAll(); err != nil {
		return nil, err
	}
	if conn.TxStatus() != 'I' {
		return nil, ErrOpenTransaction
	}
	rr := conn.ExecParams(ctx, baselineQuery, nil, nil, nil, nil)
	for rr.NextRow() {
		v := rr.Values()
		baseline[string(v[0])] = string(v[1])
	}
	if _, err := rr.Close(); err != nil {
		return nil, fmt.Errorf("read baseline settings: %w", err)
	}
	return baseline, nil
}

// Package initquery runs a database's init query on a new server
// connection and reports the baseline settings it leaves behind.
package initquery

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// ErrOpenTransaction is returned for an init query that leaves a
// transaction open: the connection could never be shared.
var ErrOpenTransaction = errors.New("the init query left a transaction open; end it with COMMIT")

// baselineQuery lists the settings changed in this session, which after
// the init query are exactly the ones it changed. RESET would take them
// back to the connection's startup values, so they are kept to restore.
const baselineQuery = `SELECT lower(name), setting FROM pg_catalog.pg_settings WHERE source = 'session'`

// Querier runs a simple query on a server connection, handing each row's
// values to onRow (if not nil). A server error is its error; so is a
// transaction left open.
type Querier interface {
	Query(ctx context.Context, sql string, onRow func(values [][]byte)) error
}

// Run executes query (one or more statements, as a simple query) and
// returns the settings it changed, by lowercase name. An empty query runs
// nothing and changes nothing.
func Run(ctx context.Context, conn Querier, query string) (map[string]string, error) {
	baseline := map[string]string{}
	if strings.TrimSpace(query) == "" {
		return baseline, nil
	}
	if err := conn.Query(ctx, query, nil); err != nil {
		return nil, err
	}
	err := conn.Query(ctx, baselineQuery, func(v [][]byte) {
		if len(v) == 2 {
			baseline[string(v[0])] = string(v[1])
		}
	})
	if err != nil {
		return nil, fmt.Errorf("read baseline settings: %w", err)
	}
	return baseline, nil
}

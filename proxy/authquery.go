package proxy

import (
	"context"
	"errors"
	"strings"

	"go.uber.org/zap"

	"github.com/pgpoolx/pgpoolx/auth"
	"github.com/pgpoolx/pgpoolx/config"
	"github.com/pgpoolx/pgpoolx/pool"
	"github.com/pgpoolx/pgpoolx/session"
)

// auth.query: the password of a user not listed in auth.users is looked up
// in PostgreSQL, in the database the client asked for, through a small pool
// of connections logged in as auth.query_user.

// lookupPoolSize bounds the connections each database's lookups use.
const lookupPoolSize = 2

// lookupSecret runs auth.query for user in database db. found is false
// when the query returns no row or a NULL password.
func (s *Server) lookupSecret(ctx context.Context, db string, dbc *config.Database, user string) (sec auth.Secret, found bool, err error) {
	cfg := s.config()
	p := s.lookupPool(cfg, db, dbc)
	conn, err := p.Acquire(ctx)
	if err != nil {
		return auth.Secret{}, false, err
	}
	var password string
	var rows int
	sql := strings.ReplaceAll(cfg.Auth.Query, "$1", session.Literal(user))
	qctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout.D())
	err = conn.Query(qctx, sql, func(values [][]byte) {
		rows++
		if len(values) >= 2 && values[1] != nil {
			password = string(values[1])
		}
	})
	cancel()
	var se *pool.ServerError
	switch {
	case err == nil:
		p.Release(conn)
	case errors.As(err, &se):
		p.Release(conn)
		s.log.Error("auth.query failed", zap.String("db", db), zap.Error(err))
		return auth.Secret{}, false, err
	default:
		p.Destroy(conn, "auth.query failed")
		return auth.Secret{}, false, err
	}
	if rows != 1 || password == "" {
		return auth.Secret{}, false, nil
	}
	sec, err = auth.ParseSecret(user, password)
	if err != nil {
		// Not a verifier pgpoolx can use: say so, without the value.
		s.log.Warn("auth.query returned a password pgpoolx cannot use", zap.String("db", db), zap.String("user", user), zap.Error(err))
		return auth.Secret{}, false, nil
	}
	return sec, true, nil
}

// lookupPool returns the pool that runs auth.query in database db.
func (s *Server) lookupPool(cfg *config.Config, db string, dbc *config.Database) *pool.Pool {
	opts := lookupOptions(cfg, dbc)
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.lookups[db]
	if !ok {
		p = pool.New(opts, s.log.Named("auth_query").With(zap.String("db", db)))
		s.lookups[db] = p
	} else if p.Options() != opts {
		p.SetOptions(opts)
	}
	return p
}

func lookupOptions(cfg *config.Config, dbc *config.Database) pool.Options {
	opts := poolOptions(cfg, dbc, cfg.Auth.QueryUser)
	opts.Password = cfg.Auth.QueryPassword
	opts.Size = lookupPoolSize
	opts.InitQuery = ""
	opts.AcquireTimeout = cfg.ConnectTimeout.D()
	return opts
}

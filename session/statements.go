package session

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"

	"github.com/pgpoolx/pgpoolx/wire"
)

// Statement is a client's named prepared statement as pgpoolx prepares it
// on server connections. Its server-side name is derived from the
// statement's text and parameter types, so every client that prepares the
// same statement shares one copy per server connection, whatever name
// each client gave it.
type Statement struct {
	ServerName string
	// Parse is the body of a Parse message that prepares the statement
	// under ServerName. It is never modified.
	Parse []byte
	// Effect is what running the statement does to session state.
	Effect Effect
}

// ServerNamePrefix starts the names of statements pgpoolx prepares on
// servers.
const ServerNamePrefix = "pgpoolx_"

// ClosedName is a statement name no server connection ever has: a client's
// Close of a named statement is sent as a Close of this name, so the
// server answers CloseComplete in order and shared statements stay.
const ClosedName = ServerNamePrefix + "closed"

// ErrMalformedParse reports a Parse message that does not hold a name.
var ErrMalformedParse = errors.New("malformed Parse message")

// SplitParse splits a Parse body into the statement name and the rest
// (query text and parameter types).
func SplitParse(body []byte) (name, rest []byte, err error) {
	name, rest, ok := wire.CString(body)
	if !ok {
		return nil, nil, ErrMalformedParse
	}
	return name, rest, nil
}

// NewStatement makes the server-side form of a statement from the part of
// a Parse body after the name.
func NewStatement(rest []byte, effect Effect) *Statement {
	sum := sha256.Sum256(rest)
	name := ServerNamePrefix + hex.EncodeToString(sum[:12])
	parse := make([]byte, 0, len(name)+1+len(rest))
	parse = append(append(append(parse, name...), 0), rest...)
	return &Statement{ServerName: name, Parse: parse, Effect: effect}
}

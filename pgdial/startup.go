package pgdial

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgpoolx/pgpoolx/auth"
	"github.com/pgpoolx/pgpoolx/wire"
)

const (
	// maxMessageLen bounds every message body the server sends before
	// ReadyForQuery. Real ones are tens of bytes, an ErrorResponse a few
	// hundred; the bound keeps a broken or hostile server from making us
	// allocate more.
	maxMessageLen = 1 << 20
	// maxParams bounds the distinct ParameterStatus names kept; PostgreSQL
	// sends about fifteen.
	maxParams = 1000
	// maxSecretKeyLen is protocol 3.2's ceiling for BackendKeyData's key.
	maxSecretKeyLen = 256
)

// Message types a server sends during startup that wire has no name for.
const (
	msgAuthentication           byte = 'R'
	msgNegotiateProtocolVersion byte = 'v'
)

// Authentication request codes, the first int32 of an 'R' message.
const (
	authOK            = 0
	authKerberosV5    = 2
	authCleartext     = 3
	authMD5           = 5
	authSCMCredential = 6
	authGSS           = 7
	authGSSContinue   = 8
	authSSPI          = 9
	authSASL          = 10
	authSASLContinue  = 11
	authSASLFinal     = 12
)

// startup is one run of the startup protocol on a connection, from the
// StartupMessage to ReadyForQuery.
type startup struct {
	r    *wire.Reader // the server's messages, bounded by maxMessageLen
	w    io.Writer    // unbuffered: a handful of small writes in all
	cfg  *Config
	rand io.Reader // for the SCRAM nonce

	step  string // for error messages: what we were doing
	body  []byte // the current message's body, valid until the next read
	scram *scramClient
	// authenticated is set by AuthenticationOk.
	authenticated bool

	pid       uint32
	secretKey []byte
	params    map[string]string
}

func (s *startup) run(ctx context.Context) error {
	s.step = "startup"
	if err := s.write(startupMessage(s.cfg)); err != nil {
		return ioError(ctx, s.step, err)
	}
	s.step = "authentication"
	s.params = make(map[string]string)
	for {
		typ, err := s.next()
		if err != nil {
			return ioError(ctx, s.step, err)
		}
		switch typ {
		case msgAuthentication:
			err = s.authRequest(ctx)
		case wire.ParameterStatus:
			err = s.parameterStatus()
		case wire.BackendKeyData:
			if len(s.body) < 4+4 || len(s.body) > 4+maxSecretKeyLen {
				return s.malformed("BackendKeyData")
			}
			s.pid = binary.BigEndian.Uint32(s.body)
			s.secretKey = slices.Clone(s.body[4:])
		case wire.NoticeResponse, msgNegotiateProtocolVersion:
			// A notice is for a person; we asked for 3.0 with no protocol
			// options, which every server since 7.4 speaks, so a
			// NegotiateProtocolVersion has nothing to say to us.
		case wire.ErrorResponse:
			return s.serverError()
		case wire.ReadyForQuery:
			if !s.authenticated {
				return fmt.Errorf("%w: it sent ReadyForQuery before AuthenticationOk", ErrProtocol)
			}
			if len(s.body) != 1 {
				return s.malformed("ReadyForQuery")
			}
			return nil
		default:
			return fmt.Errorf("%w: unexpected message type %q during %s", ErrProtocol, typ, s.step)
		}
		if err != nil {
			return err
		}
	}
}

// next reads the next message into s.body.
func (s *startup) next() (byte, error) {
	typ, _, err := s.r.Next()
	if err != nil {
		return 0, err
	}
	s.body, err = s.r.ReadBody(s.body[:0])
	return typ, err
}

func (s *startup) write(msg []byte) error {
	_, err := s.w.Write(msg)
	return err
}

func (s *startup) malformed(what string) error {
	return fmt.Errorf("%w: malformed %s message during %s", ErrProtocol, what, s.step)
}

// serverError turns the ErrorResponse in s.body into a *pgconn.PgError.
func (s *startup) serverError() error {
	var msg pgproto3.ErrorResponse
	if err := msg.Decode(s.body); err != nil {
		return s.malformed("ErrorResponse")
	}
	return pgconn.ErrorResponseToPgError(&msg)
}

func (s *startup) parameterStatus() error {
	name, rest, ok1 := wire.CString(s.body)
	value, rest, ok2 := wire.CString(rest)
	if !ok1 || !ok2 || len(rest) != 0 {
		return s.malformed("ParameterStatus")
	}
	if _, seen := s.params[string(name)]; !seen && len(s.params) >= maxParams {
		return fmt.Errorf("%w: more than %d ParameterStatus names", ErrProtocol, maxParams)
	}
	s.params[string(name)] = string(value)
	return nil
}

// authRequest answers an Authentication message.
func (s *startup) authRequest(ctx context.Context) error {
	if len(s.body) < 4 {
		return s.malformed("Authentication")
	}
	code, data := binary.BigEndian.Uint32(s.body), s.body[4:]
	if s.authenticated {
		return fmt.Errorf("%w: an authentication request after AuthenticationOk", ErrProtocol)
	}
	if s.scram != nil && code != authOK && code != authSASLContinue && code != authSASLFinal {
		return fmt.Errorf("%w: authentication request %d in the middle of SCRAM", ErrProtocol, code)
	}
	cr := &s.cfg.Credentials
	var err error
	switch code {
	case authOK:
		if s.scram != nil && !s.scram.verified() {
			return fmt.Errorf("%w: it sent AuthenticationOk without a SCRAM server signature", ErrServerProof)
		}
		s.authenticated = true
		s.step = "startup after authentication"
		return nil

	case authCleartext:
		if cr.Password == "" {
			return fmt.Errorf("%w: the server asks for a cleartext password; given: %s", ErrNoCredentials, cr.kinds())
		}
		err = s.write(passwordMessage(cr.Password))

	case authMD5:
		if len(data) != 4 {
			return s.malformed("AuthenticationMD5Password")
		}
		hash := strings.ToLower(cr.MD5Hash)
		if cr.Password != "" {
			hash = auth.MD5Hash(s.cfg.User, cr.Password)
		}
		if hash == "" {
			return fmt.Errorf("%w: the server asks for md5, which needs a password or an md5 hash; given: %s", ErrNoCredentials, cr.kinds())
		}
		err = s.write(passwordMessage(string(auth.MD5Response(hash, [4]byte(data)))))

	case authSASL:
		mechanisms, ok := saslMechanisms(data)
		if !ok {
			return s.malformed("AuthenticationSASL")
		}
		if !slices.Contains(mechanisms, saslMechanismSCRAM) {
			return fmt.Errorf("%w: the server offers SASL mechanisms %q, and only %s is supported", ErrUnsupportedAuth, mechanisms, saslMechanismSCRAM)
		}
		if cr.Password == "" && !cr.hasSCRAMKeys() {
			return fmt.Errorf("%w: the server asks for SCRAM-SHA-256, which needs a password or SCRAM keys; given: %s", ErrNoCredentials, cr.kinds())
		}
		s.scram = &scramClient{password: cr.Password, clientKey: cr.SCRAMClientKey, serverKey: cr.SCRAMServerKey}
		var first string
		if first, err = s.scram.clientFirst(s.rand); err != nil {
			return err
		}
		err = s.write(saslInitialResponse(saslMechanismSCRAM, first))

	case authSASLContinue, authSASLFinal:
		if s.scram == nil {
			return fmt.Errorf("%w: a SASL continuation without a SASL exchange", ErrProtocol)
		}
		if code == authSASLFinal {
			return s.scram.serverFinal(data)
		}
		var final string
		if final, err = s.scram.serverFirst(ctx, data); err != nil {
			return err
		}
		err = s.write(saslResponse(final))

	case authKerberosV5:
		return fmt.Errorf("%w: Kerberos V5", ErrUnsupportedAuth)
	case authSCMCredential:
		return fmt.Errorf("%w: SCM credentials (Unix-domain sockets only)", ErrUnsupportedAuth)
	case authGSS, authGSSContinue:
		return fmt.Errorf("%w: GSSAPI", ErrUnsupportedAuth)
	case authSSPI:
		return fmt.Errorf("%w: SSPI", ErrUnsupportedAuth)
	default:
		return fmt.Errorf("%w: unknown authentication request %d", ErrUnsupportedAuth, code)
	}
	if err != nil {
		return ioError(ctx, s.step, err)
	}
	return nil
}

// saslMechanisms reads AuthenticationSASL's list: strings, each ended by a
// NUL, and an empty one to end the list.
func saslMechanisms(data []byte) ([]string, bool) {
	var list []string
	for {
		name, rest, ok := wire.CString(data)
		if !ok {
			return nil, false
		}
		if len(name) == 0 {
			return list, len(rest) == 0
		}
		list, data = append(list, string(name)), rest
	}
}

// startupMessage is protocol 3.0's StartupMessage: user, database, then
// Params in name order, so the bytes are the same from one run to the next.
func startupMessage(cfg *Config) []byte {
	msg := make([]byte, 4, 128)
	msg = binary.BigEndian.AppendUint32(msg, wire.ProtocolVersion30)
	add := func(name, value string) {
		msg = append(append(msg, name...), 0)
		msg = append(append(msg, value...), 0)
	}
	add("user", cfg.User)
	add("database", cfg.Database)
	names := make([]string, 0, len(cfg.Params))
	for name := range cfg.Params {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		add(name, cfg.Params[name])
	}
	msg = append(msg, 0)
	binary.BigEndian.PutUint32(msg, uint32(len(msg)))
	return msg
}

// passwordMessage carries a cleartext password or an md5 response.
func passwordMessage(password string) []byte {
	msg := wire.AppendHeader(nil, wire.PasswordMessage, len(password)+1)
	return append(append(msg, password...), 0)
}

func saslInitialResponse(mechanism, data string) []byte {
	msg := wire.AppendHeader(nil, wire.PasswordMessage, len(mechanism)+1+4+len(data))
	msg = append(append(msg, mechanism...), 0)
	msg = binary.BigEndian.AppendUint32(msg, uint32(len(data)))
	return append(msg, data...)
}

func saslResponse(data string) []byte {
	return append(wire.AppendHeader(nil, wire.PasswordMessage, len(data)), data...)
}

package pgdial

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/pgpoolx/pgpoolx/auth"
)

const (
	saslMechanismSCRAM = "SCRAM-SHA-256"
	scramKeyLen        = sha256.Size
	// scramNonceLen is how many random bytes make our nonce, as in libpq.
	scramNonceLen = 18
	// gs2Header says the client does not support channel binding, so a
	// server offering SCRAM-SHA-256-PLUS has no downgrade to suspect.
	gs2Header = "n,,"
	// maxQuoted bounds how much of a server's SCRAM error text goes into
	// our error.
	maxQuoted = 64
)

type scramState uint8

const (
	scramWaitServerFirst scramState = iota + 1
	scramWaitServerFinal
	scramVerified
	scramFailed
)

// scramClient is the client side of one SCRAM-SHA-256 exchange (RFC 5802
// and 7677) as PostgreSQL runs it: no channel binding, and an empty user
// name, since the StartupMessage names the user.
type scramClient struct {
	password string
	// clientKey and serverKey are given, or derived from password once the
	// server has named the salt and iteration count.
	clientKey, serverKey []byte

	state           scramState
	clientNonce     string
	clientFirstBare string
	authMessage     string
}

func (c *scramClient) verified() bool { return c.state == scramVerified }

// clientFirst returns the client-first-message for SASLInitialResponse.
func (c *scramClient) clientFirst(rand io.Reader) (string, error) {
	var raw [scramNonceLen]byte
	if _, err := io.ReadFull(rand, raw[:]); err != nil {
		return "", fmt.Errorf("make a SCRAM nonce: %w", err)
	}
	c.clientNonce = base64.StdEncoding.EncodeToString(raw[:])
	c.clientFirstBare = "n=,r=" + c.clientNonce
	c.state = scramWaitServerFirst
	return gs2Header + c.clientFirstBare, nil
}

// serverFirst takes the server-first-message of AuthenticationSASLContinue
// and returns the client-final-message with our proof for SASLResponse.
// Deriving the keys from a password can take long if the server asks for
// many iterations; ctx bounds the wait (the work itself runs to its end).
func (c *scramClient) serverFirst(ctx context.Context, data []byte) (string, error) {
	if c.state != scramWaitServerFirst {
		return "", fmt.Errorf("%w: a second SCRAM server-first-message", ErrProtocol)
	}
	c.state = scramFailed
	msg := string(data)
	nonce, salt, iterations, err := parseServerFirst(msg, c.clientNonce)
	if err != nil {
		return "", fmt.Errorf("%w: SCRAM server-first-message: %s", ErrProtocol, err)
	}
	if c.clientKey == nil {
		if c.clientKey, c.serverKey, err = saltedKeys(ctx, c.password, salt, iterations); err != nil {
			return "", err
		}
	}
	withoutProof := "c=" + base64.StdEncoding.EncodeToString([]byte(gs2Header)) + ",r=" + nonce
	c.authMessage = c.clientFirstBare + "," + msg + "," + withoutProof
	storedKey := sha256.Sum256(c.clientKey)
	proof := hmacSHA256(storedKey[:], c.authMessage)
	subtle.XORBytes(proof, proof, c.clientKey)
	c.state = scramWaitServerFinal
	return withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof), nil
}

// serverFinal checks the server's signature in the server-final-message of
// AuthenticationSASLFinal: only a server that knows the ServerKey can make
// it.
func (c *scramClient) serverFinal(data []byte) error {
	if c.state != scramWaitServerFinal {
		return fmt.Errorf("%w: a SCRAM server-final-message out of turn", ErrProtocol)
	}
	c.state = scramFailed
	first, _, _ := strings.Cut(string(data), ",") // extensions may follow
	if e, ok := strings.CutPrefix(first, "e="); ok {
		if len(e) > maxQuoted {
			e = e[:maxQuoted] + "..."
		}
		return fmt.Errorf("the server ended SCRAM with error %q", e)
	}
	v, ok := strings.CutPrefix(first, "v=")
	if !ok {
		return fmt.Errorf("%w: the SCRAM server-final-message has no signature", ErrProtocol)
	}
	got, err := base64.StdEncoding.DecodeString(v)
	if err != nil || !hmac.Equal(got, hmacSHA256(c.serverKey, c.authMessage)) {
		return fmt.Errorf("%w: its SCRAM server signature is wrong", ErrServerProof)
	}
	c.state = scramVerified
	return nil
}

// parseServerFirst reads "r=<nonce>,s=<salt>,i=<iterations>[,extensions]".
// The nonce must be ours with the server's added.
func parseServerFirst(msg, clientNonce string) (nonce string, salt []byte, iterations int, err error) {
	if strings.HasPrefix(msg, "m=") {
		return "", nil, 0, errors.New("it demands a SCRAM extension we do not know")
	}
	attrs := strings.SplitN(msg, ",", 4)
	if len(attrs) < 3 {
		return "", nil, 0, errors.New(`want "r=<nonce>,s=<salt>,i=<iterations>"`)
	}
	nonce, ok := strings.CutPrefix(attrs[0], "r=")
	if !ok || len(nonce) <= len(clientNonce) || !strings.HasPrefix(nonce, clientNonce) || !auth.IsPrintable(nonce) {
		return "", nil, 0, errors.New("the server's nonce does not extend ours")
	}
	saltText, ok := strings.CutPrefix(attrs[1], "s=")
	if salt, err = base64.StdEncoding.DecodeString(saltText); !ok || err != nil || len(salt) == 0 {
		return "", nil, 0, errors.New("the salt is not base64")
	}
	iterText, ok := strings.CutPrefix(attrs[2], "i=")
	if iterations, err = strconv.Atoi(iterText); !ok || err != nil || iterations < 1 || iterations > math.MaxInt32 {
		return "", nil, 0, errors.New("the iteration count is not a number in 1..2147483647")
	}
	return nonce, salt, iterations, nil
}

// saltedKeys derives ClientKey and ServerKey from a password. PBKDF2 cannot
// be interrupted, so it runs on its own and is abandoned, not stopped, when
// ctx ends first: a server asking for two billion iterations costs a core
// for some minutes, but never holds up the caller beyond ctx.
func saltedKeys(ctx context.Context, password string, salt []byte, iterations int) (clientKey, serverKey []byte, err error) {
	type result struct {
		clientKey, serverKey []byte
		err                  error
	}
	done := make(chan result, 1)
	go func() {
		ck, sk, err := auth.SCRAMKeys(password, salt, iterations)
		done <- result{ck, sk, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, nil, fmt.Errorf("derive SCRAM keys from the password: %w", r.err)
		}
		return r.clientKey, r.serverKey, nil
	case <-ctx.Done():
		return nil, nil, fmt.Errorf("gave up deriving SCRAM keys from the password with %d iterations: %w", iterations, ctx.Err())
	}
}

func hmacSHA256(key []byte, msg string) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(msg))
	return mac.Sum(nil)
}

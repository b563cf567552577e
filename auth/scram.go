package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
)

// MechanismSCRAMSHA256 is the only SASL mechanism offered. Without channel binding
// there is no SCRAM-SHA-256-PLUS.
const MechanismSCRAMSHA256 = "SCRAM-SHA-256"

// scramNonceLen is the number of random bytes in the server nonce, as in
// PostgreSQL's SCRAM_RAW_NONCE_LEN.
const scramNonceLen = 18

var (
	// ErrBadPassword means the client's proof did not match: a wrong password, or an
	// unknown user behind a decoy. Send 28P01.
	ErrBadPassword = errors.New("auth: password authentication failed")
	// ErrMalformed wraps every complaint about what the client sent in the SASL
	// exchange: bad syntax, an unknown mechanism, channel binding, a nonce that does
	// not match. Send 08P01.
	ErrMalformed = errors.New("auth: malformed SCRAM message")

	errOutOfOrder = errors.New("auth: SCRAM step out of order, or conversation not made by NewSCRAM")
)

func malformed(detail string) error {
	return fmt.Errorf("%w: %s", ErrMalformed, detail)
}

type scramState uint8

const (
	waitClientFirst scramState = iota
	waitClientFinal
	scramDone
)

// SCRAM is one SCRAM-SHA-256 server conversation (RFC 5802 and RFC 7677 as
// PostgreSQL does them): Mechanisms for AuthenticationSASL, ClientFirst for the
// SASLInitialResponse, ClientFinal for the SASLResponse. Every step may be taken
// once; after an error the conversation is over. A SCRAM is not safe for concurrent
// use, which a conversation never needs.
type SCRAM struct {
	v     scramVerifier
	decoy bool
	rand  io.Reader
	state scramState

	// Remembered from ClientFirst to check ClientFinal.
	cbind           string // the gs2 header in base64, which the client echoes as c=
	nonce           string // client nonce + server nonce
	clientFirstBare string
	serverFirst     string

	clientKey []byte // the client's ClientKey, once its proof matched
}

// NewSCRAM starts a conversation that checks the client against s. rand supplies the
// server nonce; nil means crypto/rand. It fails if s cannot do SCRAM (CanSCRAM).
func NewSCRAM(s Secret, rand io.Reader) (*SCRAM, error) {
	if !s.CanSCRAM() {
		return nil, fmt.Errorf("auth: %v has no SCRAM-SHA-256 verifier", s)
	}
	return &SCRAM{v: s.scram, rand: rand}, nil
}

// NewSCRAMDecoy starts a conversation for a user the config does not know. It runs
// like a real one, with a salt that stays the same for the same name for the life of
// the process, and fails with ErrBadPassword at ClientFinal, so a client cannot tell
// an unknown user from a wrong password. rand is as for NewSCRAM.
func NewSCRAMDecoy(user string, rand io.Reader) *SCRAM {
	key := decoyKey()
	derive := func(label string) []byte {
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(label))
		mac.Write([]byte{0})
		mac.Write([]byte(user))
		return mac.Sum(nil)
	}
	v := scramVerifier{
		iterations: DefaultSCRAMIterations,
		salt:       string(derive("salt")[:scramSaltLen]),
	}
	copy(v.storedKey[:], derive("StoredKey"))
	copy(v.serverKey[:], derive("ServerKey"))
	return &SCRAM{v: v, decoy: true, rand: rand}
}

// decoyKey keys the decoy salts. It is secret so that nobody can compute a decoy's
// salt from the user name and so spot it; PostgreSQL keeps the same kind of key in
// pg_control. Ours lasts as long as the process.
var decoyKey = sync.OnceValue(func() []byte {
	key := make([]byte, sha256.Size)
	rand.Read(key) // never fails: crypto/rand crashes the program instead
	return key
})

// Mechanisms lists the SASL mechanisms to advertise in AuthenticationSASL.
func (c *SCRAM) Mechanisms() []string {
	return []string{MechanismSCRAMSHA256}
}

// ClientFirst takes the mechanism and data of the client's SASLInitialResponse and
// returns the server-first-message for AuthenticationSASLContinue. The gs2 header
// must be "n,," or "y,,"; channel binding ("p=") and an authorization identity are
// refused. The user name in the message is ignored, as PostgreSQL ignores it: the
// startup message names the user.
func (c *SCRAM) ClientFirst(mechanism string, data []byte) (serverFirst []byte, err error) {
	if c.state != waitClientFirst {
		return nil, errOutOfOrder
	}
	r := c.rand
	if r == nil {
		r = rand.Reader
	}
	var raw [scramNonceLen]byte
	if _, err := io.ReadFull(r, raw[:]); err != nil {
		c.state = scramDone
		return nil, fmt.Errorf("auth: reading SCRAM server nonce: %w", err)
	}
	return c.clientFirst(mechanism, data, base64.StdEncoding.EncodeToString(raw[:]))
}

// clientFirst is ClientFirst with the server nonce given, for the RFC test vectors.
func (c *SCRAM) clientFirst(mechanism string, data []byte, serverNonce string) ([]byte, error) {
	if c.state != waitClientFirst || c.v.iterations == 0 {
		return nil, errOutOfOrder
	}
	c.state = scramDone
	if mechanism != MechanismSCRAMSHA256 {
		return nil, malformed("client selected an invalid SASL authentication mechanism")
	}
	msg := string(data)
	if msg == "" || strings.IndexByte(msg, 0) >= 0 {
		return nil, malformed("client-first-message is empty or contains a NUL byte")
	}

	var header, bare string
	switch {
	case strings.HasPrefix(msg, "n,,"), strings.HasPrefix(msg, "y,,"):
		header, bare = msg[:3], msg[3:]
	case msg[0] == 'p':
		return nil, malformed("the client selected SCRAM-SHA-256 without channel binding, but the message includes channel binding data")
	case strings.HasPrefix(msg, "n,a="), strings.HasPrefix(msg, "y,a="):
		return nil, malformed("client uses authorization identity, which is not supported")
	default:
		return nil, malformed("unexpected channel-binding flag in client-first-message")
	}

	attrs := strings.Split(bare, ",") // never empty
	if strings.HasPrefix(attrs[0], "m=") {
		return nil, malformed("client requires an unsupported SCRAM extension")
	}
	if _, ok := attrValue(attrs[0], 'n'); !ok {
		return nil, malformed(`expected attribute "n" in client-first-message`)
	}
	if len(attrs) < 2 {
		return nil, malformed(`expected attribute "r" in client-first-message`)
	}
	clientNonce, ok := attrValue(attrs[1], 'r')
	if !ok {
		return nil, malformed(`expected attribute "r" in client-first-message`)
	}
	if clientNonce == "" || !IsPrintable(clientNonce) {
		return nil, malformed("empty or non-printable characters in SCRAM nonce")
	}
	for _, a := range attrs[2:] {
		if !isExtension(a) {
			return nil, malformed("garbage at end of client-first-message")
		}
	}

	c.cbind = base64.StdEncoding.EncodeToString([]byte(header))
	c.nonce = clientNonce + serverNonce
	c.clientFirstBare = bare
	c.serverFirst = "r=" + c.nonce +
		",s=" + base64.StdEncoding.EncodeToString([]byte(c.v.salt)) +
		",i=" + strconv.Itoa(c.v.iterations)
	c.state = waitClientFinal
	return []byte(c.serverFirst), nil
}

// ClientFinal takes the data of the client's SASLResponse and, if the proof matches,
// returns the server-final-message for AuthenticationSASLFinal. A proof that does not
// match is ErrBadPassword; anything malformed is ErrMalformed.
func (c *SCRAM) ClientFinal(data []byte) (serverFinal []byte, err error) {
	if c.state != waitClientFinal {
		return nil, errOutOfOrder
	}
	c.state = scramDone
	msg := string(data)
	if msg == "" || strings.IndexByte(msg, 0) >= 0 {
		return nil, malformed("client-final-message is empty or contains a NUL byte")
	}

	// The proof comes last and signs everything before it.
	i := strings.LastIndex(msg, ",p=")
	if i < 0 {
		return nil, malformed(`expected attribute "p" at the end of client-final-message`)
	}
	withoutProof, proofText := msg[:i], msg[i+len(",p="):]

	attrs := strings.Split(withoutProof, ",") // never empty
	cbind, ok := attrValue(attrs[0], 'c')
	if !ok {
		return nil, malformed(`expected attribute "c" in client-final-message`)
	}
	if cbind != c.cbind {
		return nil, malformed("unexpected SCRAM channel-binding attribute in client-final-message")
	}
	if len(attrs) < 2 {
		return nil, malformed(`expected attribute "r" in client-final-message`)
	}
	nonce, ok := attrValue(attrs[1], 'r')
	if !ok {
		return nil, malformed(`expected attribute "r" in client-final-message`)
	}
	if nonce != c.nonce {
		return nil, malformed("SCRAM nonce mismatch")
	}
	for _, a := range attrs[2:] {
		if !isExtension(a) || a[0] == 'p' {
			return nil, malformed("garbage in client-final-message")
		}
	}
	proof, ok := decodeBase64(proofText)
	if !ok || len(proof) != scramKeyLen {
		return nil, malformed("invalid SCRAM proof")
	}

	authMessage := c.clientFirstBare + "," + c.serverFirst + "," + withoutProof
	clientSignature := hmacSHA256(c.v.storedKey[:], authMessage)
	clientKey := make([]byte, scramKeyLen)
	subtle.XORBytes(clientKey, proof, clientSignature)
	storedKey := sha256.Sum256(clientKey)
	match := subtle.ConstantTimeCompare(storedKey[:], c.v.storedKey[:]) == 1
	if !match || c.decoy {
		return nil, ErrBadPassword
	}
	c.clientKey = clientKey
	serverSignature := hmacSHA256(c.v.serverKey[:], authMessage)
	return []byte("v=" + base64.StdEncoding.EncodeToString(serverSignature)), nil
}

// ClientKey returns the ClientKey the client proved it has, after a
// successful ClientFinal (else nil). With the verifier's ServerKey it lets
// pgpoolx log in to PostgreSQL as the client, where the same verifier is
// stored, without knowing the password.
func (c *SCRAM) ClientKey() []byte { return c.clientKey }

// attrValue returns the value of attribute a if it is named name.
func attrValue(a string, name byte) (string, bool) {
	if len(a) < 2 || a[0] != name || a[1] != '=' {
		return "", false
	}
	return a[2:], true
}

// isExtension reports whether a is a well-formed attribute, "x=value" with x a letter.
func isExtension(a string) bool {
	if len(a) < 2 || a[1] != '=' {
		return false
	}
	x := a[0]
	return ('a' <= x && x <= 'z') || ('A' <= x && x <= 'Z')
}

// IsPrintable reports whether s is all RFC 5802 "printable": %x21-2B / %x2D-7E.
func IsPrintable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e || s[i] == ',' {
			return false
		}
	}
	return true
}

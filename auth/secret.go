package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

const (
	// DefaultSCRAMIterations is PostgreSQL's default scram_iterations, used for the
	// verifier derived from a plaintext secret.
	DefaultSCRAMIterations = 4096

	scramSaltLen = 16 // PostgreSQL's SCRAM_DEFAULT_SALT_LEN
	scramKeyLen  = sha256.Size
	scramPrefix  = "SCRAM-SHA-256$"
	md5Prefix    = "md5"
	md5HashLen   = len(md5Prefix) + 2*md5.Size
)

type secretKind uint8

const (
	kindNone secretKind = iota
	kindPlaintext
	kindMD5
	kindSCRAM
)

// Secret is what the config holds for one user: a plaintext password, an md5 hash
// ("md5" + hex(md5(password+username))) or a SCRAM-SHA-256 verifier exactly as
// PostgreSQL stores it in pg_authid.rolpassword
// ("SCRAM-SHA-256$<iter>:<salt b64>$<StoredKey b64>:<ServerKey b64>").
//
// A Secret never keeps the plaintext: ParseSecret turns a password into its md5 hash
// and a SCRAM verifier at once. It prints as its kind only, so it is safe to log. It
// is immutable and comparable (two parses of one plaintext differ in their salt).
// The zero Secret lets nobody in.
type Secret struct {
	user string
	kind secretKind
	// md5 is "md5" and 32 lowercase hex digits; empty when md5 cannot be used.
	md5 string
	// scram is valid when scram.iterations > 0.
	scram scramVerifier
}

// scramVerifier is a parsed rolpassword SCRAM secret. The salt is raw bytes held in
// a string, so that a verifier (and a Secret) is immutable and comparable.
type scramVerifier struct {
	iterations int
	salt       string
	storedKey  [scramKeyLen]byte
	serverKey  [scramKeyLen]byte
}

// ParseSecret reads the configured secret of user. It tells the three forms apart as
// PostgreSQL does, with one difference: a value that starts like a hash but is not a
// valid one ("SCRAM-SHA-256$..." that does not parse, or "md5" and 32 characters
// that are not all hex) is an error rather than a plaintext password, because in a
// config file it is far more likely a broken copy than a password.
//
// For a plaintext password it derives the SCRAM verifier here, with a random salt and
// DefaultSCRAMIterations, so that logins do not pay for PBKDF2. The password is used
// as is, without the SASLprep that PostgreSQL and its clients apply first (the
// standard library has no NFKC tables). That is the same for every ASCII password and
// for most others; a password SASLprep would change (non-ASCII spaces, soft hyphens,
// characters NFKC rewrites) fails SCRAM, so configure its verifier from pg_authid.
//
// Errors never quote the secret.
func ParseSecret(user, password string) (Secret, error) {
	switch {
	case password == "":
		return Secret{}, errors.New("auth: empty password")
	case strings.HasPrefix(password, scramPrefix):
		v, err := parseSCRAMVerifier(password)
		if err != nil {
			return Secret{}, err
		}
		return Secret{user: user, kind: kindSCRAM, scram: v}, nil
	case len(password) == md5HashLen && strings.HasPrefix(password, md5Prefix):
		digits := password[len(md5Prefix):]
		if _, err := hex.DecodeString(digits); err != nil {
			return Secret{}, errors.New(`auth: md5 secret must be "md5" and 32 hex digits`)
		}
		return Secret{user: user, kind: kindMD5, md5: md5Prefix + strings.ToLower(digits)}, nil
	}
	salt := make([]byte, scramSaltLen)
	rand.Read(salt) // never fails: crypto/rand crashes the program instead
	v, err := deriveSCRAM(password, salt, DefaultSCRAMIterations)
	if err != nil {
		return Secret{}, err
	}
	return Secret{user: user, kind: kindPlaintext, md5: MD5Hash(user, password), scram: v}, nil
}

// MD5Hash returns the md5 hash ("md5" + hex) the secret holds, or "".
// PostgreSQL's md5 login needs only that hash, not the password.
func (s Secret) MD5Hash() string { return s.md5 }

// SCRAMServerKey returns the ServerKey of the SCRAM verifier, or nil.
func (s Secret) SCRAMServerKey() []byte {
	if !s.CanSCRAM() {
		return nil
	}
	return bytes.Clone(s.scram.serverKey[:])
}

// CanMD5 reports whether the secret can check an md5 login: it is a plaintext
// password or an md5 hash.
func (s Secret) CanMD5() bool { return s.md5 != "" }

// CanSCRAM reports whether the secret can check a SCRAM-SHA-256 login: it is a
// plaintext password or a SCRAM verifier.
func (s Secret) CanSCRAM() bool { return s.scram.iterations > 0 }

// CheckMD5 verifies the client's PasswordMessage content for AuthenticationMD5Password
// with salt: "md5" + hex(md5(hex(md5(password+user)) + salt)). The user must be the
// one the secret was parsed for, since an md5 hash is bound to its user name. The
// comparison takes the same time wherever the response differs.
func (s Secret) CheckMD5(user string, salt [4]byte, response string) bool {
	if s.md5 == "" || user != s.user {
		return false
	}
	want := MD5Response(s.md5, salt)
	return subtle.ConstantTimeCompare([]byte(response), want) == 1
}

// String names the kind of secret and nothing of its content.
func (s Secret) String() string {
	switch s.kind {
	case kindPlaintext:
		return "auth.Secret(plaintext)"
	case kindMD5:
		return "auth.Secret(md5)"
	case kindSCRAM:
		return "auth.Secret(SCRAM-SHA-256)"
	}
	return "auth.Secret(none)"
}

// Format prints String for every verb, so that no verb (%#v, %x, %d) can dump the
// hash or the keys into a log line.
func (s Secret) Format(f fmt.State, _ rune) {
	io.WriteString(f, s.String())
}

// MD5Hash is the md5 secret PostgreSQL stores for user and password:
// "md5" + hex(md5(password+user)).
func MD5Hash(user, password string) string {
	sum := md5.Sum([]byte(password + user))
	return md5Prefix + hex.EncodeToString(sum[:])
}

// MD5Response is what a client answers to AuthenticationMD5Password given
// the stored hash ("md5" + hex(md5(hex part of the hash + salt))): pgpoolx
// checks clients' answers with it and answers servers with it.
func MD5Response(hash string, salt [4]byte) []byte {
	h := md5.New()
	h.Write([]byte(hash[len(md5Prefix):]))
	h.Write(salt[:])
	out := make([]byte, len(md5Prefix), md5HashLen)
	copy(out, md5Prefix)
	return hex.AppendEncode(out, h.Sum(nil))
}

// SCRAMVerifier is the SCRAM-SHA-256 secret PostgreSQL would store for password with
// this salt and iteration count, in pg_authid.rolpassword form. The password is used
// as is (see ParseSecret about SASLprep). It returns "" when the salt is empty or
// iterations is not in 1..MaxInt32, as PostgreSQL could not store that either.
func SCRAMVerifier(password string, salt []byte, iterations int) string {
	if len(salt) == 0 || iterations < 1 || iterations > math.MaxInt32 {
		return ""
	}
	v, err := deriveSCRAM(password, salt, iterations)
	if err != nil {
		return ""
	}
	return v.String()
}

func deriveSCRAM(password string, salt []byte, iterations int) (scramVerifier, error) {
	clientKey, serverKey, err := SCRAMKeys(password, salt, iterations)
	if err != nil {
		return scramVerifier{}, fmt.Errorf("auth: deriving SCRAM verifier: %w", err)
	}
	v := scramVerifier{iterations: iterations, salt: string(salt)}
	v.storedKey = sha256.Sum256(clientKey)
	copy(v.serverKey[:], serverKey)
	return v, nil
}

// SCRAMKeys derives SCRAM-SHA-256's ClientKey and ServerKey from a
// password (RFC 5802: HMAC of the PBKDF2-salted password).
func SCRAMKeys(password string, salt []byte, iterations int) (clientKey, serverKey []byte, err error) {
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, scramKeyLen)
	if err != nil {
		return nil, nil, err
	}
	return hmacSHA256(salted, "Client Key"), hmacSHA256(salted, "Server Key"), nil
}

func (v scramVerifier) String() string {
	b64 := base64.StdEncoding
	return scramPrefix + strconv.Itoa(v.iterations) + ":" + b64.EncodeToString([]byte(v.salt)) +
		"$" + b64.EncodeToString(v.storedKey[:]) + ":" + b64.EncodeToString(v.serverKey[:])
}

// parseSCRAMVerifier reads "SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>".
// It accepts only what PostgreSQL writes: canonical decimal and canonical base64, so
// that a parsed verifier prints back to the same text.
func parseSCRAMVerifier(s string) (scramVerifier, error) {
	bad := func(what string) (scramVerifier, error) {
		return scramVerifier{}, fmt.Errorf("auth: SCRAM-SHA-256 secret: %s", what)
	}
	iterSalt, keys, ok := strings.Cut(strings.TrimPrefix(s, scramPrefix), "$")
	if !ok {
		return bad(`want "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>"`)
	}
	iterText, saltText, ok1 := strings.Cut(iterSalt, ":")
	storedText, serverText, ok2 := strings.Cut(keys, ":")
	if !ok1 || !ok2 {
		return bad(`want "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>"`)
	}
	iterations, ok := parseIterations(iterText)
	if !ok {
		return bad("iteration count is not a number in 1..2147483647")
	}
	salt, ok := decodeBase64(saltText)
	if !ok || len(salt) == 0 {
		return bad("salt is not base64")
	}
	v := scramVerifier{iterations: iterations, salt: string(salt)}
	stored, ok := decodeBase64(storedText)
	if !ok || len(stored) != scramKeyLen {
		return bad("StoredKey is not 32 bytes of base64")
	}
	server, ok := decodeBase64(serverText)
	if !ok || len(server) != scramKeyLen {
		return bad("ServerKey is not 32 bytes of base64")
	}
	copy(v.storedKey[:], stored)
	copy(v.serverKey[:], server)
	return v, nil
}

// parseIterations accepts a decimal number in 1..MaxInt32 without sign, space or
// leading zero.
func parseIterations(s string) (int, bool) {
	if s == "" || s[0] == '0' || len(s) > 10 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return 0, false
	}
	return int(n), true
}

// decodeBase64 decodes padded standard base64 and insists on the canonical
// encoding; the standard decoder alone would skip newlines and ignore stray bits.
func decodeBase64(s string) ([]byte, bool) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || base64.StdEncoding.EncodeToString(b) != s {
		return nil, false
	}
	return b, true
}

func hmacSHA256(key []byte, msg string) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(msg))
	return mac.Sum(nil)
}

package pgdial

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"io"
	"testing"

	"github.com/pgpoolx/pgpoolx/wire"
)

// zeros is a rand that makes the client nonce the same every time, so that
// a seed can hold a SCRAM exchange that succeeds.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// fuzzKey is the ClientKey and the ServerKey of the fuzzed startups; keys,
// not a password, so that no input can make us run PBKDF2 for minutes.
var fuzzKey = bytes.Repeat([]byte{1}, scramKeyLen)

// FuzzStartup feeds arbitrary server bytes to the startup: it must never
// panic, and must end in ReadyForQuery only after AuthenticationOk and, if
// SCRAM began, after checking the server's signature.
func FuzzStartup(f *testing.F) {
	nonce := base64.StdEncoding.EncodeToString(make([]byte, scramNonceLen))
	serverFirst := "r=" + nonce + "srv,s=c2FsdA==,i=4096"
	authMessage := "n=,r=" + nonce + "," + serverFirst + ",c=biws,r=" + nonce + "srv"
	signature := base64.StdEncoding.EncodeToString(hmacSHA256(fuzzKey, authMessage))
	ok := [][]byte{authOKMsg, serverMsg(wire.ParameterStatus, cstr("a"), cstr("b")), keyMsg, readyMsg}
	for _, seed := range [][][]byte{
		ok,
		append([][]byte{authMsg(authCleartext)}, ok...),
		append([][]byte{authMsg(authMD5, []byte{1, 2, 3, 4})}, ok...),
		append([][]byte{saslMsg, authMsg(authSASLContinue, []byte(serverFirst)),
			authMsg(authSASLFinal, []byte("v="+signature))}, ok...),
		{serverMsg(wire.ErrorResponse, []byte("SFATAL\x00C28P01\x00Mno\x00\x00"))},
		{authMsg(authGSS)},
	} {
		f.Add(bytes.Join(seed, nil))
	}
	f.Fuzz(func(t *testing.T, server []byte) {
		s := startup{
			r:    wire.NewReader(bufio.NewReader(bytes.NewReader(server)), maxMessageLen),
			w:    io.Discard,
			cfg:  &Config{User: "u", Database: "d", Credentials: Credentials{Password: "pw", SCRAMClientKey: fuzzKey, SCRAMServerKey: fuzzKey}},
			rand: zeros{},
		}
		if err := s.run(t.Context()); err != nil {
			return
		}
		if !s.authenticated {
			t.Fatal("startup ended without AuthenticationOk")
		}
		if s.scram != nil && !s.scram.verified() {
			t.Fatal("startup ended without checking the server's SCRAM signature")
		}
	})
}

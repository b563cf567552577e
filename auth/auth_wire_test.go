package auth

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// The wire tests put this package between a real client (pgconn) and a stand-in
// server that speaks just enough of the protocol to authenticate and then say the
// session is ready.

const (
	methodMD5   = "md5"
	methodSCRAM = "scram-sha-256"

	txIdle          = 'I'
	noEncryption    = 'N'
	sqlstateBadPass = "28P01"
	sqlstateProto   = "08P01"
	wireTimeout     = 10 * time.Second
)

func TestWireAuthentication(t *testing.T) {
	secrets := map[string]string{
		"plain":    "pencil",
		"hashed":   MD5Hash("hashed", "pencil"),
		"verifier": SCRAMVerifier("pencil", []byte("0123456789abcdef"), DefaultSCRAMIterations),
		"unicode":  "pässwörd",
	}
	tests := []struct {
		name     string
		method   string
		user     string
		password string
		wantErr  error // on the server side; nil means the client must get in
	}{
		{name: "md5 plaintext", method: methodMD5, user: "plain", password: "pencil"},
		{name: "md5 plaintext wrong", method: methodMD5, user: "plain", password: "pencil2", wantErr: ErrBadPassword},
		{name: "md5 hash", method: methodMD5, user: "hashed", password: "pencil"},
		{name: "md5 hash wrong", method: methodMD5, user: "hashed", password: "Pencil", wantErr: ErrBadPassword},
		{name: "md5 unknown user", method: methodMD5, user: "ghost", password: "pencil", wantErr: ErrBadPassword},
		{name: "scram plaintext", method: methodSCRAM, user: "plain", password: "pencil"},
		{name: "scram plaintext wrong", method: methodSCRAM, user: "plain", password: "pencil2", wantErr: ErrBadPassword},
		{name: "scram plaintext non-ASCII", method: methodSCRAM, user: "unicode", password: "pässwörd"},
		{name: "scram verifier", method: methodSCRAM, user: "verifier", password: "pencil"},
		{name: "scram verifier wrong", method: methodSCRAM, user: "verifier", password: "pencil ", wantErr: ErrBadPassword},
		{name: "scram decoy", method: methodSCRAM, user: "ghost", password: "pencil", wantErr: ErrBadPassword},
		{name: "scram md5 secret gets a decoy", method: methodSCRAM, user: "hashed", password: "pencil", wantErr: ErrBadPassword},
	}
	parsed := map[string]Secret{}
	for user, password := range secrets {
		s, err := ParseSecret(user, password)
		if err != nil {
			t.Fatalf("ParseSecret(%q): %v", user, err)
		}
		parsed[user] = s
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), wireTimeout)
			defer cancel()
			addr, results := startWireServer(t, tt.method, parsed)

			host, port, _ := net.SplitHostPort(addr)
			config, err := pgconn.ParseConfig(fmt.Sprintf("host=%s port=%s user=%s dbname=app sslmode=disable", host, port, tt.user))
			if err != nil {
				t.Fatal(err)
			}
			config.Password = tt.password
			conn, clientErr := pgconn.ConnectConfig(ctx, config)
			if clientErr == nil {
				conn.Close(ctx)
			}

			var serverErr error
			select {
			case serverErr = <-results:
			case <-ctx.Done():
				t.Fatal("the server never finished the handshake")
			}
			if !errors.Is(serverErr, tt.wantErr) {
				t.Fatalf("server: %v, want %v (client: %v)", serverErr, tt.wantErr, clientErr)
			}
			if tt.wantErr == nil {
				if clientErr != nil {
					t.Fatalf("client: %v", clientErr)
				}
				return
			}
			var pgErr *pgconn.PgError
			if !errors.As(clientErr, &pgErr) || pgErr.Code != sqlstateBadPass {
				t.Fatalf("client: %v, want a %s error", clientErr, sqlstateBadPass)
			}
		})
	}
}

// startWireServer listens on a loopback port and authenticates every connection
// with method against secrets, reporting each verdict on the returned channel.
func startWireServer(t *testing.T, method string, secrets map[string]Secret) (string, <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	results := make(chan error, 4)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(wireTimeout))
				results <- serveWireAuth(conn, method, secrets)
			}()
		}
	}()
	return ln.Addr().String(), results
}

// serveWireAuth runs one connection: startup, authentication, the messages that
// make a session ready, and then waits for the client to terminate.
func serveWireAuth(conn net.Conn, method string, secrets map[string]Secret) error {
	client := pgproto3.NewBackend(conn, conn)
	user, err := receiveStartup(conn, client)
	if err != nil {
		return err
	}
	secret, known := secrets[user]
	switch method {
	case methodMD5:
		err = authenticateMD5(client, user, secret, known)
	case methodSCRAM:
		err = authenticateSCRAM(client, user, secret, known)
	default:
		err = fmt.Errorf("unknown method %q", method)
	}
	if err != nil {
		code := sqlstateBadPass
		if errors.Is(err, ErrMalformed) {
			code = sqlstateProto
		}
		client.Send(&pgproto3.ErrorResponse{
			Severity:            "FATAL",
			SeverityUnlocalized: "FATAL",
			Code:                code,
			Message:             fmt.Sprintf("password authentication failed for user %q", user),
		})
		if ferr := client.Flush(); ferr != nil {
			return errors.Join(err, ferr)
		}
		return err
	}

	client.Send(&pgproto3.AuthenticationOk{})
	client.Send(&pgproto3.ParameterStatus{Name: "client_encoding", Value: "UTF8"})
	client.Send(&pgproto3.ParameterStatus{Name: "standard_conforming_strings", Value: "on"})
	client.Send(&pgproto3.BackendKeyData{ProcessID: 4242, SecretKey: []byte{0, 0, 0, 42}})
	client.Send(&pgproto3.ReadyForQuery{TxStatus: txIdle})
	if err := client.Flush(); err != nil {
		return err
	}
	msg, err := client.Receive()
	if err != nil {
		return fmt.Errorf("waiting for Terminate: %w", err)
	}
	if _, ok := msg.(*pgproto3.Terminate); !ok {
		return fmt.Errorf("got %T, want Terminate", msg)
	}
	return nil
}

func receiveStartup(conn net.Conn, client *pgproto3.Backend) (string, error) {
	for {
		msg, err := client.ReceiveStartupMessage()
		if err != nil {
			return "", err
		}
		switch msg := msg.(type) {
		case *pgproto3.StartupMessage:
			return msg.Parameters["user"], nil
		case *pgproto3.SSLRequest, *pgproto3.GSSEncRequest:
			if _, err := conn.Write([]byte{noEncryption}); err != nil {
				return "", err
			}
		default:
			return "", fmt.Errorf("unexpected startup message %T", msg)
		}
	}
}

func authenticateMD5(client *pgproto3.Backend, user string, secret Secret, known bool) error {
	var salt [4]byte
	rand.Read(salt[:])
	client.Send(&pgproto3.AuthenticationMD5Password{Salt: salt})
	if err := client.Flush(); err != nil {
		return err
	}
	if err := client.SetAuthType(pgproto3.AuthTypeMD5Password); err != nil {
		return err
	}
	msg, err := client.Receive()
	if err != nil {
		return err
	}
	answer, ok := msg.(*pgproto3.PasswordMessage)
	if !ok {
		return fmt.Errorf("got %T, want PasswordMessage", msg)
	}
	if !known || !secret.CheckMD5(user, salt, answer.Password) {
		return ErrBadPassword
	}
	return nil
}

func authenticateSCRAM(client *pgproto3.Backend, user string, secret Secret, known bool) error {
	conv := NewSCRAMDecoy(user, nil)
	if known && secret.CanSCRAM() {
		var err error
		if conv, err = NewSCRAM(secret, nil); err != nil {
			return err
		}
	}
	client.Send(&pgproto3.AuthenticationSASL{AuthMechanisms: conv.Mechanisms()})
	if err := client.Flush(); err != nil {
		return err
	}
	if err := client.SetAuthType(pgproto3.AuthTypeSASL); err != nil {
		return err
	}
	msg, err := client.Receive()
	if err != nil {
		return err
	}
	initial, ok := msg.(*pgproto3.SASLInitialResponse)
	if !ok {
		return fmt.Errorf("got %T, want SASLInitialResponse", msg)
	}
	serverFirst, err := conv.ClientFirst(initial.AuthMechanism, initial.Data)
	if err != nil {
		return err
	}
	client.Send(&pgproto3.AuthenticationSASLContinue{Data: serverFirst})
	if err := client.Flush(); err != nil {
		return err
	}
	if err := client.SetAuthType(pgproto3.AuthTypeSASLContinue); err != nil {
		return err
	}
	if msg, err = client.Receive(); err != nil {
		return err
	}
	response, ok := msg.(*pgproto3.SASLResponse)
	if !ok {
		return fmt.Errorf("got %T, want SASLResponse", msg)
	}
	serverFinal, err := conv.ClientFinal(response.Data)
	if err != nil {
		return err
	}
	client.Send(&pgproto3.AuthenticationSASLFinal{Data: serverFinal})
	return nil
}

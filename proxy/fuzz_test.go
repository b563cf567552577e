package proxy

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/pgpoolx/pgpoolx/config"
)

// startupPacket builds a startup packet (or SSLRequest, CancelRequest,
// with code) with the given key/value pairs.
func startupPacket(code uint32, kv ...string) []byte {
	b := binary.BigEndian.AppendUint32(make([]byte, 4), code)
	for _, s := range kv {
		b = append(append(b, s...), 0)
	}
	if len(kv) > 0 {
		b = append(b, 0)
	}
	binary.BigEndian.PutUint32(b, uint32(len(b)))
	return b
}

func message(typ byte, body string) []byte {
	b := append([]byte{typ}, 0, 0, 0, 0)
	binary.BigEndian.PutUint32(b[1:], uint32(4+len(body)))
	return append(b, body...)
}

func concat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// fuzzServer is a pooler whose one database cannot be reached (nothing
// listens on port 1), with the admin console open: a client can get
// through startup, authentication and into the console, which is all
// that reads the client's bytes without a PostgreSQL behind it.
var fuzzServer = sync.OnceValue(func() *Server {
	cfg, err := config.Parse([]byte(`
listen: 127.0.0.1:0
admin_users: [admin]
max_message_bytes: 65536
client_login_timeout: 2s
connect_timeout: 1s
databases:
  app:
    host: 127.0.0.1
    port: 1
`), nil)
	if err != nil {
		panic(err)
	}
	s, err := NewServer(cfg, zap.NewNop())
	if err != nil {
		panic(err)
	}
	return s
})

// FuzzClientConnection feeds arbitrary bytes to pgpoolx as a client
// connection: startup packets, SSL, GSS and cancel requests, protocol
// negotiation, then admin console messages. The session must end,
// without a panic or a hang, when the bytes run out. Allocations are
// bounded by the startup packet limit and max_message_bytes.
func FuzzClientConnection(f *testing.F) {
	admin := startupPacket(3<<16, "user", "admin", "database", "pgpoolx")
	f.Add(concat(admin, message('Q', "SHOW POOLS\x00"), message('X', "")))
	f.Add(concat(admin, message('Q', "SHOW CONFIG; SHOW HELP;\x00"), message('P', "\x00SELECT 1\x00\x00\x00"), message('S', "")))
	f.Add(concat(admin, message('Q', "PAUSE nosuch\x00"), message('Q', "\x00")))
	f.Add(concat(startupPacket(80877103), admin))                      // SSLRequest, refused, then startup
	f.Add(concat(startupPacket(80877104), admin))                      // GSSENCRequest
	f.Add(startupPacket(80877102, "\x00\x00\x00\x01\x00\x00\x00\x02")) // CancelRequest
	f.Add(startupPacket(3<<16|2, "user", "u", "_pq_.x", "y"))
	f.Add(startupPacket(3<<16, "user", "u", "database", "app", "options", "-c search_path=a"))
	f.Add(startupPacket(3<<16, "user", "u", "database", "nosuch"))
	f.Add(startupPacket(3<<16, "user"))
	f.Add([]byte{0, 0, 0, 3})
	f.Add([]byte{0x7f, 0xff, 0xff, 0xff, 0, 3, 0, 0})
	f.Add(concat(admin, []byte{'Q', 0x7f, 0xff, 0xff, 0xff}))
	f.Fuzz(func(t *testing.T, data []byte) {
		srv := fuzzServer()
		ours, theirs := net.Pipe()
		c := newClient(srv, ours, 1)
		srv.wg.Add(1) // as acceptLoop does; serve calls Done
		done := make(chan struct{})
		go func() {
			defer close(done)
			c.serve(context.Background())
		}()
		go io.Copy(io.Discard, theirs)
		theirs.SetWriteDeadline(time.Now().Add(5 * time.Second))
		theirs.Write(data)
		theirs.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("client session did not end after its %d bytes", len(data))
		}
	})
}

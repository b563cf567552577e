// Package proxy is the only part of pgpoolx that touches client sockets:
// the accept loop, startup and authentication, the session loop that
// moves a client's messages to a pooled server connection and the
// replies back, cancel routing, and the ErrorResponses pgpoolx itself
// sends.
//
// Names follow the peer, not pgproto3: "client" is the application's
// connection to pgpoolx, "server" is pgpoolx's connection to PostgreSQL.
// Each client has two goroutines while it holds a server connection:
// the client loop (client socket -> server socket) and
// relayServerToClient (server socket -> client socket).
package proxy

// Package proxy is the only part of pgpoolx that touches client sockets:
// the accept loop, startup and authentication, the session loop that
// moves a client's messages to a pooled server connection and the
// replies back, cancel routing, and the ErrorResponses pgpoolx itself
// sends.
//
// Names follow the peer, not pgproto3: "client" is the application's
// connection to pgpoolx, "server" is pgpoolx's connection to PostgreSQL.
// A client is run either by the event loop (fast.go, on Linux, plain
// TCP): forward and relayOne called on the loop's thread as messages
// arrive; or by two goroutines while it holds a server connection: the
// client loop (loop.go, client socket -> server socket) and
// relayServerToClient (relay.go, server socket -> client socket), which
// run the same forward and relayOne. fast.go says when a client moves
// from one to the other.
package proxy

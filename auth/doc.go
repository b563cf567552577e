// Package auth is the server side of PostgreSQL password authentication: md5 and
// SCRAM-SHA-256 as PostgreSQL does them, checked against the secrets in the config.
//
// It is pure logic. The caller (the proxy) owns the client socket, frames the
// messages and sends the ErrorResponse; this package only turns message payloads
// into replies and verdicts. Errors map onto SQLSTATEs like this:
//
//   - ErrBadPassword: 28P01 invalid_password, "password authentication failed for user ...".
//   - ErrMalformed: 08P01 protocol_violation; the client broke the SASL exchange.
//
// Nothing here logs, and no error text contains a password, a hash or a key.
package auth

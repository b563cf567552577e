// Package pinning reads SQL text to tell what each statement does to
// session state: which setting it changes, which prepared statement,
// cursor, temporary table, listen channel or advisory lock it creates or
// drops. The session layer uses that to keep a client's settings without
// pinning it to one server connection, and to pin, with a reason, when it
// must. The package also normalizes statements into digests for logs, and
// predicts where AWS RDS Proxy would pin.
//
// Everything here is pure: no I/O, no goroutines, no imports from the
// rest of pgpoolx. Lexing, splitting, classifying and digesting are
// single passes, linear in the length of the input, with no regular
// expressions; they never panic, whatever the input. Classifying a
// statement that is not a SET allocates nothing.
//
// The lexer follows PostgreSQL's own scanner (scan.l), so text inside a
// string, quoted identifier, dollar quote or comment never looks like a
// statement: comments (-- and nested /* */), "quoted ""identifiers""",
// 'standard', E'escape', U&'unicode', N'national', B'bit' and X'hex'
// strings, strings continued on the next line, $tag$dollar quotes$tag$,
// numbers of every form, $n parameters and operators. Ordinary strings
// take backslash escapes only when standard_conforming_strings is off,
// which Syntax says.
//
// What SQL text cannot tell: a function, procedure or DO block can change
// any session state, and so can a trigger. Settings the server reports
// come back as ParameterStatus messages whichever way they changed; the
// rest does not, and this package reports only what the text shows.
// Function calls are counted wherever they appear in a statement that
// runs expressions (SELECT, INSERT, UPDATE, DELETE, MERGE, VALUES, CALL,
// COPY, EXECUTE, DECLARE, CREATE TABLE|MATERIALIZED VIEW ... AS, EXPLAIN
// ANALYZE of those), even in a branch that never runs (CASE, WHERE
// false); not in PREPARE bodies, view or function definitions, or DDL.
// A view created over a temporary table is temporary in PostgreSQL; this
// package cannot see that, nor ALTER ... RENAME of a temporary object.
//
// Nothing here validates SQL. Input the server rejects (a syntax error
// anywhere, an unterminated string) is still classified as far as it
// reads, while the server runs none of that query string. Apply a
// statement's effects once the server confirms it ran: statement i of a
// query string is the i-th CommandComplete, because statements are split
// where the server splits them.
package pinning

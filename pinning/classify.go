package pinning

import (
	"iter"
	"strings"
)

// Kind is what a statement does to session state.
type Kind uint8

// The kinds of statement. Anything not listed is Other, which may still
// carry effects in Statement's other fields (advisory locks, set_config,
// sequence functions).
const (
	Other Kind = iota

	Set                     // SET [SESSION] name {TO|=} value, SET TIME ZONE/NAMES/SCHEMA/XML OPTION
	SetLocal                // SET LOCAL ..., SET TRANSACTION, SET CONSTRAINTS: ends with the transaction
	Reset                   // RESET name, SET name TO DEFAULT, SET TIME ZONE LOCAL|DEFAULT, SET NAMES DEFAULT
	ResetAll                // RESET ALL
	SetRole                 // SET [SESSION] ROLE name|NONE, SET role TO name
	ResetRole               // RESET ROLE, SET role TO DEFAULT
	SetSessionAuthorization // SET SESSION AUTHORIZATION name|DEFAULT, RESET SESSION AUTHORIZATION
	SessionCharacteristics  // SET SESSION CHARACTERISTICS AS TRANSACTION ...

	DiscardAll       // DISCARD ALL
	DiscardPlans     // DISCARD PLANS
	DiscardSequences // DISCARD SEQUENCES
	DiscardTemp      // DISCARD TEMP|TEMPORARY

	Begin               // BEGIN, START TRANSACTION
	Commit              // COMMIT, END, COMMIT AND CHAIN, PREPARE TRANSACTION 'gid'
	Rollback            // ROLLBACK, ABORT, ROLLBACK AND CHAIN
	Savepoint           // SAVEPOINT name
	RollbackToSavepoint // ROLLBACK [WORK|TRANSACTION] TO [SAVEPOINT] name
	ReleaseSavepoint    // RELEASE [SAVEPOINT] name

	Prepare       // PREPARE name [(types)] AS statement
	Execute       // EXECUTE name [(args)]
	Deallocate    // DEALLOCATE [PREPARE] name
	DeallocateAll // DEALLOCATE [PREPARE] ALL

	Listen      // LISTEN channel
	Unlisten    // UNLISTEN channel
	UnlistenAll // UNLISTEN *

	CreateTemp // CREATE TEMP TABLE|VIEW|SEQUENCE, SELECT ... INTO TEMP, CREATE TABLE pg_temp.x
	Drop       // DROP TABLE|VIEW|SEQUENCE

	Declare         // DECLARE name CURSOR [WITHOUT HOLD] FOR ...: ends with the transaction
	DeclareHold     // DECLARE name CURSOR WITH HOLD FOR ...
	CloseCursor     // CLOSE name
	CloseAllCursors // CLOSE ALL

	Load // LOAD 'library'
)

var kindStrings = [...]string{
	Other: "other", Set: "set", SetLocal: "set_local", Reset: "reset", ResetAll: "reset_all",
	SetRole: "set_role", ResetRole: "reset_role", SetSessionAuthorization: "set_session_authorization",
	SessionCharacteristics: "session_characteristics", DiscardAll: "discard_all",
	DiscardPlans: "discard_plans", DiscardSequences: "discard_sequences", DiscardTemp: "discard_temp",
	Begin: "begin", Commit: "commit", Rollback: "rollback", Savepoint: "savepoint",
	RollbackToSavepoint: "rollback_to_savepoint", ReleaseSavepoint: "release_savepoint",
	Prepare: "prepare", Execute: "execute", Deallocate: "deallocate", DeallocateAll: "deallocate_all",
	Listen: "listen", Unlisten: "unlisten", UnlistenAll: "unlisten_all", CreateTemp: "create_temp",
	Drop: "drop", Declare: "declare", DeclareHold: "declare_hold", CloseCursor: "close_cursor",
	CloseAllCursors: "close_all_cursors", Load: "load",
}

// String returns the kind as a snake_case word, fit for a log field.
func (k Kind) String() string {
	if int(k) < len(kindStrings) {
		return kindStrings[k]
	}
	return "unknown"
}

// Statement is what one SQL statement does to session state.
//
// Strings are substrings of the input wherever possible, so classifying
// copies nothing unless a name or value has to be lowercased or
// unescaped.
type Statement struct {
	Kind Kind

	// Text is the statement as written, without surrounding white space,
	// comments or its semicolon.
	Text string

	// Name is, by Kind:
	//   - Set, SetLocal, Reset: the setting, lowercased even when quoted
	//     because PostgreSQL compares setting names without case;
	//     SET TIME ZONE is "timezone", SET NAMES "client_encoding",
	//     SET SCHEMA "search_path", SET XML OPTION "xmloption"; empty for
	//     SET TRANSACTION and SET CONSTRAINTS.
	//   - SetRole, ResetRole: "role"; SetSessionAuthorization:
	//     "session_authorization".
	//   - Listen, Unlisten: the channel.
	//   - Prepare, Execute, Deallocate: the prepared statement.
	//   - Declare, DeclareHold, CloseCursor: the cursor.
	//   - Savepoint, RollbackToSavepoint, ReleaseSavepoint: the savepoint.
	//   - CreateTemp: the temporary object, without a schema.
	//   - Load: the library.
	// Identifiers are lowercased unless quoted and truncated to 63 bytes,
	// as PostgreSQL does.
	Name string

	// Names lists, for Drop, every table, view or sequence dropped: the
	// name, or schema.name when qualified with a schema other than
	// pg_temp. A name that itself contains a dot cannot be told apart.
	Names []string

	// Value is the value of Set, SetLocal, SetRole and
	// SetSessionAuthorization when it is a single string, identifier,
	// keyword or number: quotes removed and escapes decoded (SET x TO 'a'
	// is "a", SET x = 5 is "5", SET x TO on is "on", SET ROLE NONE is
	// "none"). Numbers are as written, with a sign if one was written
	// before them. Empty for a list, an INTERVAL time zone, or
	// SET SESSION AUTHORIZATION DEFAULT.
	Value string

	// ValueSQL is the value exactly as written: everything after TO or =,
	// or after TIME ZONE, NAMES, SCHEMA, ROLE, SESSION AUTHORIZATION, XML
	// OPTION, or after AS TRANSACTION for SessionCharacteristics, and the
	// modes of SET TRANSACTION. `SET name TO ` + ValueSQL repeats a
	// generic SET, but a SET TIME ZONE value must be repeated after
	// `SET TIME ZONE ` (INTERVAL '...' HOUR TO MINUTE is only valid there).
	ValueSQL string

	// Body is, for Prepare, the text of the prepared statement after AS.
	// Its effects are not counted here: they happen at each EXECUTE, so
	// classify Body then.
	Body string

	// AdvisoryLocks counts calls of pg_advisory_lock,
	// pg_advisory_lock_shared, pg_try_advisory_lock and
	// pg_try_advisory_lock_shared (session-level; the _xact_ variants end
	// with the transaction and are not counted). AdvisoryUnlocks counts
	// pg_advisory_unlock and pg_advisory_unlock_shared, and
	// AdvisoryUnlockAll is set by pg_advisory_unlock_all().
	AdvisoryLocks     int
	AdvisoryUnlocks   int
	AdvisoryUnlockAll bool

	// SetConfigs has one entry per set_config(name, value, is_local) call.
	SetConfigs []SetConfig

	// NextvalSetval is set by a call of nextval or setval, which changes
	// the session's sequence state (what currval and lastval return).
	// CurrvalLastval is set by a call of currval or lastval, which reads
	// it.
	NextvalSetval  bool
	CurrvalLastval bool

	// TempObject is set when the statement creates a temporary table,
	// view or sequence (Kind CreateTemp). OnCommitDrop is set for
	// CREATE TEMP TABLE ... ON COMMIT DROP, which is gone at the end of the
	// transaction.
	TempObject   bool
	OnCommitDrop bool
}

// SetConfig is one set_config(name, value, is_local) call. Each field is
// filled when its argument is a literal (a string, or for is_local a
// boolean keyword or string, optionally with a ::type cast); Known is set
// only when all three are. When Known is false the call may have changed
// any setting, for the session or for the transaction.
type SetConfig struct {
	Name    string // lowercased
	Value   string
	IsLocal bool
	Known   bool
}

// Classify returns what the first statement of sql does, skipping empty
// statements as Analyze does. The rest of sql, after the semicolon that
// ends that statement, is ignored. With no statement at all it returns
// the zero Statement.
func Classify(sql string) Statement { return Syntax{}.Classify(sql) }

// Classify is Classify for this Syntax.
func (s Syntax) Classify(sql string) Statement {
	for st := range s.Analyze(sql) {
		return st
	}
	return Statement{}
}

// Analyze returns what each statement of a query string does, in order.
// Empty statements are skipped.
func Analyze(sql string) iter.Seq[Statement] { return Syntax{}.Analyze(sql) }

// Analyze is Analyze for this Syntax.
func (s Syntax) Analyze(sql string) iter.Seq[Statement] {
	return func(yield func(Statement) bool) {
		lx := s.NewLexer(sql)
		for {
			c := classifier{sc: newScanner(lx), backslash: s.StandardConformingStringsOff}
			c.run()
			if c.sc.start >= 0 && !yield(c.st) {
				return
			}
			if c.sc.atEOF {
				return
			}
			lx = c.sc.lx
		}
	}
}

type classifier struct {
	sc        scanner
	st        Statement
	backslash bool
}

func (c *classifier) src() string { return c.sc.lx.src }

func (c *classifier) run() {
	t := c.sc.next()
	lead := 0
	for isPunct(t, '(') {
		lead++
		t = c.sc.next()
	}
	explain, analyze := false, true
	for lead == 0 && isWord(t, "explain") {
		explain = true
		var a bool
		a, t = c.explainOptions()
		analyze = analyze && a
		for isPunct(t, '(') {
			lead++
			t = c.sc.next()
		}
	}
	c.command(t, lead, !explain || analyze)
	c.sc.drain()
	if c.sc.start >= 0 {
		c.st.Text = c.src()[c.sc.start:c.sc.end]
	}
	if explain {
		// EXPLAIN ANALYZE runs the statement: CREATE TABLE AS and SELECT
		// INTO really create the table, and EXECUTE runs the prepared
		// statement. Anything else is only explained; its function
		// calls (counted only under ANALYZE) still ran.
		switch {
		case !analyze:
			c.st = Statement{Text: c.st.Text}
		case c.st.Kind != CreateTemp && c.st.Kind != Execute:
			st := c.st
			c.st = Statement{
				Text:              st.Text,
				AdvisoryLocks:     st.AdvisoryLocks,
				AdvisoryUnlocks:   st.AdvisoryUnlocks,
				AdvisoryUnlockAll: st.AdvisoryUnlockAll,
				SetConfigs:        st.SetConfigs,
				NextvalSetval:     st.NextvalSetval,
				CurrvalLastval:    st.CurrvalLastval,
			}
		}
	}
}

// explainOptions reads EXPLAIN's options, after the EXPLAIN keyword, and
// returns whether ANALYZE is on and the first token of the explained
// statement.
func (c *classifier) explainOptions() (analyze bool, t Token) {
	t = c.sc.next()
	if isPunct(t, '(') {
		first := c.sc.peek()
		if first.Kind != Ident || isWord(first, "select") || isWord(first, "values") ||
			isWord(first, "with") || isWord(first, "table") {
			return false, t // a parenthesized statement, not options
		}
		inner := c.sc.depth
		for {
			t = c.sc.next()
			if t.Kind == EOF || c.sc.depth < inner {
				break
			}
			if c.sc.depth == inner && (isWord(t, "analyze") || isWord(t, "analyse")) {
				v := c.sc.peek()
				if isPunct(v, ',') || isPunct(v, ')') {
					analyze = true
				} else if b, ok := boolToken(v); ok {
					analyze = b
				}
			}
		}
		return analyze, c.sc.next()
	}
	if isWord(t, "analyze") || isWord(t, "analyse") {
		analyze = true
		t = c.sc.next()
	}
	if isWord(t, "verbose") {
		t = c.sc.next()
	}
	return analyze, t
}

func (c *classifier) command(t Token, lead int, calls bool) {
	if t.Kind != Ident {
		if lead > 0 {
			c.body(bodyScan{calls: calls, base: lead, mode: modeWith})
		}
		return
	}
	var buf [12]byte
	switch lowerWord(&buf, t.Text) {
	case "select":
		c.body(bodyScan{calls: calls, base: lead, mode: modeSelect})
	case "with":
		c.body(bodyScan{calls: calls, base: lead, mode: modeWith})
	case "values", "insert", "update", "delete", "merge", "call", "copy", "table":
		c.body(bodyScan{calls: calls, base: lead})
	case "set":
		c.set()
	case "reset":
		c.reset()
	case "discard":
		c.discard()
	case "prepare":
		c.prepare()
	case "execute":
		if name, ok := c.name(c.sc.next()); ok {
			c.st.Kind, c.st.Name = Execute, name
			c.body(bodyScan{calls: calls})
		}
	case "deallocate":
		t = c.sc.next()
		if isWord(t, "prepare") && c.sc.peek().Kind != EOF {
			t = c.sc.next()
		}
		if isWord(t, "all") {
			c.st.Kind = DeallocateAll
		} else if name, ok := c.name(t); ok {
			c.st.Kind, c.st.Name = Deallocate, name
		}
	case "listen":
		if name, ok := c.name(c.sc.next()); ok {
			c.st.Kind, c.st.Name = Listen, name
		}
	case "unlisten":
		t = c.sc.next()
		if t.Kind == Op && t.Text == "*" {
			c.st.Kind = UnlistenAll
		} else if name, ok := c.name(t); ok {
			c.st.Kind, c.st.Name = Unlisten, name
		}
	case "create":
		c.create(calls)
	case "drop":
		c.drop()
	case "declare":
		c.declare(calls)
	case "close":
		t = c.sc.next()
		if isWord(t, "all") {
			c.st.Kind = CloseAllCursors
		} else if name, ok := c.name(t); ok {
			c.st.Kind, c.st.Name = CloseCursor, name
		}
	case "load":
		if t = c.sc.next(); t.Kind == String || t.Kind == DollarString {
			c.st.Kind, c.st.Name = Load, c.literal(t)
		}
	case "begin":
		c.st.Kind = Begin
	case "start":
		if isWord(c.sc.next(), "transaction") {
			c.st.Kind = Begin
		}
	case "commit", "end":
		if !isWord(c.sc.next(), "prepared") {
			c.st.Kind = Commit
		}
	case "abort":
		c.st.Kind = Rollback
	case "rollback":
		c.rollback()
	case "savepoint":
		if name, ok := c.name(c.sc.next()); ok {
			c.st.Kind, c.st.Name = Savepoint, name
		}
	case "release":
		t = c.sc.next()
		if isWord(t, "savepoint") && c.sc.peek().Kind != EOF {
			t = c.sc.next()
		}
		if name, ok := c.name(t); ok {
			c.st.Kind, c.st.Name = ReleaseSavepoint, name
		}
	}
}

func (c *classifier) rollback() {
	t := c.sc.next()
	if isWord(t, "prepared") {
		return // ROLLBACK PREPARED 'gid' ends another, prepared transaction
	}
	if isWord(t, "work") || isWord(t, "transaction") {
		t = c.sc.next()
	}
	if !isWord(t, "to") {
		c.st.Kind = Rollback
		return
	}
	t = c.sc.next()
	if isWord(t, "savepoint") && c.sc.peek().Kind != EOF {
		t = c.sc.next()
	}
	if name, ok := c.name(t); ok {
		c.st.Kind, c.st.Name = RollbackToSavepoint, name
	}
}

func (c *classifier) discard() {
	t := c.sc.next()
	switch {
	case isWord(t, "all"):
		c.st.Kind = DiscardAll
	case isWord(t, "plans"):
		c.st.Kind = DiscardPlans
	case isWord(t, "sequences"):
		c.st.Kind = DiscardSequences
	case isWord(t, "temp"), isWord(t, "temporary"):
		c.st.Kind = DiscardTemp
	}
}

func (c *classifier) prepare() {
	t := c.sc.next()
	if isWord(t, "transaction") && c.sc.peek().Kind == String {
		// PREPARE TRANSACTION 'gid' ends the transaction for this
		// session exactly as COMMIT does: its settings stay.
		c.st.Kind = Commit
		return
	}
	name, ok := c.name(t)
	if !ok {
		return
	}
	t = c.sc.next()
	if isPunct(t, '(') {
		inner := c.sc.depth
		for t.Kind != EOF && c.sc.depth >= inner {
			t = c.sc.next()
		}
		t = c.sc.next()
	}
	if !isWord(t, "as") {
		return
	}
	body := c.sc.next()
	if body.Kind == EOF {
		return
	}
	c.sc.drain()
	c.st.Kind, c.st.Name = Prepare, name
	c.st.Body = c.src()[body.Pos:c.sc.end]
}

func (c *classifier) declare(calls bool) {
	name, ok := c.name(c.sc.next())
	if !ok {
		return
	}
	t := c.sc.next()
	for !isWord(t, "cursor") {
		switch {
		case isWord(t, "binary"), isWord(t, "insensitive"), isWord(t, "asensitive"),
			isWord(t, "scroll"), isWord(t, "no"):
			t = c.sc.next()
		default:
			return
		}
	}
	t = c.sc.next()
	hold := false
	if isWord(t, "with") || isWord(t, "without") {
		hold = isWord(t, "with")
		if !isWord(c.sc.next(), "hold") {
			return
		}
		t = c.sc.next()
	}
	if !isWord(t, "for") {
		return
	}
	c.st.Kind, c.st.Name = Declare, name
	if hold {
		c.st.Kind = DeclareHold
	}
	c.body(bodyScan{calls: calls})
}

func (c *classifier) create(calls bool) {
	t := c.sc.next()
	if isWord(t, "or") {
		if t = c.sc.next(); isWord(t, "replace") {
			t = c.sc.next()
		}
	}
	if isWord(t, "global") || isWord(t, "local") {
		t = c.sc.next()
	}
	temp := false
	if isWord(t, "temp") || isWord(t, "temporary") {
		temp = true
		t = c.sc.next()
	} else if isWord(t, "unlogged") {
		t = c.sc.next()
	}
	if isWord(t, "recursive") {
		t = c.sc.next()
	}
	table, runs := false, false // runs: the query after AS runs now
	switch {
	case isWord(t, "table"):
		table, runs = true, true
	case isWord(t, "view"), isWord(t, "sequence"):
	case isWord(t, "materialized"):
		if !isWord(c.sc.next(), "view") {
			return
		}
		temp, runs = false, true // a materialized view cannot be temporary
	default:
		return // CREATE FUNCTION, INDEX, ...: nothing runs now
	}
	t = c.sc.next()
	if isWord(t, "if") {
		c.sc.next() // NOT
		c.sc.next() // EXISTS
		t = c.sc.next()
	}
	schema, name, ok := c.objectName(t)
	if ok && (temp || isTempSchema(schema)) {
		c.st.Kind, c.st.Name, c.st.TempObject = CreateTemp, name, true
	}
	if runs {
		c.body(bodyScan{calls: calls, afterAS: true, onCommitDrop: table && c.st.TempObject})
	}
}

func (c *classifier) drop() {
	t := c.sc.next()
	if !isWord(t, "table") && !isWord(t, "view") && !isWord(t, "sequence") {
		return
	}
	t = c.sc.next()
	if isWord(t, "if") {
		c.sc.next() // EXISTS
		t = c.sc.next()
	}
	for {
		schema, name, ok := c.objectName(t)
		if !ok {
			break
		}
		if schema != "" && !isTempSchema(schema) {
			name = schema + "." + name
		}
		c.st.Names = append(c.st.Names, name)
		if t = c.sc.next(); !isPunct(t, ',') {
			break
		}
		t = c.sc.next()
	}
	if len(c.st.Names) > 0 {
		c.st.Kind = Drop
	}
}

// name returns the identifier t stands for.
func (c *classifier) name(t Token) (string, bool) {
	if t.Kind != Ident && t.Kind != QuotedIdent {
		return "", false
	}
	return identName(t), true
}

// objectName reads a possibly qualified name starting at t and returns
// its last two parts.
func (c *classifier) objectName(t Token) (schema, name string, ok bool) {
	name, ok = c.name(t)
	for ok {
		if !isPunct(c.sc.peek(), '.') {
			break
		}
		c.sc.next()
		part, ok2 := c.name(c.sc.peek())
		if !ok2 {
			break
		}
		c.sc.next()
		schema, name = name, part
	}
	return schema, name, ok
}

func isTempSchema(s string) bool { return s == "pg_temp" }

// literal returns the value of a string, dollar-quoted string, number or
// identifier token.
func (c *classifier) literal(t Token) string {
	switch t.Kind {
	case String:
		return stringValue(t, c.backslash, '\\')
	case DollarString:
		return dollarValue(t)
	case Ident, QuotedIdent:
		return identName(t)
	case Number:
		return t.Text
	}
	return ""
}

func dollarValue(t Token) string {
	tagEnd := dollarTagEnd(t.Text, 0)
	if tagEnd <= 0 {
		return ""
	}
	body := t.Text[tagEnd:]
	if !t.Unterminated {
		body = body[:len(body)-tagEnd]
	}
	return body
}

// bodyScan configures a pass over the rest of a statement that looks for
// function calls and SELECT ... INTO TEMP.
type bodyScan struct {
	calls        bool // count function calls
	afterAS      bool // count them only after a top-level AS (CREATE TABLE ... AS)
	onCommitDrop bool // look for ON COMMIT DROP
	base         int  // parenthesis depth of the statement's top level
	mode         bodyMode
}

type bodyMode uint8

const (
	modePlain  bodyMode = iota
	modeSelect          // a SELECT: watch for INTO TEMP
	modeWith            // a WITH (or parenthesized) statement whose main verb is not known yet
)

// setConfigCall tracks the arguments of one set_config call while they
// are read.
type setConfigCall struct {
	depth int // parenthesis depth of its arguments
	index int // into Statement.SetConfigs
	arg   int // current argument
	args  [3]struct {
		n   int      // tokens in the argument
		tok [3]Token // its first tokens
	}
}

const maxOpenSetConfig = 4

func (c *classifier) body(b bodyScan) {
	var (
		prev, before Token // previous token; the token before the name that prev ends
		open         [maxOpenSetConfig]setConfigCall
		nopen        int
		onCommit     int // ON COMMIT DROP matched so far
		intoDone     bool
	)
	counting := b.calls && !b.afterAS
	for {
		t := c.sc.next()
		if t.Kind == EOF {
			break
		}
		depth := c.sc.depth
		for i := nopen - 1; i >= 0; i-- {
			call := &open[i]
			switch {
			case depth < call.depth: // its closing parenthesis
				// Calls opened later are nested deeper and were closed
				// already, in this same loop.
				c.finishSetConfig(call)
				nopen = i
			case depth == call.depth && isPunct(t, ','):
				call.arg++
			case call.arg < 3:
				a := &call.args[call.arg]
				if a.n < len(a.tok) {
					a.tok[a.n] = t
				}
				a.n++
			}
		}
		switch {
		case counting && isPunct(t, '(') && (prev.Kind == Ident || prev.Kind == QuotedIdent) &&
			!isWord(before, "into") && !isWord(before, "copy"):
			if c.call(prev) && nopen < maxOpenSetConfig {
				open[nopen] = setConfigCall{depth: depth, index: len(c.st.SetConfigs) - 1}
				nopen++
			}
		case depth != b.base || t.Kind != Ident:
		case b.afterAS && isWord(t, "as"):
			counting = b.calls
		case b.onCommitDrop:
			switch {
			case isWord(t, "on"):
				onCommit = 1
			case onCommit == 1 && isWord(t, "commit"):
				onCommit = 2
			case onCommit == 2 && isWord(t, "drop"):
				c.st.OnCommitDrop = true
				onCommit = 0
			default:
				onCommit = 0
			}
		case b.mode == modeWith:
			b.mode = c.mainVerb(t)
		case b.mode == modeSelect && !intoDone && isWord(t, "into"):
			intoDone = true
			t = c.selectInto()
		}
		if t.Kind == Ident || t.Kind == QuotedIdent {
			if !isPunct(prev, '.') {
				before = prev
			}
		}
		prev = t
	}
}

// mainVerb finds the statement a WITH clause belongs to: the first
// top-level SELECT, VALUES, INSERT, UPDATE, DELETE or MERGE that is not
// the name of a CTE (insert AS (...)).
func (c *classifier) mainVerb(t Token) bodyMode {
	switch {
	case isWord(t, "select"):
		return modeSelect
	case isWord(t, "values"), isWord(t, "table"):
		return modePlain
	case isWord(t, "insert"), isWord(t, "update"), isWord(t, "delete"), isWord(t, "merge"):
		if n := c.sc.peek(); !isWord(n, "as") && !isPunct(n, '(') {
			return modePlain
		}
	}
	return modeWith
}

// selectInto reads the target of SELECT ... INTO, after INTO, and
// returns the last token it took.
func (c *classifier) selectInto() Token {
	t := c.sc.next()
	temp := false
	if isWord(t, "local") || isWord(t, "global") {
		t = c.sc.next()
	}
	switch {
	case isWord(t, "temp"), isWord(t, "temporary"):
		temp = true
		t = c.sc.next()
	case isWord(t, "unlogged"):
		t = c.sc.next()
	}
	if isWord(t, "table") {
		t = c.sc.next()
	}
	schema, name, ok := c.objectName(t)
	if ok && (temp || isTempSchema(schema)) {
		c.st.Kind, c.st.Name, c.st.TempObject = CreateTemp, name, true
	}
	return t
}

// call records a call of the function named by t, which is followed by
// "(". It reports whether the function is set_config, whose arguments
// the caller then tracks.
func (c *classifier) call(t Token) bool {
	name := t.Text
	if t.Kind == QuotedIdent {
		if len(name) < 2 || name[0] != '"' || name[len(name)-1] != '"' {
			return false
		}
		name = name[1 : len(name)-1]
		if strings.ContainsAny(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZ\"") {
			return false // "PG_ADVISORY_LOCK" is another function
		}
	}
	if len(name) < 6 || len(name) > 27 {
		return false
	}
	st := &c.st
	switch name[0] | 0x20 {
	case 'p':
		switch {
		case eqFold(name, "pg_advisory_lock"), eqFold(name, "pg_advisory_lock_shared"),
			eqFold(name, "pg_try_advisory_lock"), eqFold(name, "pg_try_advisory_lock_shared"):
			st.AdvisoryLocks++
		case eqFold(name, "pg_advisory_unlock"), eqFold(name, "pg_advisory_unlock_shared"):
			st.AdvisoryUnlocks++
		case eqFold(name, "pg_advisory_unlock_all"):
			st.AdvisoryUnlockAll = true
		}
	case 's':
		switch {
		case eqFold(name, "setval"):
			st.NextvalSetval = true
		case eqFold(name, "set_config"):
			st.SetConfigs = append(st.SetConfigs, SetConfig{})
			return true
		}
	case 'n':
		if eqFold(name, "nextval") {
			st.NextvalSetval = true
		}
	case 'c', 'l':
		if eqFold(name, "currval") || eqFold(name, "lastval") {
			st.CurrvalLastval = true
		}
	}
	return false
}

func (c *classifier) finishSetConfig(call *setConfigCall) {
	sc := &c.st.SetConfigs[call.index]
	var okName, okValue, okLocal bool
	if t, ok := castLiteral(call.args[0].n, &call.args[0].tok); ok && t.Kind == String {
		sc.Name, okName = lowerASCII(c.literal(t)), true
	}
	if t, ok := castLiteral(call.args[1].n, &call.args[1].tok); ok && (t.Kind == String || t.Kind == DollarString) {
		sc.Value, okValue = c.literal(t), true
	}
	if t, ok := castLiteral(call.args[2].n, &call.args[2].tok); ok {
		switch t.Kind {
		case Ident:
			if isWord(t, "true") || isWord(t, "false") {
				sc.IsLocal, okLocal = isWord(t, "true"), true
			}
		case String:
			sc.IsLocal, okLocal = parseBool(c.literal(t))
		}
	}
	sc.Known = okName && okValue && okLocal && call.arg == 2
}

// castLiteral returns the single token of an argument that is one token,
// or one token cast with ::type.
func castLiteral(n int, tok *[3]Token) (Token, bool) {
	switch {
	case n == 1:
		return tok[0], true
	case n == 3 && tok[1].Kind == Op && tok[1].Text == "::" && tok[2].Kind == Ident:
		return tok[0], true
	}
	return Token{}, false
}

// boolToken reads a boolean option value: TRUE, FALSE, ON, OFF, a
// string, 1 or 0.
func boolToken(t Token) (value, ok bool) {
	switch t.Kind {
	case Ident, String, Number:
		if t.Kind == String {
			return parseBool(stringValue(t, false, '\\'))
		}
		return parseBool(t.Text)
	}
	return false, false
}

func isWord(t Token, kw string) bool { return t.Kind == Ident && eqFold(t.Text, kw) }

func isPunct(t Token, c byte) bool { return t.Kind == Punct && t.Text[0] == c }

// lowerWord lowercases a short ASCII word into buf; longer words come back
// empty, as no command word is that long.
func lowerWord(buf *[12]byte, w string) string {
	if len(w) > len(buf) {
		return ""
	}
	for i := 0; i < len(w); i++ {
		c := w[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return string(buf[:len(w)])
}

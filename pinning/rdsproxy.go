package pinning

// Reason explains a pin.
type Reason struct {
	Code   string // stable snake_case code, for a log field and for counting
	Detail string // a sentence a person understands
	Hint   string // what to change to avoid it
}

// RDSProxyMaxQueryBytes is the longest query text AWS RDS Proxy analyses;
// it pins a session on anything longer.
const RDSProxyMaxQueryBytes = 16384

// The reasons AWS RDS Proxy (PostgreSQL) pins a session for, by its
// documentation. Two Details are RDS Proxy's own log sentences
// (session_setting and oversized_query); the others are ours, as RDS
// Proxy's exact wording for them is not documented.
var (
	rdsSessionSetting = Reason{
		Code:   "session_setting",
		Detail: "SQL changed session settings that the proxy doesn't track.",
		Hint:   "Move the setting into the proxy's initialization query, or pass it as a startup parameter.",
	}
	rdsPreparedStatement = Reason{
		Code:   "sql_prepared_statement",
		Detail: "The session used SQL-level PREPARE, EXECUTE or DEALLOCATE.",
		Hint:   "Prepare statements with the extended query protocol (Parse/Bind) instead of SQL PREPARE.",
	}
	rdsDiscard = Reason{
		Code:   "discard",
		Detail: "The session ran DISCARD.",
		Hint:   "Do not reset the session from the application; the pooler cleans server connections.",
	}
	rdsTempObject = Reason{
		Code:   "temp_object",
		Detail: "The session created a temporary table, view or sequence.",
		Hint:   "Use a regular table, a CTE, or a temporary table with ON COMMIT DROP inside a transaction.",
	}
	rdsCursor = Reason{
		Code:   "cursor",
		Detail: "The session declared a cursor.",
		Hint:   "Fetch results with the extended query protocol instead of DECLARE.",
	}
	rdsListen = Reason{
		Code:   "listen",
		Detail: "The session listens on a notification channel.",
		Hint:   "Run LISTEN on a dedicated connection that bypasses the proxy.",
	}
	rdsLoad = Reason{
		Code:   "load",
		Detail: "The session loaded a library with LOAD.",
		Hint:   "Preload the library with session_preload_libraries in the database parameter group.",
	}
	rdsSequence = Reason{
		Code:   "sequence_function",
		Detail: "The session called nextval or setval, which keep per-session sequence state.",
		Hint:   "Use INSERT ... RETURNING instead of nextval followed by currval or lastval.",
	}
	rdsAdvisoryLock = Reason{
		Code:   "session_advisory_lock",
		Detail: "The session took a session-level advisory lock.",
		Hint:   "Use pg_advisory_xact_lock or pg_try_advisory_xact_lock, which end with the transaction.",
	}
	rdsOversizedQuery = Reason{
		Code:   "oversized_query",
		Detail: "The connection ran a SQL query which exceeded the 16384 byte limit.",
		Hint:   "Shorten the statement: batch fewer rows per INSERT, or pass long lists as one array parameter.",
	}
)

// RDSProxyReason predicts whether AWS RDS Proxy would pin the session for
// the rest of its life on this statement, and why. queryBytes is the
// length of the whole query text the statement came in (the Query or
// Parse message's SQL). The zero Reason means it would not pin.
//
// RDS Proxy tracks no PostgreSQL setting, so any SET pins, also SET LOCAL,
// SET TRANSACTION and SET CONSTRAINTS, which end with the transaction and
// cannot leak: its documentation says any SET, and we read it literally.
// RESET is not named there; it changes the same untracked settings, so we
// count it as a SET. The prediction follows what runs: a statement only
// EXPLAINed without ANALYZE predicts nothing, where RDS Proxy might still
// match its text.
func RDSProxyReason(st Statement, queryBytes int) Reason {
	if queryBytes > RDSProxyMaxQueryBytes {
		return rdsOversizedQuery
	}
	switch st.Kind {
	case Set, SetLocal, Reset, ResetAll, SetRole, ResetRole, SetSessionAuthorization, SessionCharacteristics:
		return rdsSessionSetting
	case Prepare, Execute, Deallocate, DeallocateAll:
		return rdsPreparedStatement
	case DiscardAll, DiscardPlans, DiscardSequences, DiscardTemp:
		return rdsDiscard
	case CreateTemp:
		return rdsTempObject
	case Declare, DeclareHold:
		return rdsCursor
	case Listen:
		return rdsListen
	case Load:
		return rdsLoad
	}
	switch {
	case st.TempObject:
		return rdsTempObject
	case len(st.SetConfigs) > 0:
		return rdsSessionSetting
	case st.AdvisoryLocks > 0:
		return rdsAdvisoryLock
	case st.NextvalSetval:
		return rdsSequence
	}
	return Reason{}
}

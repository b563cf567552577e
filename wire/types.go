package wire

// Message types sent by clients (frontend messages).
const (
	Bind         byte = 'B'
	Close        byte = 'C'
	CopyData     byte = 'd'
	CopyDone     byte = 'c'
	CopyFail     byte = 'f'
	Describe     byte = 'D'
	Execute      byte = 'E'
	Flush        byte = 'H'
	FunctionCall byte = 'F'
	Parse        byte = 'P'
	Query        byte = 'Q'
	Sync         byte = 'S'
	Terminate    byte = 'X'
	// PasswordMessage also carries SASL responses and GSS data.
	PasswordMessage byte = 'p'
)

// Message types sent by servers (backend messages) that the proxy acts on.
const (
	ReadyForQuery   byte = 'Z'
	ErrorResponse   byte = 'E'
	NoticeResponse  byte = 'N'
	Notification    byte = 'A'
	ParameterStatus byte = 'S'
	ParseComplete   byte = '1'
	CloseComplete   byte = '3'
	BackendKeyData  byte = 'K'
	DataRow         byte = 'D'
	CommandComplete byte = 'C'
	// EmptyQueryResponse answers a query string with no statement.
	EmptyQueryResponse byte = 'I'
	CopyInResponse     byte = 'G'
)

// Transaction status bytes carried by ReadyForQuery.
const (
	TxIdle   byte = 'I'
	TxActive byte = 'T'
	TxFailed byte = 'E'
)

// Codes of the untyped packets a client may open a connection with.
const (
	ProtocolVersion30 = 196608 // 3.0
	CancelRequestCode = 80877102
	SSLRequestCode    = 80877103
	GSSENCRequestCode = 80877104
)

package stats

import "time"

// Pool is the state of one pool: a (database, server user) pair.
type Pool struct {
	Database, User, PoolMode string

	ClientsActive  int // holding a server connection
	ClientsWaiting int // waiting for one
	ClientsIdle    int // between transactions
	ClientsPinned  int // of all its clients, those pinned
	ClientsParked  int // of the idle ones, those whose buffers went back to a pool

	ServersActive int // lent to a client
	ServersIdle   int // in the pool, ready
	ServersLogin  int // being dialed or running the init query

	MaxWait            time.Duration // longest current wait of a client
	PreparedStatements int           // prepared on its server connections
	// ClientPreparedStatements counts its clients' named statements.
	ClientPreparedStatements int
	InitQueryFailures        uint64
	Paused                   bool

	Totals Totals
}

// Client is one client connection.
type Client struct {
	ID                 uint64
	PID                uint32 // the process id pgpoolx gave it
	Database, User     string
	State              string // active, waiting, idle
	Addr               string
	Port               int
	LocalAddr          string
	LocalPort          int
	ConnectTime        time.Time
	RequestTime        time.Time // its last transaction's start
	Wait               time.Duration
	ApplicationName    string
	TLS                string // the TLS version, or "" for none
	ServerPID          uint32 // the server connection it holds, or 0
	Pin, PinDetail     string // why it is pinned, or ""
	PinnedAt           time.Time
	PinDigest          string
	PinnedTransactions int
}

// Server is one server connection.
type Server struct {
	Database, User  string
	State           string // active, idle
	Addr            string
	Port            int
	LocalAddr       string
	LocalPort       int
	ConnectTime     time.Time
	RequestTime     time.Time // last handed out or returned
	PID             uint32    // the backend's process id
	ClientPID       uint32    // the client holding it (pgpoolx's pid), or 0
	ApplicationName string
}

// Database is one configured database and its live state.
type Database struct {
	Name, Host         string
	Port               int
	DBName, ForceUser  string
	PoolSize           int
	PoolMode           string
	CurrentConnections int
	Paused             bool
}

// DatabaseStats are one database's counters summed over its pools, and
// its per-second averages over a recent period.
type DatabaseStats struct {
	Database string
	Totals   Totals
	Rates    Rates
}

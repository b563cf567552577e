// Regression tests for bugs a review found in the relay and statement
// tracking; each failed before its fix.
package integration

import (
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// collect reads until n ReadyForQuery messages, returning everything.
func (r *protoClient) collect(n int) []pgproto3.BackendMessage {
	r.t.Helper()
	var out []pgproto3.BackendMessage
	for n > 0 {
		msg, err := r.receive()
		if err != nil {
			r.t.Fatalf("collect: %v", err)
		}
		switch m := msg.(type) {
		case *pgproto3.ErrorResponse:
			cp := *m
			out = append(out, &cp)
			r.t.Logf("  <- ErrorResponse %s %s", m.Code, m.Message)
		case *pgproto3.DataRow:
			r.t.Logf("  <- DataRow %q", m.Values)
			out = append(out, &pgproto3.DataRow{})
		case *pgproto3.ReadyForQuery:
			r.t.Logf("  <- ReadyForQuery %c", m.TxStatus)
			out = append(out, &pgproto3.ReadyForQuery{TxStatus: m.TxStatus})
			n--
		default:
			r.t.Logf("  <- %T", msg)
			out = append(out, msg)
		}
	}
	return out
}

// Suspicion: a simple Query pgpoolx sends itself (attach's SyncSQL, the probe)
// destroys the server's unnamed statement but leaves srv.UnnamedToken.
func TestRegressionUnnamedDestroyedBySyncSQL(t *testing.T) {
	p := startPooler(t, "", "pool_size: 1")
	pa := protoParams(p)
	pa["application_name"] = "aaa"
	a := dialProto(t, p.addr)
	a.startup(pgproto3.ProtocolVersion30, pa)
	pb := protoParams(p)
	pb["application_name"] = "bbb"
	b := dialProto(t, p.addr)
	b.startup(pgproto3.ProtocolVersion30, pb)

	t.Log("A: Parse unnamed + Describe + Sync")
	a.send(&pgproto3.Parse{Query: "SELECT 42"}, &pgproto3.Describe{ObjectType: 'S'}, &pgproto3.Sync{})
	a.collect(1)
	t.Log("B: named Parse + Sync (uses the same server, its SET destroys A's unnamed statement)")
	b.send(&pgproto3.Parse{Name: "s1", Query: "SELECT 1"}, &pgproto3.Describe{ObjectType: 'S', Name: "s1"}, &pgproto3.Sync{})
	b.collect(1)
	t.Log("A: Bind unnamed + Execute + Sync")
	a.send(&pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{})
	for _, m := range a.collect(1) {
		if e, ok := m.(*pgproto3.ErrorResponse); ok {
			t.Errorf("BUG: A's unnamed statement is gone: %s %s", e.Code, e.Message)
		}
	}
}

// Suspicion: a failed unnamed Parse in an earlier pipelined group resets
// srv.UnnamedToken though a later group's unnamed Parse succeeded.
func TestRegressionUnnamedTokenResetByEarlierError(t *testing.T) {
	p := startPooler(t, "", "pool_size: 1")
	a := dialProto(t, p.addr)
	a.startup(pgproto3.ProtocolVersion30, protoParams(p))
	b := dialProto(t, p.addr)
	b.startup(pgproto3.ProtocolVersion30, protoParams(p))

	a.send(&pgproto3.Parse{Query: "SELEC bad"}, &pgproto3.Sync{},
		&pgproto3.Parse{Query: "SELECT 'A-secret'"}, &pgproto3.Describe{ObjectType: 'S'}, &pgproto3.Sync{})
	a.collect(2)
	t.Log("B (never parsed an unnamed statement): Bind unnamed + Execute + Sync")
	b.send(&pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{})
	for _, m := range b.collect(1) {
		if _, ok := m.(*pgproto3.DataRow); ok {
			t.Errorf("BUG: client B executed client A's unnamed statement")
		}
	}
}

// Suspicion: libpq's extended-protocol COPY FROM STDIN sends a Sync with the
// Execute (ignored by the server during copy-in) and another after CopyDone.
func TestRegressionExtendedCopyDoubleSync(t *testing.T) {
	p := startPooler(t, "acquire_timeout: 2s", "pool_size: 1")
	a := dialProto(t, p.addr)
	a.startup(pgproto3.ProtocolVersion30, protoParams(p))
	a.simpleQuery("CREATE TABLE t (x int)")
	a.send(&pgproto3.Parse{Query: "COPY t FROM STDIN"}, &pgproto3.Bind{}, &pgproto3.Describe{ObjectType: 'P'},
		&pgproto3.Execute{}, &pgproto3.Sync{})
	for {
		msg, err := a.receive()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("  <- %T", msg)
		if _, ok := msg.(*pgproto3.CopyInResponse); ok {
			break
		}
	}
	a.send(&pgproto3.CopyData{Data: []byte("1\n")}, &pgproto3.CopyDone{}, &pgproto3.Sync{})
	a.collect(1)
	t.Log("A: simple query")
	a.simpleQuery("SELECT 1")
	t.Log("B: needs the only server connection")
	b := dialProto(t, p.addr)
	b.startup(pgproto3.ProtocolVersion30, protoParams(p))
	b.send(&pgproto3.Query{String: "SELECT 2"})
	for _, m := range b.collect(1) {
		if e, ok := m.(*pgproto3.ErrorResponse); ok {
			t.Errorf("BUG: A never gave its server connection back: %s %s", e.Code, e.Message)
		}
	}
}

// Stress for the race detector: the relay's tail after it detached (writing
// the final ReadyForQuery from c.relayBuf) against the next relay.
func TestRegressionRelayTailRace(t *testing.T) {
	const n = 16
	p := startPooler(t, "", "pool_size: 16")
	var wg sync.WaitGroup
	for range n {
		c := dialProto(t, p.addr)
		c.startup(pgproto3.ProtocolVersion30, protoParams(p))
		c.nc.SetDeadline(time.Time{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				c.send(&pgproto3.Query{String: "SELEC 1"})
				c.drain()
				c.send(&pgproto3.Query{String: "SET application_name = 'x'"})
				c.drain()
			}
		}()
	}
	wg.Wait()
}

// drain reads up to a ReadyForQuery, which must say idle.
func (r *protoClient) drain() {
	for {
		msg, err := r.fe.Receive()
		if err != nil {
			r.t.Errorf("drain: %v", err)
			return
		}
		if rfq, ok := msg.(*pgproto3.ReadyForQuery); ok {
			if rfq.TxStatus != 'I' {
				r.t.Errorf("ReadyForQuery status %q, want I", rfq.TxStatus)
			}
			return
		}
	}
}

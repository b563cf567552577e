package session

import (
	"testing"

	"github.com/pgpoolx/pgpoolx/wire"
)

// step is one event in a conversation: a client message (client != 0), a
// server message (server != 0, with status for ReadyForQuery), or an
// injected Parse.
type step struct {
	client      byte
	server      byte
	status      byte
	inject      bool
	injectClose bool
	stmt        string // for client Parse steps
	forward     bool   // for server steps: expected result of ServerSent
}

func c(typ byte) step        { return step{client: typ} }
func s(typ byte) step        { return step{server: typ, forward: true} }
func rfq(status byte) step   { return step{server: wire.ReadyForQuery, status: status, forward: true} }
func eaten(typ byte) step    { return step{server: typ, forward: false} }
func injected() step         { return step{inject: true} }
func injectedClose() step    { return step{injectClose: true} }
func parse(stmt string) step { return step{client: wire.Parse, stmt: stmt} }

func TestTracker(t *testing.T) {
	const (
		idle   = wire.TxIdle
		inTx   = wire.TxActive
		failed = wire.TxFailed
	)
	tests := []struct {
		name        string
		steps       []step
		wantIdle    bool
		wantPending int
	}{
		{"fresh client is idle", nil, true, 0},
		{"simple query in flight", []step{c(wire.Query)}, false, 1},
		{"simple query answered", []step{c(wire.Query), s('T'), s('D'), s('C'), rfq(idle)}, true, 0},
		{"multi-statement query has one ReadyForQuery", []step{c(wire.Query), s('C'), s('C'), s('C'), rfq(idle)}, true, 0},
		{"BEGIN leaves a transaction open", []step{c(wire.Query), s('C'), rfq(inTx)}, false, 0},
		{"failed transaction holds the server", []step{c(wire.Query), s('E'), rfq(failed)}, false, 0},
		{"COMMIT ends it", []step{c(wire.Query), rfq(inTx), c(wire.Query), rfq(idle)}, true, 0},
		{"extended batch open until Sync", []step{c(wire.Parse), c(wire.Bind), c(wire.Execute)}, false, 0},
		{"batch with Flush stays open after replies", []step{c(wire.Parse), c(wire.Describe), c(wire.Flush), s('1'), s('t'), s('T')}, false, 0},
		{"batch answered", []step{c(wire.Parse), c(wire.Bind), c(wire.Execute), c(wire.Sync), s('1'), s('2'), s('C'), rfq(idle)}, true, 0},
		{"pipelined batches: first answered only", []step{
			c(wire.Parse), c(wire.Sync), c(wire.Bind), c(wire.Execute), c(wire.Sync),
			s('1'), rfq(idle)}, false, 1},
		{"pipelined batches all answered", []step{
			c(wire.Parse), c(wire.Sync), c(wire.Bind), c(wire.Execute), c(wire.Sync),
			s('1'), rfq(idle), s('2'), s('C'), rfq(idle)}, true, 0},
		{"pipeline with a failing statement", []step{
			c(wire.Bind), c(wire.Execute), c(wire.Sync), c(wire.Bind), c(wire.Execute), c(wire.Sync),
			s('E'), rfq(idle), s('2'), s('C'), rfq(idle)}, true, 0},
		{"client sent more after its last Sync", []step{c(wire.Sync), rfq(idle), c(wire.Parse)}, false, 0},
		{"pipeline starting with BEGIN and ending the transaction", []step{
			c(wire.Parse), c(wire.Bind), c(wire.Execute), c(wire.Sync), // BEGIN
			c(wire.Parse), c(wire.Bind), c(wire.Execute), c(wire.Sync), // INSERT
			c(wire.Parse), c(wire.Bind), c(wire.Execute), c(wire.Sync), // COMMIT
			s('1'), s('2'), s('C'), rfq(inTx),
			s('1'), s('2'), s('C'), rfq(inTx),
			s('1'), s('2'), s('C'), rfq(idle)}, true, 0},
		{"copy in: copy messages start nothing", []step{
			c(wire.Query), s('G'), c(wire.CopyData), c(wire.CopyData), c(wire.CopyDone), s('C'), rfq(idle)}, true, 0},
		{"copy fail", []step{c(wire.Query), s('G'), c(wire.CopyData), c(wire.CopyFail), s('E'), rfq(idle)}, true, 0},
		{"extended copy in: the Sync after Execute is ignored", []step{
			c(wire.Parse), c(wire.Bind), c(wire.Execute), c(wire.Sync), s('1'), s('2'), s('G'),
			c(wire.CopyData), c(wire.CopyDone), c(wire.Sync), s('C'), rfq(idle)}, true, 0},
		{"extended copy in: Sync sent after CopyInResponse", []step{
			c(wire.Bind), c(wire.Execute), s('2'), s('G'), c(wire.Sync),
			c(wire.CopyData), c(wire.CopyDone), s('C'), c(wire.Sync), rfq(idle)}, true, 0},
		{"extended copy in still waiting for its Sync", []step{
			c(wire.Bind), c(wire.Execute), c(wire.Sync), s('2'), s('G'),
			c(wire.CopyData), c(wire.CopyDone), s('C')}, false, 0},
		{"lone Flush starts nothing", []step{c(wire.Flush)}, true, 0},
		{"lone Sync needs its ReadyForQuery", []step{c(wire.Sync)}, false, 1},
		{"function call", []step{c(wire.FunctionCall), s('V'), rfq(idle)}, true, 0},
		{"async messages change nothing", []step{s('N'), s('A'), s('S')}, true, 0},
		{"injected parse: its ParseComplete is eaten", []step{
			injected(), c(wire.Bind), c(wire.Execute), c(wire.Sync),
			eaten('1'), s('2'), s('C'), rfq(idle)}, true, 0},
		{"injected parse: the client's own ParseComplete is kept", []step{
			c(wire.Parse), c(wire.Sync), injected(), c(wire.Bind), c(wire.Sync),
			s('1'), rfq(idle), eaten('1'), s('2'), rfq(idle)}, true, 0},
		{"injected parse that fails: the error reaches the client", []step{
			injected(), c(wire.Bind), c(wire.Sync), s('E'), rfq(idle)}, true, 0},
		{"notice before injected ParseComplete", []step{
			injected(), c(wire.Bind), c(wire.Sync), s('N'), eaten('1'), s('2'), rfq(idle)}, true, 0},
		{"injected parse in the middle of a group", []step{
			c(wire.Bind), c(wire.Execute), injected(), c(wire.Bind), c(wire.Execute), c(wire.Sync),
			s('2'), s('C'), eaten('1'), s('2'), s('C'), rfq(idle)}, true, 0},
		{"client parse, injected parse, client parse", []step{
			parse("a"), injected(), c(wire.Bind), parse("b"), c(wire.Sync),
			s('1'), eaten('1'), s('2'), s('1'), rfq(idle)}, true, 0},
		{"injected close before client parse", []step{
			c(wire.Close), injectedClose(), parse("x"), c(wire.Sync),
			s('3'), eaten('3'), s('1'), rfq(idle)}, true, 0},
		{"groups reused after injection", []step{
			injected(), c(wire.Bind), c(wire.Sync), eaten('1'), s('2'), rfq(idle),
			parse("a"), c(wire.Sync), s('1'), rfq(idle)}, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := NewTracker()
			for i, st := range tt.steps {
				switch {
				case st.inject:
					tr.InjectedParse(ParseRef{Server: "injected"})
				case st.injectClose:
					tr.InjectedClose()
				case st.client != 0:
					tr.ClientSent(st.client, ParseRef{Server: st.stmt})
				default:
					if got := tr.ServerSent(st.server, st.status); got != st.forward {
						t.Fatalf("step %d: ServerSent(%q) forward = %v, want %v", i, st.server, got, st.forward)
					}
				}
			}
			if got := tr.Idle(); got != tt.wantIdle {
				t.Errorf("Idle() = %v, want %v", got, tt.wantIdle)
			}
			if got := tr.Pending(); got != tt.wantPending {
				t.Errorf("Pending() = %d, want %d", got, tt.wantPending)
			}
		})
	}
}

// The tracker must not allocate per transaction once warmed up.
func TestTrackerNoAllocs(t *testing.T) {
	tr := NewTracker()
	allocs := testing.AllocsPerRun(100, func() {
		tr.ClientSent(wire.Parse, ParseRef{})
		tr.ClientSent(wire.Bind, ParseRef{})
		tr.ClientSent(wire.Execute, ParseRef{})
		tr.ClientSent(wire.Sync, ParseRef{})
		tr.ServerSent('1', 0)
		tr.ServerSent('2', 0)
		tr.ServerSent('C', 0)
		tr.ServerSent(wire.ReadyForQuery, wire.TxIdle)
	})
	if allocs != 0 {
		t.Errorf("allocations per transaction = %v, want 0", allocs)
	}
}

func BenchmarkTracker(b *testing.B) {
	tr := NewTracker()
	b.ReportAllocs()
	for b.Loop() {
		tr.ClientSent(wire.Query, ParseRef{})
		tr.ServerSent('T', 0)
		tr.ServerSent('D', 0)
		tr.ServerSent('C', 0)
		tr.ServerSent(wire.ReadyForQuery, wire.TxIdle)
	}
}

func TestFailedParses(t *testing.T) {
	tr := NewTracker()
	for _, name := range []string{"a", "b", "c"} {
		tr.ClientSent(wire.Parse, ParseRef{Server: name})
	}
	tr.ClientSent(wire.Sync, ParseRef{})
	tr.ServerSent(wire.ParseComplete, 0)
	tr.ServerSent(wire.ErrorResponse, 0) // b failed, c skipped
	got := tr.FailedParses()
	if len(got) != 2 || got[0].Server != "b" || got[1].Server != "c" {
		t.Errorf("FailedParses() = %v, want [b c]", got)
	}
	tr.ServerSent(wire.ReadyForQuery, wire.TxIdle)
	if !tr.Idle() {
		t.Error("not idle after ReadyForQuery")
	}
}

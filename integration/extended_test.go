package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// PostgreSQL type OIDs the tests look for in descriptions.
const (
	oidInt8 = 20
	oidInt4 = 23
	oidText = 25
)

// unnamedQuery is one shape of query a client of TestUnnamedStatementTrap
// runs: different SQL and result types per shape, so that a Bind meeting
// another client's unnamed statement cannot go unnoticed.
type unnamedQuery struct {
	name  string
	check func(ctx context.Context, conn *pgx.Conn, i int) error
}

var unnamedQueries = []unnamedQuery{
	{"int", func(ctx context.Context, conn *pgx.Conn, i int) error {
		var n int
		if err := conn.QueryRow(ctx, "SELECT $1::int * 2", i).Scan(&n); err != nil {
			return err
		}
		if n != 2*i {
			return fmt.Errorf("SELECT %d * 2 = %d", i, n)
		}
		return nil
	}},
	{"text and int8", func(ctx context.Context, conn *pgx.Conn, i int) error {
		var s string
		var n int64
		if err := conn.QueryRow(ctx, "SELECT $1::text || 'b', 42::int8", strconv.Itoa(i)).Scan(&s, &n); err != nil {
			return err
		}
		if s != strconv.Itoa(i)+"b" || n != 42 {
			return fmt.Errorf("got %q, %d; want %q, 42", s, n, strconv.Itoa(i)+"b")
		}
		return nil
	}},
	{"array and float", func(ctx context.Context, conn *pgx.Conn, i int) error {
		var a []int32
		var f float64
		if err := conn.QueryRow(ctx, "SELECT ARRAY[$1::int4, $1::int4 + 1], $2::float8 / 2", i, float64(i)).Scan(&a, &f); err != nil {
			return err
		}
		if !slices.Equal(a, []int32{int32(i), int32(i) + 1}) || f != float64(i)/2 {
			return fmt.Errorf("got %v, %v", a, f)
		}
		return nil
	}},
	{"no parameters, three columns", func(ctx context.Context, conn *pgx.Conn, i int) error {
		var b bool
		var s string
		var n int16
		if err := conn.QueryRow(ctx, "SELECT true, 'const'::varchar, 7::int2").Scan(&b, &s, &n); err != nil {
			return err
		}
		if !b || s != "const" || n != 7 {
			return fmt.Errorf("got %v, %q, %d", b, s, n)
		}
		return nil
	}},
}

// TestUnnamedStatementTrap: pgx's describe_exec mode prepares the unnamed
// statement (Parse, Describe, Sync) and binds it in a second round trip
// (Bind, Execute, Sync). Between the two another client may have used the
// server connection and replaced its unnamed statement.
func TestUnnamedStatementTrap(t *testing.T) {
	const queries = 300
	for _, tc := range []struct {
		name              string
		mode              string
		poolSize, clients int
	}{
		{"two clients on one server connection", "describe_exec", 1, 2},
		{"eight clients on two server connections", "describe_exec", 2, 8},
		// For contrast, pgx's default: named statements, the same names
		// for the same SQL in different clients.
		{"named statements, eight clients on two server connections", "cache_statement", 2, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startPooler(t, "", fmt.Sprintf("pool_size: %d", tc.poolSize))
			ctx := t.Context()
			conns := make([]*pgx.Conn, tc.clients)
			for k := range conns {
				conns[k] = p.connect(t, "default_query_exec_mode="+tc.mode)
			}
			errs := make(chan error, tc.clients)
			var wg sync.WaitGroup
			for k, conn := range conns {
				q := unnamedQueries[k%len(unnamedQueries)]
				wg.Go(func() {
					for i := range queries {
						if err := q.check(ctx, conn, i); err != nil {
							errs <- fmt.Errorf("client %d (%s), query %d: %w", k, q.name, i, err)
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if n := p.logCount("client pinned"); n != 0 {
				t.Errorf("%d clients pinned; prepared statements must not pin", n)
			}
		})
	}
}

// pipeResult is one result a pgconn pipeline gave, in a form easy to
// compare.
type pipeResult struct {
	kind string // "rows", "sync", "error" or "description"
	tag  string
	rows [][]string
	code string
}

func (r pipeResult) String() string {
	switch r.kind {
	case "rows":
		return fmt.Sprintf("%s %q", r.tag, r.rows)
	case "error":
		return "error " + r.code
	}
	return r.kind
}

// drainPipeline sends what pl has queued and reads every result it has
// left. A PostgreSQL error is a result; any other error ends the pipeline
// and fails the test.
func drainPipeline(t *testing.T, pl *pgconn.Pipeline) []pipeResult {
	t.Helper()
	if err := pl.Flush(); err != nil {
		t.Fatal(err)
	}
	var out []pipeResult
	for {
		res, err := pl.GetResults()
		var pgErr *pgconn.PgError
		switch {
		case errors.As(err, &pgErr):
			out = append(out, pipeResult{kind: "error", code: pgErr.Code})
			continue
		case err != nil:
			t.Fatalf("pipeline after %v: %v", out, err)
		case res == nil:
			return out
		}
		switch res := res.(type) {
		case *pgconn.ResultReader:
			r := res.Read()
			if errors.As(r.Err, &pgErr) {
				out = append(out, pipeResult{kind: "error", code: pgErr.Code})
				continue
			}
			if r.Err != nil {
				t.Fatalf("pipeline after %v: %v", out, r.Err)
			}
			pr := pipeResult{kind: "rows", tag: r.CommandTag.String()}
			for _, row := range r.Rows {
				var vals []string
				for _, v := range row {
					vals = append(vals, string(v))
				}
				pr.rows = append(pr.rows, vals)
			}
			out = append(out, pr)
		case *pgconn.PipelineSync:
			out = append(out, pipeResult{kind: "sync"})
		case *pgconn.StatementDescription:
			out = append(out, pipeResult{kind: "description"})
		default:
			t.Fatalf("pipeline: unexpected result %T", res)
		}
	}
}

func assertPipeResults(t *testing.T, got []pipeResult, want ...string) {
	t.Helper()
	var gotS []string
	for _, r := range got {
		gotS = append(gotS, r.String())
	}
	if !slices.Equal(gotS, want) {
		t.Errorf("pipeline results:\n got %q\nwant %q", gotS, want)
	}
}

// pgconnDSN is a URL for pgconn (which, unlike pgx, would pass pgx's
// default_query_exec_mode on to the server as a setting).
func (p *pooler) pgconnDSN() string {
	return fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable", p.addr, p.db)
}

func (p *pooler) connectPgconn(t *testing.T) *pgconn.PgConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := pgconn.Connect(ctx, p.pgconnDSN())
	if err != nil {
		t.Fatalf("connect through pgpoolx: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.WithoutCancel(t.Context())) })
	return conn
}

func (p *pooler) execDirect(t *testing.T, sql string) {
	t.Helper()
	if err := p.cluster.Exec(t.Context(), p.db, sql); err != nil {
		t.Fatal(err)
	}
}

func (p *pooler) queryInts(t *testing.T, sql string) []int {
	t.Helper()
	rows, err := p.direct(t).Query(t.Context(), sql)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// startOtherClient has conn, which shares the server connections with a
// client under test, run statements until the returned function is
// called, checking that each runs in a transaction of its own, never in
// the other client's. It returns once the first statement has run; the
// function reports any failure and how many statements ran.
func startOtherClient(t *testing.T, conn *pgx.Conn) (stop func()) {
	t.Helper()
	ctx := t.Context()
	started, stopping := make(chan struct{}), make(chan struct{})
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		for n := 0; ; {
			var noXID bool
			if err := conn.QueryRow(ctx, "SELECT pg_current_xact_id_if_assigned() IS NULL").Scan(&noXID); err != nil {
				done <- result{n, err}
				return
			}
			if st := conn.PgConn().TxStatus(); !noXID || st != 'I' {
				done <- result{n, fmt.Errorf("statement %d ran inside another client's transaction (xid already assigned: %v, status after: %c)", n, !noXID, st)}
				return
			}
			if n++; n == 1 {
				close(started)
			}
			select {
			case <-stopping:
				done <- result{n, nil}
				return
			default:
			}
		}
	}()
	select {
	case <-started:
	case r := <-done:
		t.Fatalf("other client: %v", r.err)
	}
	return func() {
		t.Helper()
		close(stopping)
		r := <-done
		if r.err != nil {
			t.Errorf("other client: %v", r.err)
		}
		t.Logf("the other client ran %d statements meanwhile", r.n)
	}
}

// syncEach sends each statement in the pipeline followed by a Sync and
// returns all the results.
func syncEach(t *testing.T, pl *pgconn.Pipeline, sqls ...string) []pipeResult {
	t.Helper()
	for _, sql := range sqls {
		pl.SendQueryParams(sql, nil, nil, nil, nil)
		pl.SendPipelineSync()
	}
	return drainPipeline(t, pl)
}

// TestPipelinesAcrossTransactionBoundaries sends whole transactions, and
// failures, in one pipeline.
func TestPipelinesAcrossTransactionBoundaries(t *testing.T) {
	p := startPooler(t, "", "pool_size: 1")
	p.execDirect(t, "CREATE TABLE pipe (id int PRIMARY KEY, src text)")
	ctx := t.Context()

	t.Run("pgx batch", func(t *testing.T) {
		conn := p.connect(t, "")
		b := &pgx.Batch{}
		b.Queue("BEGIN")
		b.Queue("INSERT INTO pipe VALUES (1, 'batch')")
		b.Queue("INSERT INTO pipe VALUES (2, 'batch')")
		b.Queue("COMMIT")
		b.Queue("SELECT count(*) FROM pipe WHERE src = 'batch'")
		br := conn.SendBatch(ctx, b)
		for _, want := range []string{"BEGIN", "INSERT 0 1", "INSERT 0 1", "COMMIT"} {
			tag, err := br.Exec()
			if err != nil || tag.String() != want {
				t.Fatalf("got %q, %v; want %q", tag, err, want)
			}
		}
		var n int
		if err := br.QueryRow().Scan(&n); err != nil || n != 2 {
			t.Fatalf("count = %d, %v; want 2", n, err)
		}
		if err := br.Close(); err != nil {
			t.Fatal(err)
		}
		if got := p.queryInts(t, "SELECT id FROM pipe WHERE src = 'batch' ORDER BY id"); !slices.Equal(got, []int{1, 2}) {
			t.Errorf("committed ids %v, want [1 2]", got)
		}
	})

	t.Run("sync after each statement", func(t *testing.T) {
		// Between BEGIN's ReadyForQuery ('T') and COMMIT's ('I') the
		// server connection is the client's alone, though each statement
		// has a Sync; another client hammers the only server connection.
		other := p.connect(t, "")
		conn := p.connectPgconn(t)
		stopOther := startOtherClient(t, other)

		pl := conn.StartPipeline(ctx)
		assertPipeResults(t, syncEach(t, pl, "BEGIN", "INSERT INTO pipe VALUES (10, 'sync')"),
			`BEGIN []`, "sync", `INSERT 0 1 []`, "sync")
		if st := conn.TxStatus(); st != 'T' {
			t.Fatalf("transaction status %c after BEGIN, want T", st)
		}
		// Idle in the transaction between round trips, while the other
		// client waits for the server connection.
		for range 20 {
			assertPipeResults(t, syncEach(t, pl, "SELECT count(*) FROM pipe WHERE src = 'sync'"), `SELECT 1 [["1"]]`, "sync")
		}
		got := syncEach(t, pl,
			"INSERT INTO pipe VALUES (11, 'sync')",
			"COMMIT",
			"SELECT count(*) FROM pipe WHERE src = 'sync'",
		)
		if err := pl.Close(); err != nil {
			t.Fatal(err)
		}
		stopOther()
		assertPipeResults(t, got, `INSERT 0 1 []`, "sync", `COMMIT []`, "sync", `SELECT 1 [["2"]]`, "sync")
		if st := conn.TxStatus(); st != 'I' {
			t.Errorf("transaction status %c after COMMIT, want I", st)
		}
	})

	t.Run("failure between syncs", func(t *testing.T) {
		// Each Sync ends an implicit transaction: the failure of the
		// second takes nothing of the first or the third with it.
		conn := p.connectPgconn(t)
		pl := conn.StartPipeline(ctx)
		got := syncEach(t, pl,
			"INSERT INTO pipe VALUES (20, 'between') RETURNING id",
			"SELECT 1/0",
			"INSERT INTO pipe VALUES (21, 'between') RETURNING id",
		)
		if err := pl.Close(); err != nil {
			t.Fatal(err)
		}
		assertPipeResults(t, got, `INSERT 0 1 [["20"]]`, "sync", "error 22012", "sync", `INSERT 0 1 [["21"]]`, "sync")
		if got := p.queryInts(t, "SELECT id FROM pipe WHERE src = 'between' ORDER BY id"); !slices.Equal(got, []int{20, 21}) {
			t.Errorf("committed ids %v, want [20 21]", got)
		}
		assertWorks(t, conn)
		assertWorks(t, p.connectPgconn(t)) // and the only server connection is free for others
	})

	t.Run("failure inside one sync", func(t *testing.T) {
		// Without a Sync between them the statements share an implicit
		// transaction: the failure rolls back the first and skips the rest.
		conn := p.connectPgconn(t)
		pl := conn.StartPipeline(ctx)
		for _, sql := range []string{
			"INSERT INTO pipe VALUES (30, 'inside') RETURNING id",
			"SELECT 1/0",
			"INSERT INTO pipe VALUES (31, 'inside') RETURNING id",
		} {
			pl.SendQueryParams(sql, nil, nil, nil, nil)
		}
		pl.SendPipelineSync()
		pl.SendQueryParams("SELECT 'after'", nil, nil, nil, nil)
		pl.SendPipelineSync()
		got := drainPipeline(t, pl)
		if err := pl.Close(); err != nil {
			t.Fatal(err)
		}
		assertPipeResults(t, got, `INSERT 0 1 [["30"]]`, "error 22012", "sync", `SELECT 1 [["after"]]`, "sync")
		if got := p.queryInts(t, "SELECT id FROM pipe WHERE src = 'inside'"); len(got) != 0 {
			t.Errorf("ids %v committed, want none", got)
		}
		assertWorks(t, conn)
		assertWorks(t, p.connectPgconn(t))
	})

	t.Run("failure inside an explicit transaction", func(t *testing.T) {
		// After the error the transaction is failed ('E'), still the
		// client's, until its ROLLBACK.
		other := p.connect(t, "")
		conn := p.connectPgconn(t)
		stopOther := startOtherClient(t, other)
		pl := conn.StartPipeline(ctx)
		assertPipeResults(t, syncEach(t, pl, "BEGIN", "INSERT INTO pipe VALUES (40, 'explicit')", "SELECT 1/0"),
			`BEGIN []`, "sync", `INSERT 0 1 []`, "sync", "error 22012", "sync")
		if st := conn.TxStatus(); st != 'E' {
			t.Fatalf("transaction status %c after the error, want E", st)
		}
		for range 10 {
			assertPipeResults(t, syncEach(t, pl, "SELECT 1"), "error 25P02", "sync")
		}
		assertPipeResults(t, syncEach(t, pl, "ROLLBACK", "SELECT 'after'"), `ROLLBACK []`, "sync", `SELECT 1 [["after"]]`, "sync")
		if err := pl.Close(); err != nil {
			t.Fatal(err)
		}
		stopOther()
		if got := p.queryInts(t, "SELECT id FROM pipe WHERE src = 'explicit'"); len(got) != 0 {
			t.Errorf("ids %v committed, want none", got)
		}
	})
}

// assertWorks runs a query on conn.
func assertWorks(t *testing.T, conn *pgconn.PgConn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	res := conn.ExecParams(ctx, "SELECT $1::text || '!'", [][]byte{[]byte("works")}, nil, nil, nil).Read()
	if res.Err != nil {
		t.Fatalf("connection unusable: %v", res.Err)
	}
	if len(res.Rows) != 1 || string(res.Rows[0][0]) != "works!" {
		t.Fatalf("got %q, want works!", res.Rows)
	}
}

// rawClient speaks the protocol message by message on a connection
// through the pooler, for flows no client library exposes one by one.
type rawClient struct {
	t    *testing.T
	fe   *pgproto3.Frontend
	conn net.Conn
}

func (p *pooler) connectRaw(t *testing.T) *rawClient {
	t.Helper()
	pc := p.connectPgconn(t)
	hc, err := pc.Hijack()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hc.Conn.Close() })
	return &rawClient{t: t, fe: hc.Frontend, conn: hc.Conn}
}

func (c *rawClient) send(msgs ...pgproto3.FrontendMessage) {
	c.t.Helper()
	for _, m := range msgs {
		c.fe.Send(m)
	}
	if err := c.fe.Flush(); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// receive reads the next message, which must be of want's type, and
// returns it. A reply that never comes fails the test at the deadline.
func (c *rawClient) receive(want pgproto3.BackendMessage) pgproto3.BackendMessage {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	msg, err := c.fe.Receive()
	if err != nil {
		c.t.Fatalf("waiting for %T: %v", want, err)
	}
	if fmt.Sprintf("%T", msg) != fmt.Sprintf("%T", want) {
		c.t.Fatalf("got %T %+v, want %T", msg, msg, want)
	}
	return msg
}

func fieldsOf(fields []pgproto3.FieldDescription) []string {
	var out []string
	for _, f := range fields {
		out = append(out, fmt.Sprintf("%s:%d", f.Name, f.DataTypeOID))
	}
	return out
}

func pgconnFields(fields []pgconn.FieldDescription) []string {
	var out []string
	for _, f := range fields {
		out = append(out, fmt.Sprintf("%s:%d", f.Name, f.DataTypeOID))
	}
	return out
}

// TestDescribeAndFlush: Describe of statements and portals, and batches
// that ask for replies with Flush and go on only when they have them.
func TestDescribeAndFlush(t *testing.T) {
	ctx := t.Context()

	t.Run("named statement", func(t *testing.T) {
		// Two clients give the same name to different statements and take
		// turns on one server connection: each keeps its own.
		p := startPooler(t, "", "pool_size: 1")
		a, b := p.connectPgconn(t), p.connectPgconn(t)
		sd, err := a.Prepare(ctx, "stmt", "SELECT $1::int4 AS a, $2::text AS b, now() AS c", nil)
		if err != nil {
			t.Fatal(err)
		}
		if sd.Name != "stmt" || !slices.Equal(sd.ParamOIDs, []uint32{oidInt4, oidText}) ||
			!slices.Equal(pgconnFields(sd.Fields), []string{"a:23", "b:25", "c:1184"}) {
			t.Errorf("description: name %q, parameters %v, fields %v", sd.Name, sd.ParamOIDs, pgconnFields(sd.Fields))
		}
		sdB, err := b.Prepare(ctx, "stmt", "SELECT $1::text || '-b' AS x", nil)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(sdB.ParamOIDs, []uint32{oidText}) || !slices.Equal(pgconnFields(sdB.Fields), []string{"x:25"}) {
			t.Errorf("description: parameters %v, fields %v", sdB.ParamOIDs, pgconnFields(sdB.Fields))
		}
		for i := range 3 {
			res := a.ExecPrepared(ctx, "stmt", [][]byte{[]byte(strconv.Itoa(i)), []byte("a")}, nil, nil).Read()
			if res.Err != nil || len(res.Rows) != 1 || string(res.Rows[0][0]) != strconv.Itoa(i) || string(res.Rows[0][1]) != "a" {
				t.Fatalf("client a: %q, %v", res.Rows, res.Err)
			}
			res = b.ExecPrepared(ctx, "stmt", [][]byte{[]byte(strconv.Itoa(i))}, nil, nil).Read()
			if res.Err != nil || len(res.Rows) != 1 || string(res.Rows[0][0]) != strconv.Itoa(i)+"-b" {
				t.Fatalf("client b: %q, %v", res.Rows, res.Err)
			}
		}
		// b also prepares a's statement under another name; a's
		// Deallocate takes nothing of b's.
		if _, err := b.Prepare(ctx, "same_as_a", "SELECT $1::int4 AS a, $2::text AS b, now() AS c", nil); err != nil {
			t.Fatal(err)
		}
		if err := a.Deallocate(ctx, "stmt"); err != nil {
			t.Fatal(err)
		}
		res := a.ExecPrepared(ctx, "stmt", [][]byte{[]byte("1"), []byte("a")}, nil, nil).Read()
		assertCode(t, res.Err, "26000") // prepared statement does not exist
		res = b.ExecPrepared(ctx, "stmt", [][]byte{[]byte("still")}, nil, nil).Read()
		if res.Err != nil || len(res.Rows) != 1 || string(res.Rows[0][0]) != "still-b" {
			t.Errorf("client b after a deallocated: %q, %v", res.Rows, res.Err)
		}
		res = b.ExecPrepared(ctx, "same_as_a", [][]byte{[]byte("8"), []byte("b")}, nil, nil).Read()
		if res.Err != nil || len(res.Rows) != 1 || string(res.Rows[0][0]) != "8" || string(res.Rows[0][1]) != "b" {
			t.Errorf("client b's copy of a's statement after a deallocated: %q, %v", res.Rows, res.Err)
		}
	})

	p := startPooler(t, "", "pool_size: 1")

	t.Run("parse, describe, flush", func(t *testing.T) {
		conn := p.connectPgconn(t)
		// Replies that never come fail the test at this deadline.
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		pl := conn.StartPipeline(ctx)
		pl.SendPrepare("", "SELECT $1::int8 AS n, $2::text AS s", nil)
		pl.SendFlushRequest()
		if err := pl.Flush(); err != nil {
			t.Fatal(err)
		}
		// No Sync yet: the replies come because of the Flush alone.
		res, err := pl.GetResults()
		if err != nil {
			t.Fatal(err)
		}
		sd, ok := res.(*pgconn.StatementDescription)
		if !ok {
			t.Fatalf("got %T, want a statement description", res)
		}
		if !slices.Equal(sd.ParamOIDs, []uint32{oidInt8, oidText}) || !slices.Equal(pgconnFields(sd.Fields), []string{"n:20", "s:25"}) {
			t.Errorf("description: parameters %v, fields %v", sd.ParamOIDs, pgconnFields(sd.Fields))
		}
		pl.SendQueryStatement(sd, [][]byte{[]byte("41"), []byte("x")}, nil, nil)
		pl.SendFlushRequest()
		if err := pl.Flush(); err != nil {
			t.Fatal(err)
		}
		res, err = pl.GetResults()
		if err != nil {
			t.Fatal(err)
		}
		rr, ok := res.(*pgconn.ResultReader)
		if !ok {
			t.Fatalf("got %T, want a result", res)
		}
		r := rr.Read()
		if r.Err != nil || len(r.Rows) != 1 || string(r.Rows[0][0]) != "41" || string(r.Rows[0][1]) != "x" {
			t.Fatalf("got %q, %v", r.Rows, r.Err)
		}
		if err := pl.Sync(); err != nil {
			t.Fatal(err)
		}
		assertPipeResults(t, drainPipeline(t, pl), "sync")
		if err := pl.Close(); err != nil {
			t.Fatal(err)
		}
		assertWorks(t, conn)
		assertWorks(t, p.connectPgconn(t))
	})

	t.Run("portal describe in an open batch", func(t *testing.T) {
		other := p.connectPgconn(t) // connected before the batch takes the only server connection
		c := p.connectRaw(t)
		c.send(
			&pgproto3.Parse{Query: "SELECT $1::int8 AS n, 'x'::varchar AS s"},
			&pgproto3.Describe{ObjectType: 'S'},
			&pgproto3.Bind{Parameters: [][]byte{[]byte("41")}},
			&pgproto3.Describe{ObjectType: 'P'},
			&pgproto3.Flush{},
		)
		c.receive(&pgproto3.ParseComplete{})
		pd := c.receive(&pgproto3.ParameterDescription{}).(*pgproto3.ParameterDescription)
		if !slices.Equal(pd.ParameterOIDs, []uint32{oidInt8}) {
			t.Errorf("parameter description %v, want [%d]", pd.ParameterOIDs, oidInt8)
		}
		rd := c.receive(&pgproto3.RowDescription{}).(*pgproto3.RowDescription)
		if got := fieldsOf(rd.Fields); !slices.Equal(got, []string{"n:20", "s:1043"}) {
			t.Errorf("statement row description %v", got)
		}
		c.receive(&pgproto3.BindComplete{})
		rd = c.receive(&pgproto3.RowDescription{}).(*pgproto3.RowDescription)
		if got := fieldsOf(rd.Fields); !slices.Equal(got, []string{"n:20", "s:1043"}) {
			t.Errorf("portal row description %v", got)
		}

		// The batch is open: the only server connection is this client's
		// until its Sync, so the other client waits.
		otherDone := make(chan pgconn.Result, 1)
		go func() {
			otherDone <- *other.ExecParams(ctx, "SELECT 'other'", nil, nil, nil, nil).Read()
		}()
		c.send(&pgproto3.Execute{}, &pgproto3.Flush{})
		dr := c.receive(&pgproto3.DataRow{}).(*pgproto3.DataRow)
		if len(dr.Values) != 2 || string(dr.Values[0]) != "41" || string(dr.Values[1]) != "x" {
			t.Errorf("data row %q", dr.Values)
		}
		if cc := c.receive(&pgproto3.CommandComplete{}).(*pgproto3.CommandComplete); string(cc.CommandTag) != "SELECT 1" {
			t.Errorf("command tag %q", cc.CommandTag)
		}
		select {
		case r := <-otherDone:
			t.Errorf("another client ran (%q, %v) on the server connection of an open batch", r.Rows, r.Err)
		default:
		}
		c.send(&pgproto3.Sync{})
		if rfq := c.receive(&pgproto3.ReadyForQuery{}).(*pgproto3.ReadyForQuery); rfq.TxStatus != 'I' {
			t.Errorf("transaction status %c, want I", rfq.TxStatus)
		}
		select {
		case r := <-otherDone:
			if r.Err != nil || len(r.Rows) != 1 || string(r.Rows[0][0]) != "other" {
				t.Errorf("other client: %q, %v", r.Rows, r.Err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("other client still waiting after the batch's Sync")
		}
		c.send(&pgproto3.Terminate{})
	})
}

// TestExtendedProtocolErrors: errors the server reports for Parse and Bind
// reach the client with their SQLSTATE, and the session goes on.
func TestExtendedProtocolErrors(t *testing.T) {
	p := startPooler(t, "", "pool_size: 1")
	ctx := t.Context()

	for _, mode := range []string{"exec", "describe_exec"} {
		t.Run("parse error "+mode, func(t *testing.T) {
			conn := p.connect(t, "default_query_exec_mode="+mode)
			_, err := conn.Exec(ctx, "SELEC 1")
			assertCode(t, err, "42601")
			var n int
			if err := conn.QueryRow(ctx, "SELECT $1::int + 1", 1).Scan(&n); err != nil || n != 2 {
				t.Fatalf("after the error: %d, %v", n, err)
			}
		})
	}

	t.Run("parse error skips the rest of the batch", func(t *testing.T) {
		conn := p.connectPgconn(t)
		pl := conn.StartPipeline(ctx)
		pl.SendQueryParams("SELEC 1", nil, nil, nil, nil)
		pl.SendQueryParams("SELECT 2", nil, nil, nil, nil)
		pl.SendPipelineSync()
		pl.SendQueryParams("SELECT 3", nil, nil, nil, nil)
		pl.SendPipelineSync()
		got := drainPipeline(t, pl)
		if err := pl.Close(); err != nil {
			t.Fatal(err)
		}
		assertPipeResults(t, got, "error 42601", "sync", `SELECT 1 [["3"]]`, "sync")
		assertWorks(t, conn)
		assertWorks(t, p.connectPgconn(t))
	})

	t.Run("bind with too few parameters", func(t *testing.T) {
		conn := p.connectPgconn(t)
		res := conn.ExecParams(ctx, "SELECT $1::int", nil, nil, nil, nil).Read()
		assertCode(t, res.Err, "08P01")
		if !bytes.Contains([]byte(res.Err.Error()), []byte("supplies 0 parameters")) {
			t.Errorf("error %q, want the server's", res.Err)
		}
		assertWorks(t, conn)
		assertWorks(t, p.connectPgconn(t))
	})

	t.Run("refused named parse leaves no statement", func(t *testing.T) {
		conn := p.connectPgconn(t)
		_, err := conn.Prepare(ctx, "s", "SELEC 1", nil)
		assertCode(t, err, "42601")
		res := conn.ExecPrepared(ctx, "s", nil, nil, nil).Read()
		assertCode(t, res.Err, "26000") // prepared statement "s" does not exist
		if _, err := conn.Prepare(ctx, "s", "SELECT 5", nil); err != nil {
			t.Fatalf("prepare after the refused one: %v", err)
		}
		res = conn.ExecPrepared(ctx, "s", nil, nil, nil).Read()
		if res.Err != nil || len(res.Rows) != 1 || string(res.Rows[0][0]) != "5" {
			t.Errorf("got %q, %v; want 5", res.Rows, res.Err)
		}
	})

	t.Run("refused unnamed parse leaves no statement", func(t *testing.T) {
		c := p.connectRaw(t)
		c.send(&pgproto3.Parse{Query: "SELECT 'earlier'"}, &pgproto3.Sync{})
		c.receive(&pgproto3.ParseComplete{})
		c.receive(&pgproto3.ReadyForQuery{})
		// A Parse of the unnamed statement drops the earlier one before it
		// fails; the Bind then finds no statement at all.
		c.send(&pgproto3.Parse{Query: "SELEC 1"}, &pgproto3.Sync{})
		if er := c.receive(&pgproto3.ErrorResponse{}).(*pgproto3.ErrorResponse); er.Code != "42601" {
			t.Errorf("Parse: SQLSTATE %s (%s), want 42601", er.Code, er.Message)
		}
		c.receive(&pgproto3.ReadyForQuery{})
		c.send(&pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{})
		if er := c.receive(&pgproto3.ErrorResponse{}).(*pgproto3.ErrorResponse); er.Code != "26000" {
			t.Errorf("Bind: SQLSTATE %s (%s), want 26000", er.Code, er.Message)
		}
		c.receive(&pgproto3.ReadyForQuery{})
		assertWorks(t, p.connectPgconn(t))
	})

	t.Run("named parse of a name in use", func(t *testing.T) {
		conn := p.connectPgconn(t)
		if _, err := conn.Prepare(ctx, "dup", "SELECT 5", nil); err != nil {
			t.Fatal(err)
		}
		_, err := conn.Prepare(ctx, "dup", "SELECT 6", nil)
		assertCode(t, err, "42P05") // prepared statement "dup" already exists
		res := conn.ExecPrepared(ctx, "dup", nil, nil, nil).Read()
		if res.Err != nil || len(res.Rows) != 1 || string(res.Rows[0][0]) != "5" {
			t.Errorf("statement dup after the refused second Parse: %q, %v; want 5", res.Rows, res.Err)
		}
	})

	t.Run("describe and bind of an unknown statement", func(t *testing.T) {
		c := p.connectRaw(t)
		c.send(&pgproto3.Describe{ObjectType: 'S', Name: "nope"}, &pgproto3.Sync{})
		if er := c.receive(&pgproto3.ErrorResponse{}).(*pgproto3.ErrorResponse); er.Code != "26000" {
			t.Errorf("Describe: SQLSTATE %s (%s), want 26000", er.Code, er.Message)
		}
		c.receive(&pgproto3.ReadyForQuery{})
		c.send(&pgproto3.Bind{PreparedStatement: "nope"}, &pgproto3.Execute{}, &pgproto3.Sync{})
		if er := c.receive(&pgproto3.ErrorResponse{}).(*pgproto3.ErrorResponse); er.Code != "26000" {
			t.Errorf("Bind: SQLSTATE %s (%s), want 26000", er.Code, er.Message)
		}
		c.receive(&pgproto3.ReadyForQuery{})
		assertWorks(t, p.connectPgconn(t))
	})

	t.Run("bind with too many parameters", func(t *testing.T) {
		c := p.connectRaw(t)
		c.send(
			&pgproto3.Parse{Query: "SELECT 1"},
			&pgproto3.Bind{Parameters: [][]byte{[]byte("1"), []byte("2")}},
			&pgproto3.Execute{},
			&pgproto3.Sync{},
		)
		c.receive(&pgproto3.ParseComplete{})
		er := c.receive(&pgproto3.ErrorResponse{}).(*pgproto3.ErrorResponse)
		if er.Code != "08P01" {
			t.Errorf("SQLSTATE %s (%s), want 08P01", er.Code, er.Message)
		}
		if rfq := c.receive(&pgproto3.ReadyForQuery{}).(*pgproto3.ReadyForQuery); rfq.TxStatus != 'I' {
			t.Errorf("transaction status %c, want I", rfq.TxStatus)
		}
		c.send(&pgproto3.Query{String: "SELECT 'still here'"})
		c.receive(&pgproto3.RowDescription{})
		if dr := c.receive(&pgproto3.DataRow{}).(*pgproto3.DataRow); string(dr.Values[0]) != "still here" {
			t.Errorf("data row %q", dr.Values)
		}
		c.receive(&pgproto3.CommandComplete{})
		c.receive(&pgproto3.ReadyForQuery{})
		assertWorks(t, p.connectPgconn(t))
	})
}

// TestManyClientsVariedTypes is an application's connection pool of 50
// connections sharing 5 server connections, with parameters and results
// of many types in pgx's exec mode (text format both ways).
//
// It uses a pool of pgx connections of its own: pgxpool needs
// github.com/jackc/puddle/v2 in go.mod.
func TestManyClientsVariedTypes(t *testing.T) {
	const (
		poolSize   = 5
		appConns   = 50
		goroutines = 50
		queries    = 100
	)
	p := startPooler(t, "", fmt.Sprintf("pool_size: %d", poolSize))
	ctx := t.Context()
	idle := make(chan *pgx.Conn, appConns)
	for range appConns {
		idle <- p.connect(t, "default_query_exec_mode=exec")
	}

	type row struct {
		I        int64
		S        string
		F        float64
		TS       time.Time
		B        []byte
		Bool     bool
		Num      string
		Ints     []int32
		Strs     []string
		NullText *string
	}
	errs := make(chan error, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range queries {
				want := row{
					I:    int64(g)<<40 + int64(i),
					S:    fmt.Sprintf("g%d i%d 'quoted' \"double\" é ✓ \\", g, i),
					F:    float64(g) + float64(i)/3,
					TS:   time.UnixMicro(1_700_000_000_000_000 + int64(g*1_000_003+i*7)).UTC(),
					B:    []byte{byte(g), byte(i), 0, 255, '\\', 'x'},
					Bool: i%2 == 0,
					Num:  fmt.Sprintf("%d.%06d", g*1000+i, i*37),
					Ints: []int32{int32(g), int32(-i), 0},
					Strs: []string{"a", "b,c", `"q"`, "", fmt.Sprint(i)},
				}
				conn := <-idle
				var got row
				err := conn.QueryRow(ctx, `SELECT $1::int8, $2::text, $3::float8, $4::timestamptz, $5::bytea,
					$6::bool, $7::numeric::text, $8::int4[], $9::text[], $10::text`,
					want.I, want.S, want.F, want.TS, want.B, want.Bool, want.Num, want.Ints, want.Strs, nil).
					Scan(&got.I, &got.S, &got.F, &got.TS, &got.B, &got.Bool, &got.Num, &got.Ints, &got.Strs, &got.NullText)
				idle <- conn
				if err == nil && (got.I != want.I || got.S != want.S || got.F != want.F || !got.TS.Equal(want.TS) ||
					!bytes.Equal(got.B, want.B) || got.Bool != want.Bool || got.Num != want.Num ||
					!slices.Equal(got.Ints, want.Ints) || !slices.Equal(got.Strs, want.Strs) || got.NullText != nil) {
					err = fmt.Errorf("got %+v\nwant %+v", got, want)
				}
				if err != nil {
					errs <- fmt.Errorf("goroutine %d, query %d: %w", g, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := p.serverConns(t, p.direct(t)); n > poolSize {
		t.Errorf("%d server connections, want at most %d", n, poolSize)
	}
}

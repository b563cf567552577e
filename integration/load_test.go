package integration

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgpoolx/pgpoolx/internal/pgcluster"
)

// TestMultiplexingManyClientsOnFewServerConnections is the point of a
// transaction pooler: 200 clients, each with its own connection, share 10
// server connections, and every one of their 10,000 transactions lands.
func TestMultiplexingManyClientsOnFewServerConnections(t *testing.T) {
	const (
		poolSize    = 10
		clients     = 200
		txPerClient = 50
	)
	p := startPooler(t, "", fmt.Sprintf("pool_size: %d", poolSize))
	ctx := t.Context()
	direct := p.direct(t)
	if _, err := direct.Exec(ctx, `CREATE TABLE mux (client int, i int, xid xid8, PRIMARY KEY (client, i))`); err != nil {
		t.Fatal(err)
	}

	conns := make([]*pgx.Conn, clients)
	for k := range conns {
		conns[k] = p.connect(t, "")
	}

	stopSampling := p.sampleServerConns(t, direct)

	start := time.Now()
	errs := make(chan error, clients)
	var wg sync.WaitGroup
	for k, conn := range conns {
		wg.Go(func() {
			for i := range txPerClient {
				if err := insertInTx(ctx, conn, k, i); err != nil {
					errs <- fmt.Errorf("client %d, transaction %d: %w", k, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	maxConns, samples := stopSampling()
	t.Logf("%d transactions from %d clients in %s; %d samples, at most %d server connections",
		clients*txPerClient, clients, elapsed.Round(time.Millisecond), samples, maxConns)
	if maxConns > poolSize || maxConns <= 0 {
		t.Errorf("server connections peaked at %d, want 1..%d", maxConns, poolSize)
	}

	var rows, distinctClients, badClients, xids int
	err := direct.QueryRow(ctx, `SELECT count(*), count(DISTINCT client), count(DISTINCT xid),
		(SELECT count(*) FROM (SELECT client FROM mux GROUP BY client
			HAVING count(*) <> $1 OR min(i) <> 0 OR max(i) <> $1 - 1
				OR min(client) < 0 OR max(client) >= $2) bad)
		FROM mux`, txPerClient, clients).Scan(&rows, &distinctClients, &xids, &badClients)
	if err != nil {
		t.Fatal(err)
	}
	// With the primary key, 200 clients each holding i = 0..49 is exactly
	// the set of pairs the workers inserted.
	if rows != clients*txPerClient || distinctClients != clients || badClients != 0 {
		t.Errorf("table holds %d rows from %d clients (%d clients with wrong rows); want %d rows from %d clients",
			rows, distinctClients, badClients, clients*txPerClient, clients)
	}
	// A server connection handed to another client mid-transaction would
	// put two clients' inserts in one transaction, without an error.
	if xids != rows {
		t.Errorf("%d rows were inserted by %d transactions, want one transaction each", rows, xids)
	}
}

func insertInTx(ctx context.Context, conn *pgx.Conn, client, i int) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, "INSERT INTO mux (client, i, xid) VALUES ($1, $2, pg_current_xact_id())", client, i); err != nil {
		tx.Rollback(ctx)
		return err
	}
	return tx.Commit(ctx)
}

// copyPayload is row id's payload: varied lengths, non-ASCII text, and now
// and then the characters COPY's text format escapes.
func copyPayload(id int) string {
	s := "p" + strconv.Itoa(id) + "-" + strings.Repeat("ab", id%17)
	if id%1000 == 0 {
		s += "\ttab\\backslash\nnewline é ✓"
	}
	return s
}

// copyTextEscape escapes s as a field of COPY's text format.
var copyTextEscape = strings.NewReplacer(`\`, `\\`, "\t", `\t`, "\n", `\n`, "\r", `\r`)

func TestCopyBothWays(t *testing.T) {
	const n = 100_000
	p := startPooler(t, "", "pool_size: 1")
	ctx := t.Context()
	conn := p.connect(t, "")
	if _, err := conn.Exec(ctx, "CREATE TABLE t (id int, payload text)"); err != nil {
		t.Fatal(err)
	}

	// In: pgx's CopyFrom uses the binary COPY format.
	copied, err := conn.CopyFrom(ctx, pgx.Identifier{"t"}, []string{"id", "payload"},
		pgx.CopyFromSlice(n, func(i int) ([]any, error) {
			return []any{int32(i + 1), copyPayload(i + 1)}, nil
		}))
	if err != nil {
		t.Fatalf("CopyFrom: %v", err)
	}
	if copied != n {
		t.Errorf("CopyFrom copied %d rows, want %d", copied, n)
	}
	wantAgg := md5.New()
	for id := 1; id <= n; id++ {
		if id > 1 {
			io.WriteString(wantAgg, ",")
		}
		io.WriteString(wantAgg, strconv.Itoa(id)+":"+copyPayload(id))
	}
	var count int
	var gotAgg string
	err = conn.QueryRow(ctx, `SELECT count(*), md5(string_agg(id || ':' || payload, ',' ORDER BY id)) FROM t`).
		Scan(&count, &gotAgg)
	if err != nil {
		t.Fatal(err)
	}
	if count != n || gotAgg != hex.EncodeToString(wantAgg.Sum(nil)) {
		t.Errorf("server holds %d rows with md5 %s; want %d rows with md5 %x", count, gotAgg, n, wantAgg.Sum(nil))
	}

	// Out. ORDER BY makes the expected text exact; a plain "COPY t" would
	// rely on the heap's physical order.
	wantOut := md5.New()
	for id := 1; id <= n; id++ {
		io.WriteString(wantOut, strconv.Itoa(id)+"\t"+copyTextEscape.Replace(copyPayload(id))+"\n")
	}
	gotOut := &countingHash{Hash: md5.New()}
	tag, err := conn.PgConn().CopyTo(ctx, gotOut, "COPY (SELECT id, payload FROM t ORDER BY id) TO STDOUT")
	if err != nil {
		t.Fatalf("CopyTo: %v", err)
	}
	if tag.RowsAffected() != n {
		t.Errorf("CopyTo: command tag %q, want %d rows", tag, n)
	}
	if !bytes.Equal(gotOut.Sum(nil), wantOut.Sum(nil)) {
		t.Errorf("COPY TO output (%d bytes) has md5 %x, want %x", gotOut.n, gotOut.Sum(nil), wantOut.Sum(nil))
	}

	other := p.connect(t, "") // shares the only server connection
	assertRows := func(when string) {
		t.Helper()
		for _, c := range []*pgx.Conn{conn, other} {
			var got int
			if err := c.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&got); err != nil {
				t.Fatalf("%s: %v", when, err)
			}
			if got != n {
				t.Fatalf("%s: %d rows, want %d", when, got, n)
			}
		}
	}

	t.Run("bad data midway", func(t *testing.T) {
		// The bad line comes early; megabytes of good data follow it, sent
		// while the server has already given up on the COPY.
		data := "100001\tgood\nnot-a-number\tbad\n" + strings.Repeat("100002\tmore\n", 200_000)
		_, err := conn.PgConn().CopyFrom(ctx, strings.NewReader(data), "COPY t (id, payload) FROM STDIN")
		assertCode(t, err, "22P02")
		assertRows("after the failed COPY")
	})

	t.Run("CopyFail", func(t *testing.T) {
		r := io.MultiReader(strings.NewReader(strings.Repeat("100003\tunwanted\n", 10_000)),
			failingReader{errors.New("client changed its mind")})
		_, err := conn.PgConn().CopyFrom(ctx, r, "COPY t (id, payload) FROM STDIN")
		assertCode(t, err, "57014")
		if !strings.Contains(err.Error(), "client changed its mind") {
			t.Errorf("error %q does not carry the CopyFail message", err)
		}
		assertRows("after CopyFail")
	})
}

type countingHash struct {
	hash.Hash
	n int64
}

func (h *countingHash) Write(b []byte) (int, error) {
	h.n += int64(len(b))
	return h.Hash.Write(b)
}

type failingReader struct{ err error }

func (r failingReader) Read([]byte) (int, error) { return 0, r.err }

// clientBinary finds a PostgreSQL client program: on PATH, else next to
// the server binaries. It skips the test when there is none, except in CI.
func clientBinary(t *testing.T, name string) string {
	t.Helper()
	if path, err := exec.LookPath(name); err == nil {
		return path
	}
	if dir, err := pgcluster.BinDir(); err == nil {
		path := filepath.Join(dir, name)
		if _, err := os.Stat(path); err == nil {
			return path
		}
	}
	if pgcluster.InCI() {
		t.Fatalf("%s not found on PATH or with the PostgreSQL server binaries", name)
	}
	t.Skipf("skipping: %s not found (set CI=true to make this a failure)", name)
	return ""
}

// libpqEnv is the environment for a libpq program connecting to addr.
func libpqEnv(t *testing.T, addr, db string) []string {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return append(os.Environ(), "PGHOST="+host, "PGPORT="+port, "PGUSER=postgres", "PGDATABASE="+db,
		"PGCONNECT_TIMEOUT=10", "PGAPPNAME="+t.Name())
}

var (
	pgbenchProcessed = regexp.MustCompile(`(?m)^number of transactions actually processed: (\d+)`)
	pgbenchFailed    = regexp.MustCompile(`(?m)^number of failed transactions: (\d+)`)
	pgbenchTPS       = regexp.MustCompile(`(?m)^tps = [0-9.]+ \(without initial connection time\)$`)
)

// TestPgbench is the acceptance run: pgbench's TPC-B-like transactions from
// 50 clients through 10 server connections, without a single failure.
func TestPgbench(t *testing.T) {
	pgbench := clientBinary(t, "pgbench")
	const poolSize = 10
	p := startPooler(t, "", fmt.Sprintf("pool_size: %d", poolSize))
	run := func(t *testing.T, env []string, args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), pgbench, args...)
		cmd.Env = env
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("pgbench %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, &stdout, tailLines(stderr.String(), 40))
		}
		return stdout.String()
	}
	check := func(t *testing.T, out string) {
		t.Helper()
		processed := pgbenchProcessed.FindStringSubmatch(out)
		failed := pgbenchFailed.FindStringSubmatch(out)
		tps := pgbenchTPS.FindString(out)
		if processed == nil || failed == nil || tps == "" {
			t.Fatalf("unexpected pgbench output:\n%s", out)
		}
		t.Log(tps)
		if failed[1] != "0" {
			t.Errorf("number of failed transactions: %s, want 0", failed[1])
		}
		if n, _ := strconv.Atoi(processed[1]); n == 0 {
			t.Errorf("no transactions processed")
		}
	}

	// Initialise straight against PostgreSQL: the pooler is not under test.
	run(t, libpqEnv(t, net.JoinHostPort(p.cluster.Host(), strconv.Itoa(p.cluster.Port())), p.db), "-i", "-s", "1", "-q")
	through := libpqEnv(t, p.addr, p.db)

	t.Run("tpcb extended", func(t *testing.T) {
		out := run(t, through, "-c", "50", "-j", "2", "-T", "10", "-M", "extended")
		check(t, out)
		if n := p.serverConns(t, p.direct(t)); n > poolSize {
			t.Errorf("%d server connections after the run, want at most %d", n, poolSize)
		}
	})
	t.Run("select-only simple", func(t *testing.T) {
		check(t, run(t, through, "-c", "20", "-j", "2", "-T", "3", "-M", "simple", "-S"))
	})
	t.Run("tpcb prepared", func(t *testing.T) {
		// Each pgbench client prepares its statements on connecting, all
		// from one thread per -j: more clients than server connections.
		check(t, run(t, through, "-c", "20", "-j", "2", "-T", "3", "-M", "prepared"))
	})
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestLargeValuesRoundTrip moves values far larger than any buffer of the
// pooler's in both directions.
func TestLargeValuesRoundTrip(t *testing.T) {
	p := startPooler(t, "", "pool_size: 1")
	ctx := t.Context()

	t.Run("64 MiB text result", func(t *testing.T) {
		const size = 64 << 20
		conn := p.connect(t, "")
		var s string
		if err := conn.QueryRow(ctx, "SELECT repeat('x', $1)", size).Scan(&s); err != nil {
			t.Fatal(err)
		}
		if len(s) != size || strings.Count(s, "x") != size {
			t.Errorf("got %d bytes (%d of them 'x'), want %d times 'x'", len(s), strings.Count(s, "x"), size)
		}
	})

	blob := make([]byte, 16<<20)
	rand.NewChaCha8([32]byte{1, 6}).Read(blob)
	wantSum := sha256.Sum256(blob)
	setup := p.connect(t, "")
	if _, err := setup.Exec(ctx, "CREATE TABLE blobs (id int PRIMARY KEY, v bytea)"); err != nil {
		t.Fatal(err)
	}
	// describe_exec sends the parameter in binary. (exec mode would send it
	// as 32 MiB of hex, which takes pgx seconds under the race detector.)
	t.Run("16 MiB bytea parameter", func(t *testing.T) {
		conn := p.connect(t, "default_query_exec_mode=describe_exec")
		if _, err := conn.Exec(ctx, "INSERT INTO blobs (id, v) VALUES (1, $1)", blob); err != nil {
			t.Fatal(err)
		}
		var serverSum, back []byte
		var length int
		err := conn.QueryRow(ctx, "SELECT sha256(v), length(v), v FROM blobs WHERE id = 1").Scan(&serverSum, &length, &back)
		if err != nil {
			t.Fatal(err)
		}
		if length != len(blob) || !bytes.Equal(serverSum, wantSum[:]) {
			t.Errorf("server holds %d bytes with sha256 %x, want %d bytes with %x", length, serverSum, len(blob), wantSum)
		}
		if got := sha256.Sum256(back); got != wantSum {
			t.Errorf("read back %d bytes with sha256 %x, want %x", len(back), got, wantSum)
		}
	})
}

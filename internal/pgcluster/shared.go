package pgcluster

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
)

// Shared is one cluster for a whole test binary, started by the first test
// that asks for it. Declare it at package level and stop it in TestMain:
//
//	var pg pgcluster.Shared
//
//	func TestMain(m *testing.M) { os.Exit(pg.Run(m)) }
//
//	func TestSomething(t *testing.T) {
//		c := pg.Get(t)
//		db := c.NewDatabase(t)
//		...
//	}
//
// When the PostgreSQL binaries are missing, Get skips the test, or fails it
// when the CI environment variable is set: CI must not pass by skipping.
type Shared struct {
	// Settings are passed to Start (Options.Settings). Set them before
	// the first Get.
	Settings map[string]string
	// HBA and Files are passed to Start (Options.HBA, Options.Files). Set
	// them before the first Get.
	HBA   []string
	Files map[string][]byte

	once sync.Once
	mu   sync.Mutex
	c    *Cluster
	err  error
}

// Get returns the shared cluster, starting it on first use, and has the end
// of the server log printed if t fails.
func (s *Shared) Get(tb testing.TB) *Cluster {
	tb.Helper()
	s.once.Do(func() {
		// The context only bounds the start, not the cluster's life.
		c, err := Start(tb.Context(), Options{Settings: s.Settings, HBA: s.HBA, Files: s.Files})
		s.mu.Lock()
		s.c, s.err = c, err
		s.mu.Unlock()
	})
	s.mu.Lock()
	c, err := s.c, s.err
	s.mu.Unlock()
	if err != nil {
		SkipOrFail(tb, err)
	}
	c.LogOnFailure(tb)
	return c
}

// Stop stops the shared cluster if it was started.
func (s *Shared) Stop() error {
	s.mu.Lock()
	c := s.c
	s.mu.Unlock()
	if c == nil {
		return nil
	}
	return c.Stop()
}

// Run runs the tests, then stops the cluster; it returns the exit code for
// os.Exit. A cluster that fails to stop fails the run.
func (s *Shared) Run(m *testing.M) int {
	code := m.Run()
	if err := s.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "pgcluster: stop shared cluster: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// SkipOrFail ends the test for err: a skip when err is ErrNoBinaries and we
// are not in CI, a failure otherwise.
func SkipOrFail(tb testing.TB, err error) {
	tb.Helper()
	if errors.Is(err, ErrNoBinaries) && !InCI() {
		tb.Skipf("skipping: %v (set CI=true to make this a failure)", err)
	}
	tb.Fatalf("pgcluster: %v", err)
}

// InCI reports whether the CI environment variable is set to something
// other than "", "0" or "false".
func InCI() bool {
	switch strings.ToLower(os.Getenv("CI")) {
	case "", "0", "false":
		return false
	}
	return true
}

// LogOnFailure has the last 50 lines of the server log printed when tb
// fails. The log is the whole cluster's, so with a shared cluster it holds
// other tests' lines too; log_line_prefix names user, database and pid.
func (c *Cluster) LogOnFailure(tb testing.TB) {
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("PostgreSQL server log %s (last 50 lines):\n%s", c.logPath, c.LogTail(50))
		}
	})
}

// NewDatabase creates a fresh database named after the test and returns its
// name. It is not dropped: the cluster is thrown away.
func (c *Cluster) NewDatabase(tb testing.TB) string {
	tb.Helper()
	name := dbName(tb.Name(), c.dbSeq.Add(1))
	if err := c.CreateDatabase(tb.Context(), name); err != nil {
		tb.Fatalf("pgcluster: %v", err)
	}
	return name
}

// dbName makes a lower-case database name from a test name; PostgreSQL
// allows 63 bytes.
func dbName(testName string, seq uint64) string {
	suffix := fmt.Sprintf("_%d", seq)
	var b strings.Builder
	b.WriteString("t_")
	for _, r := range strings.ToLower(testName) {
		if b.Len() >= 63-len(suffix) {
			break
		}
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	b.WriteString(suffix)
	return b.String()
}

package pgcluster

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// ErrNoBinaries is wrapped by BinDir and Start when no PostgreSQL server
// binaries can be found. Tests skip on it locally and fail on it in CI.
var ErrNoBinaries = errors.New("PostgreSQL server binaries (initdb, pg_ctl, postgres) not found")

// serverBinaries are the programs a directory must hold to be usable.
var serverBinaries = []string{"initdb", "pg_ctl", "postgres"}

// debianBinGlob is where Debian and Ubuntu put each major version's server
// binaries, none of which are on PATH there.
const debianBinGlob = "/usr/lib/postgresql/*/bin"

// BinDir returns the directory holding initdb, pg_ctl and postgres. It tries,
// in order: the PG_BINDIR environment variable (which, when set, must be
// right: there is no fallback from it), `pg_config --bindir`, and the newest
// Debian-style version directory.
func BinDir() (string, error) {
	if dir := os.Getenv("PG_BINDIR"); dir != "" {
		if err := hasServerBinaries(dir); err != nil {
			return "", fmt.Errorf("PG_BINDIR=%s: %w", dir, err)
		}
		return dir, nil
	}

	var tried []string
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		dir := strings.TrimSpace(string(out))
		// pg_config may come from a client-only install (libpq-dev) that
		// names a directory without a server in it.
		if hasServerBinaries(dir) == nil {
			return dir, nil
		}
		tried = append(tried, dir+" (from pg_config)")
	} else {
		tried = append(tried, "pg_config (not runnable)")
	}

	dirs, _ := filepath.Glob(debianBinGlob)
	sort.Slice(dirs, func(i, j int) bool {
		return versionLess(filepath.Base(filepath.Dir(dirs[j])), filepath.Base(filepath.Dir(dirs[i])))
	})
	for _, dir := range dirs {
		if hasServerBinaries(dir) == nil {
			return dir, nil
		}
	}
	tried = append(tried, debianBinGlob)

	return "", fmt.Errorf("%w (tried %s); install them (Debian: apt-get install postgresql) or set PG_BINDIR",
		ErrNoBinaries, strings.Join(tried, ", "))
}

func hasServerBinaries(dir string) error {
	for _, name := range serverBinaries {
		p := filepath.Join(dir, name)
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrNoBinaries, err)
		}
		if fi.IsDir() || fi.Mode()&0o111 == 0 {
			return fmt.Errorf("%w: %s is not executable", ErrNoBinaries, p)
		}
	}
	return nil
}

// versionLess compares dotted version numbers ("9.6" < "15" < "16.1");
// parts that are not numbers compare as text.
func versionLess(a, b string) bool {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(pa) && i < len(pb); i++ {
		na, errA := strconv.Atoi(pa[i])
		nb, errB := strconv.Atoi(pb[i])
		switch {
		case errA == nil && errB == nil:
			if na != nb {
				return na < nb
			}
		case pa[i] != pb[i]:
			return pa[i] < pb[i]
		}
	}
	return len(pa) < len(pb)
}

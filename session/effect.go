package session

import (
	"strings"

	"github.com/pgpoolx/pgpoolx/pinning"
)

// Effect is what a statement does to session state, as far as pgpoolx
// acts on it.
type Effect struct {
	// Changes means the statement may leave state in the session: the
	// transaction it runs in is probed when it ends (see ProbeSQL).
	Changes bool
	// Load is a LOAD: its effect cannot be known or undone.
	Load bool
	// DropsStatements is DISCARD ALL or DEALLOCATE ALL: the server forgets
	// every prepared statement, pgpoolx's included.
	DropsStatements bool
	// OnlyLocks means session advisory locks are all it may change, so
	// that a probe of the locks alone (LockProbeSQL) is enough.
	OnlyLocks bool
}

// EffectOf returns the effect of a classified statement. It errs towards
// Changes: a needless probe costs one round trip, a missed one leaks.
func EffectOf(st pinning.Statement) Effect {
	var e Effect
	switch st.Kind {
	case pinning.Set, pinning.Reset, pinning.ResetAll, pinning.SetRole, pinning.ResetRole,
		pinning.SetSessionAuthorization, pinning.SessionCharacteristics,
		pinning.DiscardTemp, pinning.Prepare, pinning.Deallocate,
		pinning.Listen, pinning.Unlisten, pinning.UnlistenAll, pinning.Drop,
		pinning.DeclareHold, pinning.CloseCursor, pinning.CloseAllCursors:
		e.Changes = true
	case pinning.CreateTemp:
		e.Changes = !st.OnCommitDrop
	case pinning.DiscardAll, pinning.DeallocateAll:
		e.Changes, e.DropsStatements = true, true
	case pinning.Load:
		e.Changes, e.Load = true, true
	case pinning.Other, pinning.Execute:
		// A DO block or a procedure may do anything.
		e.Changes = hasPrefixFold(st.Text, "do") || hasPrefixFold(st.Text, "call")
	}
	for _, sc := range st.SetConfigs {
		if !sc.Known || !sc.IsLocal {
			e.Changes = true
		}
	}
	if st.AdvisoryLocks > 0 || st.AdvisoryUnlocks > 0 || st.AdvisoryUnlockAll {
		e.OnlyLocks = !e.Changes
		e.Changes = true
	}
	return e
}

// hasPrefixFold reports whether s starts with the keyword word, followed
// by white space or nothing.
func hasPrefixFold(s, word string) bool {
	if len(s) < len(word) || !strings.EqualFold(s[:len(word)], word) {
		return false
	}
	if len(s) == len(word) {
		return true
	}
	switch s[len(word)] {
	case ' ', '\t', '\n', '\r', '\f', '$', '\'':
		return true
	}
	return false
}

package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/concord-tx/concord/cmd/demo-participant/internal/bank"
)

// TestBankKilledBetweenPrepareAndCommit kills bank-a with SIGKILL at a
// known point: it has prepared (the debit is held on disk), the transaction
// is decided commit and bank-b applied it, but bank-a's Commit is held back
// by the test gate. Restarted on the same store, bank-a applies the commit.
func TestBankKilledBetweenPrepareAndCommit(t *testing.T) {
	c := newCluster(t)
	gate := filepath.Join(t.TempDir(), "commit-gate") // never created
	a := c.startBank("bank-a", "alice=100", "--commit-gate", gate)
	c.startBank("bank-b", "bob=50")

	code, stdout, stderr := c.transfer("--from", "bank-a:alice", "--to", "bank-b:bob", "--amount", "10", "--id", "kill-1")
	if code != exitOK || !strings.HasPrefix(stdout, "committed tx=kill-1 ") {
		t.Fatalf("transfer: exit %d, stdout %q, stderr %q; want committed", code, stdout, stderr)
	}

	// The kill point: bank-a prepared, the decision is commit, bank-b has
	// applied it and bank-a has not.
	waitFor(t, 30*time.Second, func() (bool, string) {
		pa, pb, tx := c.applied("bank-a")["kill-1"], c.applied("bank-b")["kill-1"], c.tx("kill-1")
		ok := pa == "prepared" && pb == "committed" && tx.State == "committing" && tx.acked("bank-b") && !tx.acked("bank-a")
		return ok, fmt.Sprintf("bank-a %q, bank-b %q, coordinator %+v", pa, pb, tx)
	})
	if got := c.accounts("bank-a")["alice"]; got != (bank.Account{Balance: 100, Held: 10}) {
		t.Fatalf("alice before the kill: %+v, want 100 with 10 held", got)
	}
	if !strings.Contains(a.proc.output(), "commit waiting for the test gate") {
		t.Fatal("bank-a's Commit is not at the gate")
	}
	a.proc.kill()

	// Same store, no gate; the opening balance given now is ignored.
	c.startBank("bank-a", "alice=1000")
	waitFor(t, 30*time.Second, func() (bool, string) {
		pa, tx := c.applied("bank-a")["kill-1"], c.tx("kill-1")
		return pa == "committed" && tx.State == "committed", fmt.Sprintf("bank-a %q, coordinator %+v", pa, tx)
	})
	if got := c.accounts("bank-a"); len(got) != 1 || got["alice"] != (bank.Account{Balance: 90}) {
		t.Errorf("bank-a after restart: %+v, want alice 90, nothing held", got)
	}
	if got := c.accounts("bank-b"); len(got) != 1 || got["bob"] != (bank.Account{Balance: 60}) {
		t.Errorf("bank-b: %+v, want bob 60, nothing held", got)
	}
}

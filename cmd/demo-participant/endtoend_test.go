package main

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/concord-tx/concord/cmd/demo-participant/internal/bank"
)

var txLine = regexp.MustCompile(`^(committed|aborted) tx=(\S+) `)

// txOf returns the transaction id printed by a transfer.
func txOf(t *testing.T, stdout string) string {
	t.Helper()
	m := txLine.FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("transfer printed %q, want \"committed|aborted tx=...\"", stdout)
	}
	return m[2]
}

// TestEndToEnd runs the demo as a user would: a coordinator, two banks,
// transfers that commit and abort, a load run, and a graceful shutdown.
func TestEndToEnd(t *testing.T) {
	c := newCluster(t)
	c.startBank("bank-a", "alice=100,bob=20")
	b := c.startBank("bank-b", "carol=50")

	// Across banks: committed, exit 0.
	code, stdout, stderr := c.transfer("--from", "bank-a:alice", "--to", "bank-b:carol", "--amount", "10")
	if code != exitOK || !strings.Contains(stdout, "from=bank-a:alice to=bank-b:carol amount=10") {
		t.Fatalf("transfer: exit %d, stdout %q, stderr %q; want committed", code, stdout, stderr)
	}
	crossBank := txOf(t, stdout)

	// Within one bank: one branch with both moves.
	code, stdout, stderr = c.transfer("--from", "bank-a:alice", "--to", "bank-a:bob", "--amount", "5")
	if code != exitOK {
		t.Fatalf("transfer within bank-a: exit %d, stdout %q, stderr %q; want committed", code, stdout, stderr)
	}
	withinBank := txOf(t, stdout)

	// Insufficient funds: aborted with that reason, exit 1.
	code, stdout, stderr = c.transfer("--from", "bank-a:bob", "--to", "bank-b:carol", "--amount", "1000")
	want := `reason="bank-a: insufficient funds: bob has 25 available (balance 25, held 0), debit of 1000"`
	if code != exitAborted || !strings.HasPrefix(stdout, "aborted tx=") || !strings.Contains(stdout, want) {
		t.Fatalf("overdraft: exit %d, stdout %q, stderr %q; want aborted, %s", code, stdout, stderr, want)
	}
	overdraft := txOf(t, stdout)

	// A bank nobody runs: the coordinator aborts, exit 1.
	code, stdout, stderr = c.transfer("--from", "bank-a:alice", "--to", "bank-z:zed", "--amount", "1")
	if code != exitAborted || !strings.Contains(stdout, "bank-z") {
		t.Fatalf("transfer to an absent bank: exit %d, stdout %q, stderr %q; want aborted naming bank-z", code, stdout, stderr)
	}
	absent := txOf(t, stdout)

	// Each bank recorded the decision, and every transaction is terminal
	// but the one naming bank-z: it stays aborting until bank-z, which
	// never ran, acknowledges.
	for _, tc := range []struct {
		id    string
		state string
		banks map[string]string
	}{
		{crossBank, "committed", map[string]string{"bank-a": "committed", "bank-b": "committed"}},
		{withinBank, "committed", map[string]string{"bank-a": "committed"}},
		{overdraft, "aborted", map[string]string{"bank-a": "refused", "bank-b": "aborted"}},
		{absent, "aborting", map[string]string{"bank-a": "aborted"}},
	} {
		waitFor(t, 30*time.Second, func() (bool, string) {
			tx := c.tx(tc.id)
			if tx.State != tc.state || tc.state == "aborting" && !tx.acked("bank-a") {
				return false, fmt.Sprintf("transaction %s: %+v, want %s", tc.id, tx, tc.state)
			}
			for name, phase := range tc.banks {
				if got := c.applied(name)[tc.id]; got != phase {
					return false, fmt.Sprintf("transaction %s: %s recorded %q, want %q", tc.id, name, got, phase)
				}
			}
			return true, ""
		})
	}
	if _, ok := c.applied("bank-b")[withinBank]; ok {
		t.Errorf("bank-b recorded %s, a transfer within bank-a", withinBank)
	}
	wantBalances := func(a, b map[string]bank.Account) {
		t.Helper()
		if got := c.accounts("bank-a"); describe(got) != describe(a) {
			t.Errorf("bank-a %+v, want %+v", got, a)
		}
		if got := c.accounts("bank-b"); describe(got) != describe(b) {
			t.Errorf("bank-b %+v, want %+v", got, b)
		}
	}
	wantBalances(
		map[string]bank.Account{"alice": {Balance: 85}, "bob": {Balance: 25}},
		map[string]bank.Account{"carol": {Balance: 60}},
	)

	// A load run through the command: money is conserved, exit 0.
	code, stdout, stderr = c.transfer("--load", "200", "--concurrency", "16", "--seed", "7", "--max-amount", "30",
		"--accounts", "bank-a:alice,bank-a:bob,bank-b:carol", "--banks", c.banksFlag())
	t.Logf("load:\n%s", stdout)
	if code != exitOK || !strings.Contains(stdout, "conserved: sum of balances unchanged, no holds left") ||
		!regexp.MustCompile(`total \(all accounts\)\s+170\s+170\s+0`).MatchString(stdout) {
		t.Fatalf("load: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "progress: ") {
		t.Errorf("load printed no progress line: %q", stderr)
	}

	// SIGTERM: the bank closes its participant, then its store, and exits 0.
	if code := b.proc.stop(30 * time.Second); code != 0 {
		t.Errorf("bank-b exit %d after SIGTERM, want 0", code)
	}
	if out := b.proc.output(); !strings.Contains(out, `"participant closed"`) {
		t.Errorf("bank-b did not log its shutdown:\n%s", b.proc.tail(10))
	}
}

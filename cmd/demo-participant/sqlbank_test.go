package main

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/concord-tx/concord/cmd/demo-participant/internal/bank"
	"github.com/concord-tx/concord/internal/testkit/pgtest"
)

// A transfer between a bbolt bank and a bank on SQL commits, a refusal
// from either side aborts both, and the SQL bank keeps its balances over a
// restart: the same behaviour as two bbolt banks.
func TestTransferBetweenBboltAndSQLBanks(t *testing.T) {
	for _, kind := range []string{"postgres", "sqlite"} {
		t.Run(kind, func(t *testing.T) {
			c := newCluster(t)
			c.startBank("bank-a", "alice=100")
			store := "sqlite:" + filepath.Join(c.dir, "bank-b.sqlite")
			if kind == "postgres" {
				store = pgtest.Schema(t)
			}
			b := c.startBankOn("bank-b", store, "bob=50")

			code, stdout, stderr := c.transfer("--from", "bank-a:alice", "--to", "bank-b:bob", "--amount", "10", "--id", "sql-1")
			if code != exitOK || !strings.HasPrefix(stdout, "committed tx=sql-1 ") {
				t.Fatalf("transfer: exit %d, stdout %q, stderr %q; want committed", code, stdout, stderr)
			}
			code, stdout, _ = c.transfer("--from", "bank-b:bob", "--to", "bank-a:alice", "--amount", "1000", "--id", "sql-2")
			if code != exitAborted || !strings.Contains(stdout, "bank-b: insufficient funds: bob has 60 available") {
				t.Fatalf("overdraft: exit %d, stdout %q; want aborted for bank-b's funds", code, stdout)
			}
			waitFor(t, 30*time.Second, func() (bool, string) {
				pa, pb := c.applied("bank-a"), c.applied("bank-b")
				ok := pa["sql-1"] == "committed" && pb["sql-1"] == "committed" && pa["sql-2"] == "aborted" && pb["sql-2"] == "refused"
				return ok, fmt.Sprintf("bank-a %v, bank-b %v", pa, pb)
			})
			if got := c.accounts("bank-b"); len(got) != 1 || got["bob"] != (bank.Account{Balance: 60}) {
				t.Errorf("bank-b: %+v, want bob 60, nothing held", got)
			}
			if code := b.proc.stop(15 * time.Second); code != exitOK {
				t.Errorf("bank-b stopped with %d", code)
			}
			c.startBank("bank-b", "bob=7") // the opening balance is ignored now
			if got := c.accounts("bank-b"); got["bob"] != (bank.Account{Balance: 60}) {
				t.Errorf("bank-b after restart: %+v, want bob 60", got)
			}
			if got := c.accounts("bank-a"); got["alice"] != (bank.Account{Balance: 90}) {
				t.Errorf("bank-a: %+v, want alice 90", got)
			}
		})
	}
}

// The PostgreSQL bank is killed between its local commit of a Prepare and
// its vote (held by the test gate), then restarted: whatever the
// coordinator decided (commit if the restarted bank votes in time, abort
// if its lease expired first), both banks apply it once and nothing stays
// held.
func TestSQLBankKilledBetweenLocalCommitAndVote(t *testing.T) {
	c := newCluster(t)
	gate := filepath.Join(t.TempDir(), "prepare-gate") // never created
	c.startBank("bank-a", "alice=100")
	b := c.startBankOn("bank-b", pgtest.Schema(t), "bob=50", "--prepare-gate", gate)

	transfer := startProcess(t, "transfer", c.demo, "transfer", "--coord", c.coordURL,
		"--from", "bank-a:alice", "--to", "bank-b:bob", "--amount", "10", "--id", "kill-vote")
	waitFor(t, 30*time.Second, func() (bool, string) {
		pb := c.applied("bank-b")["kill-vote"]
		return pb == "prepared" && strings.Contains(b.proc.output(), "vote waiting for the test gate"), fmt.Sprintf("bank-b %q", pb)
	})
	if got := c.accounts("bank-b")["bob"]; got != (bank.Account{Balance: 50, Incoming: 10}) {
		t.Fatalf("bob before the kill: %+v, want 50 with 10 incoming", got)
	}
	b.proc.kill()
	c.startBank("bank-b", "bob=50")
	<-transfer.done
	out := transfer.output()

	var state string
	waitFor(t, 60*time.Second, func() (bool, string) {
		tx := c.tx("kill-vote")
		state = tx.State
		pa, pb := c.applied("bank-a")["kill-vote"], c.applied("bank-b")["kill-vote"]
		done := (state == "committed" && pa == "committed" && pb == "committed") || (state == "aborted" && pa == "aborted" && pb == "aborted")
		return done, fmt.Sprintf("coordinator %+v, bank-a %q, bank-b %q", tx, pa, pb)
	})
	alice, bob := int64(100), int64(50)
	if state == "committed" {
		alice, bob = 90, 60
	}
	if !strings.HasPrefix(out, state+" tx=kill-vote") {
		t.Errorf("transfer said %q, coordinator %s", out, state)
	}
	if got := c.accounts("bank-a")["alice"]; got != (bank.Account{Balance: alice}) {
		t.Errorf("alice: %+v, want %d, nothing held", got, alice)
	}
	if got := c.accounts("bank-b")["bob"]; got != (bank.Account{Balance: bob}) {
		t.Errorf("bob: %+v, want %d, nothing held or incoming", got, bob)
	}
	t.Logf("outcome after the kill: %s (%s)", state, c.tx("kill-vote").Reason)
}

// The PostgreSQL bank is killed after the commit decision and before its
// Commit (held by the test gate), then restarted: it applies the commit
// once.
func TestSQLBankKilledBetweenPrepareAndCommit(t *testing.T) {
	c := newCluster(t)
	gate := filepath.Join(t.TempDir(), "commit-gate") // never created
	c.startBank("bank-a", "alice=100")
	b := c.startBankOn("bank-b", pgtest.Schema(t), "bob=50", "--commit-gate", gate)
	code, stdout, stderr := c.transfer("--from", "bank-a:alice", "--to", "bank-b:bob", "--amount", "10", "--id", "kill-commit")
	if code != exitOK || !strings.HasPrefix(stdout, "committed tx=kill-commit ") {
		t.Fatalf("transfer: exit %d, stdout %q, stderr %q; want committed", code, stdout, stderr)
	}
	waitFor(t, 30*time.Second, func() (bool, string) {
		pb := c.applied("bank-b")["kill-commit"]
		return pb == "prepared" && strings.Contains(b.proc.output(), "commit waiting for the test gate"), fmt.Sprintf("bank-b %q", pb)
	})
	b.proc.kill()
	c.startBank("bank-b", "bob=50")
	waitFor(t, 30*time.Second, func() (bool, string) {
		pb, tx := c.applied("bank-b")["kill-commit"], c.tx("kill-commit")
		return pb == "committed" && tx.State == "committed", fmt.Sprintf("bank-b %q, coordinator %+v", pb, tx)
	})
	if got := c.accounts("bank-b")["bob"]; got != (bank.Account{Balance: 60}) {
		t.Errorf("bob: %+v, want 60", got)
	}
	if n := strings.Count(c.banks["bank-b"].proc.output(), `"msg":"committed"`); n != 1 {
		t.Errorf("the restarted bank-b logged %d commits, want 1", n)
	}
}

// A store the bank cannot use is a clear error before it goes near etcd
// (here an address where nothing listens): the SQL to run for a user
// without the right to create tables, the version found for tables of
// another one, the address of a server that does not answer.
func TestSQLStoreProblemsStopTheBankBeforeEtcd(t *testing.T) {
	demo := demoBinary(t)
	versioned := pgtest.Schema(t)
	db, err := sql.Open("pgx", versioned)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE TABLE bank_version (version INTEGER NOT NULL); INSERT INTO bank_version VALUES (9)"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, store string
		want        []string
	}{
		{"no rights", pgtest.Unprivileged(t, pgtest.Schema(t)), []string{"could not be created", "permission denied", "CREATE TABLE IF NOT EXISTS bank_accounts", "CREATE TABLE IF NOT EXISTS concord_tx"}},
		{"other version", versioned, []string{"bank_version says 9, this version of the bank reads 1"}},
		{"no server", "postgres://postgres@127.0.0.1:1/postgres?connect_timeout=2", []string{"--store postgres://postgres@127.0.0.1:1/postgres", "cannot connect"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCommand(t, 60*time.Second, demo, "serve", "--name", "bank-b", "--store", tc.store,
				"--etcd", "127.0.0.1:1", "--listen", freeAddr(t))
			if code != exitFailed {
				t.Errorf("exit %d, want %d", code, exitFailed)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr does not say %q:\n%s", w, stderr)
				}
			}
			if strings.Contains(stderr, "bank serving") {
				t.Error("the bank started serving")
			}
		})
	}
}

// A second bank on a bbolt file in use exits within seconds, naming the
// file and the process that holds it.
func TestSecondBankOnAFileInUse(t *testing.T) {
	c := newCluster(t)
	a := c.startBank("bank-a", "alice=100")
	start := time.Now()
	code, _, stderr := runCommand(t, 30*time.Second, c.demo, "serve", "--name", "bank-a", "--db", a.db,
		"--etcd", c.etcd, "--listen", freeAddr(t))
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("took %v to give up", took)
	}
	if code != exitFailed {
		t.Errorf("exit %d, want %d", code, exitFailed)
	}
	want := fmt.Sprintf("%s is in use by pid %d: ", a.db, a.proc.cmd.Process.Pid)
	if !strings.Contains(stderr, want) {
		t.Errorf("stderr does not say %q:\n%s", want, stderr)
	}
	if _, err := os.Stat(a.db); err != nil {
		t.Fatal(err)
	}
	if got := c.accounts("bank-a")["alice"]; got != (bank.Account{Balance: 100}) {
		t.Errorf("the first bank's alice: %+v", got)
	}
}

package transfer

import (
	"strings"
	"testing"

	"github.com/concord-tx/concord/cmd/demo-participant/internal/bank"
	"github.com/concord-tx/concord/httpapi"
	"github.com/concord-tx/concord/protocol"
)

func run(e *env, t Transfer) httpapi.Outcome {
	e.t.Helper()
	req, err := t.Request("", 0)
	if err != nil {
		e.t.Fatal(err)
	}
	out, err := e.coord.Do(e.ctx, req)
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func TestTransferCommitsAndMovesMoney(t *testing.T) {
	e := newEnv(t, map[string]map[string]int64{
		"bank-a": {"alice": 100},
		"bank-b": {"bob": 50},
	})
	out := run(e, Transfer{From: Endpoint{"bank-a", "alice"}, To: Endpoint{"bank-b", "bob"}, Amount: 10})
	if out.State != protocol.StateCommitted || out.Reason != "" {
		t.Fatalf("outcome %+v, want committed", out)
	}
	e.waitPhase("bank-a", out.ID, bank.PhaseCommitted)
	e.waitPhase("bank-b", out.ID, bank.PhaseCommitted)
	if a := e.accounts("bank-a")["alice"]; a != (bank.Account{Balance: 90}) {
		t.Errorf("alice %+v, want balance 90, nothing held", a)
	}
	if b := e.accounts("bank-b")["bob"]; b != (bank.Account{Balance: 60}) {
		t.Errorf("bob %+v, want balance 60, nothing held", b)
	}
	tx := e.waitTerminal(out.ID)
	if tx.State != protocol.StateCommitted {
		t.Errorf("record %v, want committed", tx.State)
	}
	// The banks' HTTP API shows the same.
	snap, err := e.banks.Read(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if bal, held := snap.Sum(); bal != 150 || held != 0 {
		t.Errorf("banks hold %d (%d held), want 150 (0 held)", bal, held)
	}
}

func TestTransferWithinOneBank(t *testing.T) {
	e := newEnv(t, map[string]map[string]int64{"bank-a": {"alice": 100, "bob": 0}})
	tr := Transfer{From: Endpoint{"bank-a", "alice"}, To: Endpoint{"bank-a", "bob"}, Amount: 30}
	branches, err := tr.Branches()
	if err != nil || len(branches) != 1 {
		t.Fatalf("branches %v, %v: want one branch holding both moves", branches, err)
	}
	out := run(e, tr)
	if out.State != protocol.StateCommitted {
		t.Fatalf("outcome %+v, want committed", out)
	}
	e.waitPhase("bank-a", out.ID, bank.PhaseCommitted)
	got := e.accounts("bank-a")
	if got["alice"] != (bank.Account{Balance: 70}) || got["bob"] != (bank.Account{Balance: 30}) {
		t.Errorf("accounts %+v, want alice 70, bob 30", got)
	}
}

func TestInsufficientFundsAbortsAndChangesNothing(t *testing.T) {
	e := newEnv(t, map[string]map[string]int64{
		"bank-a": {"alice": 100},
		"bank-b": {"bob": 50},
	})
	out := run(e, Transfer{From: Endpoint{"bank-a", "alice"}, To: Endpoint{"bank-b", "bob"}, Amount: 101})
	if out.State == protocol.StateCommitted {
		t.Fatalf("outcome %+v, want aborted", out)
	}
	want := "bank-a: insufficient funds: alice has 100 available (balance 100, held 0), debit of 101"
	if out.Reason != want {
		t.Errorf("reason %q, want %q", out.Reason, want)
	}
	if k := ReasonKind(out.Reason); k != "bank-a: insufficient funds" {
		t.Errorf("reason kind %q", k)
	}
	tx := e.waitTerminal(out.ID)
	if tx.State != protocol.StateAborted || tx.Cause != protocol.CauseVoteNo {
		t.Errorf("record %v (cause %q), want aborted by a no vote", tx.State, tx.Cause)
	}
	// Terminal means every bank acknowledged the abort.
	e.waitPhase("bank-a", out.ID, bank.PhaseRefused)
	e.waitPhase("bank-b", out.ID, bank.PhaseAborted)
	if a := e.accounts("bank-a")["alice"]; a != (bank.Account{Balance: 100}) {
		t.Errorf("alice %+v, want 100 and nothing held", a)
	}
	if b := e.accounts("bank-b")["bob"]; b != (bank.Account{Balance: 50}) {
		t.Errorf("bob %+v, want 50 and nothing held", b)
	}
}

func TestUnknownAccountAborts(t *testing.T) {
	e := newEnv(t, map[string]map[string]int64{
		"bank-a": {"alice": 100},
		"bank-b": {"bob": 50},
	})
	out := run(e, Transfer{From: Endpoint{"bank-a", "alice"}, To: Endpoint{"bank-b", "nobody"}, Amount: 5})
	if out.State == protocol.StateCommitted || !strings.HasPrefix(out.Reason, "bank-b: unknown account: nobody") {
		t.Fatalf("outcome %+v, want aborted for bank-b's unknown account", out)
	}
	e.waitTerminal(out.ID)
	if a := e.accounts("bank-a")["alice"]; a != (bank.Account{Balance: 100}) {
		t.Errorf("alice %+v after the abort, want 100 and nothing held", a)
	}
}

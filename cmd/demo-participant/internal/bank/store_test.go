package bank

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func openStore(t *testing.T, path string, seed map[string]int64) *Store {
	t.Helper()
	s, _, err := Open(path, seed, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newStore(t *testing.T, seed map[string]int64) *Store {
	t.Helper()
	return openStore(t, filepath.Join(t.TempDir(), "bank.db"), seed)
}

func payloadOf(t *testing.T, moves ...Move) []byte {
	t.Helper()
	p, err := EncodePayload(moves)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// wantAccounts checks every account's balance and held amount.
func wantAccounts(t *testing.T, s *Store, want map[string]Account) {
	t.Helper()
	got, err := s.Accounts()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Errorf("accounts %v, want %v", got, want)
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("account %s: %+v, want %+v", name, got[name], w)
		}
	}
}

func wantPhase(t *testing.T, s *Store, id string, want Phase) {
	t.Helper()
	applied, err := s.Applied()
	if err != nil {
		t.Fatal(err)
	}
	if applied[id] != want {
		t.Errorf("transaction %s: phase %v, want %v", id, applied[id], want)
	}
}

func TestOpenSeedsOnlyANewStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bank.db")
	s, created, err := Open(path, map[string]int64{"alice": 100, "bob": 50}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !created {
		t.Error("a new store reported as existing")
	}
	if _, err := s.Prepare("t1", 1, payloadOf(t, Move{"alice", -30})); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit("t1", 1); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, created, err = Open(path, map[string]int64{"alice": 1000, "carol": 7}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if created {
		t.Error("an existing store reported as new")
	}
	wantAccounts(t, s, map[string]Account{"alice": {70, 0, 0}, "bob": {50, 0, 0}})
	wantPhase(t, s, "t1", PhaseCommitted)
}

func TestOpenRefusesALockedStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bank.db")
	openStore(t, path, nil)
	_, _, err := Open(path, nil, 100*time.Millisecond)
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), path) {
		t.Fatalf("a second Open of a store in use: %v, want ErrInUse naming the file", err)
	}
	if runtime.GOOS == "linux" && !strings.Contains(err.Error(), fmt.Sprintf("pid %d: ", os.Getpid())) {
		t.Errorf("%v: does not name this process (pid %d) as the holder", err, os.Getpid())
	}
}

func TestPrepareHoldsCommitApplies(t *testing.T) {
	s := newStore(t, map[string]int64{"alice": 100, "bob": 50})
	res, err := s.Prepare("t1", 1, payloadOf(t, Move{"alice", -10}, Move{"bob", 10}))
	if err != nil || res != (Result{Phase: PhasePrepared}) {
		t.Fatalf("prepare: %+v, %v", res, err)
	}
	// Held, not applied; the credit is not applied either, only its
	// headroom reserved.
	wantAccounts(t, s, map[string]Account{"alice": {100, 10, 0}, "bob": {50, 0, 10}})
	wantPhase(t, s, "t1", PhasePrepared)

	// A repeated Prepare returns what the first did and holds nothing more.
	res, err = s.Prepare("t1", 1, payloadOf(t, Move{"alice", -10}, Move{"bob", 10}))
	if err != nil || res != (Result{Phase: PhasePrepared, Repeat: true}) {
		t.Fatalf("repeated prepare: %+v, %v", res, err)
	}
	wantAccounts(t, s, map[string]Account{"alice": {100, 10, 0}, "bob": {50, 0, 10}})

	res, err = s.Commit("t1", 1)
	if err != nil || res != (Result{Phase: PhaseCommitted}) {
		t.Fatalf("commit: %+v, %v", res, err)
	}
	wantAccounts(t, s, map[string]Account{"alice": {90, 0, 0}, "bob": {60, 0, 0}})
	wantPhase(t, s, "t1", PhaseCommitted)

	res, err = s.Commit("t1", 1)
	if err != nil || res != (Result{Phase: PhaseCommitted, Repeat: true}) {
		t.Fatalf("repeated commit: %+v, %v", res, err)
	}
	wantAccounts(t, s, map[string]Account{"alice": {90, 0, 0}, "bob": {60, 0, 0}})
}

func TestHoldsCountAgainstFunds(t *testing.T) {
	s := newStore(t, map[string]int64{"alice": 100})
	if _, err := s.Prepare("t1", 1, payloadOf(t, Move{"alice", -60})); err != nil {
		t.Fatal(err)
	}
	_, err := s.Prepare("t2", 1, payloadOf(t, Move{"alice", -50}))
	if !errors.Is(err, ErrInsufficientFunds) {
		t.Fatalf("second debit over the available 40: %v, want ErrInsufficientFunds", err)
	}
	if want := "insufficient funds: alice has 40 available (balance 100, held 60), debit of 50"; err.Error() != want {
		t.Errorf("reason %q, want %q", err, want)
	}
	if _, err := s.Prepare("t3", 1, payloadOf(t, Move{"alice", -40})); err != nil {
		t.Fatalf("debit of exactly the available 40: %v", err)
	}
	wantAccounts(t, s, map[string]Account{"alice": {100, 100, 0}})
	wantPhase(t, s, "t2", PhaseRefused)
}

func TestRefusalIsRecordedAndRepeated(t *testing.T) {
	s := newStore(t, map[string]int64{"alice": 5, "bob": 0})
	p := payloadOf(t, Move{"alice", -10}, Move{"bob", 10})
	_, first := s.Prepare("t1", 1, p)
	var refused *RefusedError
	if !errors.As(first, &refused) || !errors.Is(first, ErrInsufficientFunds) {
		t.Fatalf("prepare: %v, want a refusal for insufficient funds", first)
	}
	wantPhase(t, s, "t1", PhaseRefused)

	// Funds arrive, but the transaction stays refused: a repeated Prepare
	// must return what the first did.
	if _, err := s.Prepare("t0", 1, payloadOf(t, Move{"alice", 100})); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit("t0", 1); err != nil {
		t.Fatal(err)
	}
	res, again := s.Prepare("t1", 1, p)
	if !errors.Is(again, ErrInsufficientFunds) || again.Error() != first.Error() || !res.Repeat {
		t.Fatalf("repeated prepare: %+v, %v; want the first refusal %q", res, again, first)
	}
	// Its abort changes nothing and keeps the refusal on record.
	res, err := s.Abort("t1", 1, "bank-a: insufficient funds")
	if err != nil || res != (Result{Phase: PhaseRefused, Repeat: true}) {
		t.Fatalf("abort of a refused transaction: %+v, %v", res, err)
	}
	wantAccounts(t, s, map[string]Account{"alice": {105, 0, 0}, "bob": {0, 0, 0}})
	wantPhase(t, s, "t1", PhaseRefused)
	if _, err := s.Commit("t1", 1); !errors.Is(err, ErrNotPrepared) {
		t.Errorf("commit of a refused transaction: %v, want ErrNotPrepared", err)
	}
}

func TestAbortReleasesHolds(t *testing.T) {
	s := newStore(t, map[string]int64{"alice": 100, "bob": 50})
	if _, err := s.Prepare("t1", 1, payloadOf(t, Move{"alice", -70}, Move{"bob", 70})); err != nil {
		t.Fatal(err)
	}
	res, err := s.Abort("t1", 1, "deadline")
	if err != nil || res != (Result{Phase: PhaseAborted}) {
		t.Fatalf("abort: %+v, %v", res, err)
	}
	wantAccounts(t, s, map[string]Account{"alice": {100, 0, 0}, "bob": {50, 0, 0}})
	wantPhase(t, s, "t1", PhaseAborted)
	res, err = s.Abort("t1", 1, "deadline")
	if err != nil || res != (Result{Phase: PhaseAborted, Repeat: true}) {
		t.Fatalf("repeated abort: %+v, %v", res, err)
	}
	wantAccounts(t, s, map[string]Account{"alice": {100, 0, 0}, "bob": {50, 0, 0}})
	rec, found, err := s.Record("t1")
	if err != nil || !found || rec.Reason != "deadline" || len(rec.Moves) != 2 {
		t.Errorf("record: %+v, %v, %v", rec, found, err)
	}
}

func TestAbortFirstRefusesALatePrepare(t *testing.T) {
	s := newStore(t, map[string]int64{"alice": 100})
	res, err := s.Abort("t1", 1, "participant bank-b lost")
	if err != nil || res != (Result{Phase: PhaseAborted}) {
		t.Fatalf("abort without prepare: %+v, %v", res, err)
	}
	_, err = s.Prepare("t1", 1, payloadOf(t, Move{"alice", -10}))
	if !errors.Is(err, ErrAlreadyAborted) {
		t.Fatalf("late prepare: %v, want ErrAlreadyAborted", err)
	}
	wantAccounts(t, s, map[string]Account{"alice": {100, 0, 0}})
	wantPhase(t, s, "t1", PhaseAborted)
}

// An id the coordinator reuses after its retention window names a new
// transaction (a later revision): a finished one's record does not make
// the new one a repeat, and one still prepared (so aborted without this
// bank's vote) gives back its holds. A record written before revisions
// were kept (0) is an earlier transaction's only if committed.
func TestReusedID(t *testing.T) {
	s := newStore(t, map[string]int64{"alice": 100, "bob": 50})
	if _, err := s.Prepare("t1", 5, payloadOf(t, Move{"alice", -10})); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit("t1", 5); err != nil {
		t.Fatal(err)
	}
	res, err := s.Prepare("t1", 9, payloadOf(t, Move{"bob", -20}))
	if err != nil || res != (Result{Phase: PhasePrepared}) {
		t.Fatalf("prepare of the id begun again: %+v, %v, want a new transaction prepared", res, err)
	}
	if res, err := s.Prepare("t1", 9, payloadOf(t, Move{"bob", -20})); err != nil || !res.Repeat {
		t.Fatalf("repeated prepare: %+v, %v", res, err)
	}
	if _, err := s.Commit("t1", 5); !errors.Is(err, ErrNotPrepared) {
		t.Errorf("commit of the earlier one: %v, want ErrNotPrepared", err)
	}
	if _, err := s.Prepare("t1", 3, payloadOf(t, Move{"bob", -1})); !errors.Is(err, ErrIDInUse) {
		t.Errorf("prepare of an id recorded for a later transaction: %v, want ErrIDInUse", err)
	}
	if _, err := s.Commit("t1", 9); err != nil {
		t.Fatal(err)
	}
	wantAccounts(t, s, map[string]Account{"alice": {90, 0, 0}, "bob": {30, 0, 0}})

	// Prepared, never decided here: its holds go when the id returns.
	if _, err := s.Prepare("t2", 5, payloadOf(t, Move{"alice", -30})); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prepare("t2", 9, payloadOf(t, Move{"bob", -5})); err != nil {
		t.Fatal(err)
	}
	wantAccounts(t, s, map[string]Account{"alice": {90, 0, 0}, "bob": {30, 5, 0}})
	if _, err := s.Abort("t2", 9, "vote no"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prepare("t3", 5, payloadOf(t, Move{"alice", -7})); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Abort("t3", 9, "participant lost"); err != nil {
		t.Fatal(err)
	}
	wantAccounts(t, s, map[string]Account{"alice": {90, 0, 0}, "bob": {30, 0, 0}})

	// Records without a revision.
	if _, err := s.Prepare("old-done", 0, payloadOf(t, Move{"alice", -1})); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit("old-done", 0); err != nil {
		t.Fatal(err)
	}
	if res, err := s.Prepare("old-done", 9, payloadOf(t, Move{"alice", -2})); err != nil || res.Repeat {
		t.Errorf("prepare over a committed record without a revision: %+v %v, want a new transaction", res, err)
	}
	if _, err := s.Prepare("old-open", 0, payloadOf(t, Move{"bob", -3})); err != nil {
		t.Fatal(err)
	}
	if res, err := s.Prepare("old-open", 9, payloadOf(t, Move{"bob", -3})); err != nil || !res.Repeat {
		t.Errorf("prepare over a prepared record without a revision: %+v %v, want a repeat", res, err)
	}
	if _, err := s.Commit("old-open", 9); err != nil {
		t.Errorf("commit of it: %v", err)
	}
	wantAccounts(t, s, map[string]Account{"alice": {89, 2, 0}, "bob": {27, 0, 0}})
}

func TestProtocolViolationsAreErrors(t *testing.T) {
	s := newStore(t, map[string]int64{"alice": 100})
	if _, err := s.Commit("never", 1); !errors.Is(err, ErrNotPrepared) {
		t.Errorf("commit without prepare: %v, want ErrNotPrepared", err)
	}
	if _, err := s.Prepare("t1", 1, payloadOf(t, Move{"alice", -1})); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit("t1", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Abort("t1", 1, "late"); !errors.Is(err, ErrAlreadyCommitted) {
		t.Errorf("abort after commit: %v, want ErrAlreadyCommitted", err)
	}
	wantAccounts(t, s, map[string]Account{"alice": {99, 0, 0}})
	wantPhase(t, s, "t1", PhaseCommitted)
	if _, found, _ := s.Record("never"); found {
		t.Error("a failed commit left a record")
	}
}

func TestPrepareRefusesBadBranches(t *testing.T) {
	s := newStore(t, map[string]int64{"alice": 100})
	for _, tc := range []struct {
		name    string
		payload string
		want    error
	}{
		{"unknown account", `{"account":"zed","amount":5}`, ErrUnknownAccount},
		{"not JSON", `alice -5`, ErrInvalidPayload},
		{"fraction", `{"account":"alice","amount":1.5}`, ErrInvalidPayload},
		{"zero", `{"account":"alice","amount":0}`, ErrInvalidPayload},
		{"no amount", `{"account":"alice"}`, ErrInvalidPayload},
		{"unknown field", `{"account":"alice","amount":-1,"memo":"x"}`, ErrInvalidPayload},
		{"twice", `{"moves":[{"account":"alice","amount":-1},{"account":"alice","amount":1}]}`, ErrInvalidPayload},
		{"both forms", `{"account":"alice","amount":-1,"moves":[]}`, ErrInvalidPayload},
		{"empty moves", `{"moves":[]}`, ErrInvalidPayload},
		{"bad name", `{"account":"al ice","amount":-1}`, ErrInvalidPayload},
		{"overflow", `{"account":"alice","amount":9223372036854775807}`, ErrOverflow},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := "t-" + strings.ReplaceAll(tc.name, " ", "-")
			_, err := s.Prepare(id, 1, []byte(tc.payload))
			var refused *RefusedError
			if !errors.Is(err, tc.want) || !errors.As(err, &refused) {
				t.Fatalf("prepare %s: %v, want a refusal wrapping %v", tc.payload, err, tc.want)
			}
			wantPhase(t, s, id, PhaseRefused)
		})
	}
	wantAccounts(t, s, map[string]Account{"alice": {100, 0, 0}})
}

func TestPreparedSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bank.db")
	s, _, err := Open(path, map[string]int64{"alice": 100, "bob": 0}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prepare("t1", 1, payloadOf(t, Move{"alice", -25}, Move{"bob", 25})); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openStore(t, path, nil)
	wantAccounts(t, s, map[string]Account{"alice": {100, 25, 0}, "bob": {0, 0, 25}})
	wantPhase(t, s, "t1", PhasePrepared)
	if _, err := s.Commit("t1", 1); err != nil {
		t.Fatal(err)
	}
	wantAccounts(t, s, map[string]Account{"alice": {75, 0, 0}, "bob": {25, 0, 0}})
}

package chaos

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/concord-tx/concord/protocol"
)

// goodInput is a run in which t1 committed and t2 aborted, correctly.
func goodInput() CheckInput {
	now := time.Now()
	rec := func(id string, s protocol.State, cause protocol.Cause) protocol.Record {
		return protocol.Record{ID: id, State: s, Participants: []string{"a", "b"}, Created: now, Deadline: now.Add(time.Second), Decided: now, Cause: cause}
	}
	view := func(id string, d protocol.State, votes map[string]VoteSeen) TxView {
		return TxView{ID: id, Participants: []string{"a", "b"}, CreatedAt: now, Decision: d, DecidedRev: 10, TerminalAt: now.Add(time.Millisecond), Votes: votes}
	}
	return CheckInput{
		Ops: []Op{
			{ID: "t1", Legs: []Leg{{"a", "x", -10}, {"b", "y", 10}}, Result: Committed},
			{ID: "t2", Legs: []Leg{{"a", "x", -500}, {"b", "y", 500}}, Result: Aborted},
		},
		Txs: map[string]TxView{
			"t1": view("t1", protocol.StateCommitting, map[string]VoteSeen{"a": {"yes", 9}, "b": {"yes", 10}}),
			"t2": view("t2", protocol.StateAborting, map[string]VoteSeen{"a": {"no:insufficient funds", 10}}),
		},
		Etcd: EtcdState{Records: map[string]protocol.Record{
			"t1": rec("t1", protocol.StateCommitted, ""),
			"t2": rec("t2", protocol.StateAborted, protocol.CauseVoteNo),
		}, Votes: map[string]map[string]string{"t1": {"a": "yes", "b": "yes"}, "t2": {"a": "no:insufficient funds"}}},
		Banks: map[string]BankState{
			"a": {Accounts: map[string]Account{"x": {Balance: 90}}, Applied: map[string]string{"t1": "committed", "t2": "refused"}},
			"b": {Accounts: map[string]Account{"y": {Balance: 110}}, Applied: map[string]string{"t1": "committed", "t2": "aborted"}},
		},
		Opening: map[string]map[string]int64{"a": {"x": 100}, "b": {"y": 100}},
		Healed:  now,
		Bound:   time.Second,
	}
}

func TestChecksPassCorrectRun(t *testing.T) {
	r := Check(goodInput())
	if r.Total() != 0 {
		t.Fatalf("violations in a correct run: %v\n%s", r.Violations, strings.Join(r.Details, "\n"))
	}
}

// TestChecksCatchViolations breaks a correct run in one way at a time and
// expects exactly the check that should notice.
func TestChecksCatchViolations(t *testing.T) {
	cases := []struct {
		name  string
		check string
		edit  func(*CheckInput)
	}{
		{"bank applied the other outcome", CheckAtomicity, func(in *CheckInput) {
			in.Banks["b"].Applied["t2"] = "committed"
		}},
		{"commit without a yes vote", CheckAtomicity, func(in *CheckInput) {
			v := in.Txs["t1"]
			v.Votes = map[string]VoteSeen{"a": {"yes", 9}}
			in.Txs["t1"] = v
			in.Etcd.Votes["t1"] = map[string]string{"a": "yes"}
		}},
		{"money created", CheckMoney, func(in *CheckInput) {
			in.Banks["a"].Accounts["x"] = Account{Balance: 95}
		}},
		{"hold left", CheckMoney, func(in *CheckInput) {
			in.Banks["a"].Accounts["x"] = Account{Balance: 90, Held: 5}
		}},
		{"client told committed, bank prepared", CheckDurability, func(in *CheckInput) {
			in.Banks["b"].Applied["t1"] = "prepared"
		}},
		{"client told aborted, etcd committed", CheckDurability, func(in *CheckInput) {
			in.Ops[1].Result = Committed
		}},
		{"undecided at the end", CheckLiveness, func(in *CheckInput) {
			r := in.Etcd.Records["t1"]
			r.State = protocol.StatePreparing
			in.Etcd.Records["t1"] = r
		}},
		{"inbox left", CheckLiveness, func(in *CheckInput) {
			in.Etcd.Inboxes = map[string][]string{"t2": {"b"}}
		}},
		{"too slow after heal", CheckLiveness, func(in *CheckInput) {
			v := in.Txs["t2"]
			v.TerminalAt = in.Healed.Add(time.Minute)
			in.Txs["t2"] = v
		}},
		{"abort for a lost participant that was registered", CheckJustified, func(in *CheckInput) {
			r := in.Etcd.Records["t2"]
			r.Cause = protocol.CauseParticipantLost
			in.Etcd.Records["t2"] = r
			v := in.Txs["t2"]
			v.Votes = map[string]VoteSeen{}
			v.RegisteredAtDecision = map[string]bool{"a": true, "b": true}
			in.Txs["t2"] = v
		}},
		{"deadline abort before the deadline", CheckJustified, func(in *CheckInput) {
			r := in.Etcd.Records["t2"]
			r.Cause = protocol.CauseDeadline
			r.Decided = r.Deadline.Add(-time.Millisecond)
			in.Etcd.Records["t2"] = r
		}},
		{"deadline abort seen before the deadline, record collected", CheckJustified, func(in *CheckInput) {
			delete(in.Etcd.Records, "t2")
			v := in.Txs["t2"]
			v.Cause, v.DecidedAt = protocol.CauseDeadline, v.CreatedAt.Add(500*time.Millisecond)
			v.Deadline = v.CreatedAt.Add(time.Second)
			in.Txs["t2"] = v
		}},
		{"deadline abort after every vote", CheckJustified, func(in *CheckInput) {
			r := in.Etcd.Records["t2"]
			r.Cause, r.Decided = protocol.CauseDeadline, r.Deadline.Add(time.Millisecond)
			in.Etcd.Records["t2"] = r
			v := in.Txs["t2"]
			v.Cause, v.Deadline, v.DecidedAt = protocol.CauseDeadline, r.Deadline, r.Decided
			v.Votes = map[string]VoteSeen{"a": {"yes", 8}, "b": {"yes", 9}}
			in.Txs["t2"] = v
		}},
		{"abort nothing in the run asks for", CheckJustified, func(in *CheckInput) {
			r := in.Etcd.Records["t2"]
			r.Cause = protocol.CauseOperator
			in.Etcd.Records["t2"] = r
		}},
		{"record deleted before it was terminal", CheckLiveness, func(in *CheckInput) {
			delete(in.Etcd.Records, "t1")
			v := in.Txs["t1"]
			v.TerminalAt, v.Deleted = time.Time{}, true
			in.Txs["t1"] = v
		}},
		{"outcome changed", CheckAtomicity, func(in *CheckInput) {
			v := in.Txs["t1"]
			v.Anomalies = []string{"outcome changed: decided committing, then aborting"}
			in.Txs["t1"] = v
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := goodInput()
			c.edit(&in)
			r := Check(in)
			if r.Violations[c.check] == 0 {
				t.Fatalf("%s not caught by %s: %v", c.name, c.check, r.Violations)
			}
			t.Logf("%v: %s", r.Violations, strings.Join(r.Details, "; "))
		})
	}
}

// TestChecksCatchDoubleEffectInBankLog: a phase the bank logged as taking
// effect twice is an exactly-once violation even when balances happen to
// agree.
func TestChecksCatchDoubleEffectInBankLog(t *testing.T) {
	in := goodInput()
	path := t.TempDir() + "/bank-b.log"
	line := `{"level":"info","msg":"committed","participant":"bank-b","txid":"t1","repeat":false}` + "\n"
	again := `{"level":"info","msg":"committed","participant":"bank-b","txid":"t1","repeat":true}` + "\n"
	if err := os.WriteFile(path, []byte(line+again), 0o644); err != nil {
		t.Fatal(err)
	}
	in.BankLogs = map[string]string{"b": path}
	if r := Check(in); r.Total() != 0 {
		t.Fatalf("a repeat flagged as a second effect: %v", r.Details)
	}
	if err := os.WriteFile(path, []byte(line+line), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := Check(in); r.Violations[CheckExactlyOnce] != 1 {
		t.Fatalf("double commit in the log not caught: %v %v", r.Violations, r.Details)
	}
}

// TestChecksCatchStaleOwner: a replica's abort decided after its election
// key was deleted is an action on stale ownership.
func TestChecksCatchStaleOwner(t *testing.T) {
	in := goodInput()
	path := t.TempDir() + "/coord-0.log"
	log := "=== chaos: start #1 of coord-0\n" +
		"08:48:40.627\tINFO\tleading\t{\"lease\": 2481098553986550023, \"rev\": 5}\n" +
		"08:48:47.801\tINFO\taborted\t{\"txid\": \"t2\", \"cause\": \"deadline\"}\n"
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	in.CoordLogs = map[string]string{"coord-0": path}
	end := int64(11)
	in.CampaignEnd = func(lease int64) (int64, bool) { return end, lease == 2481098553986550023 }
	if r := Check(in); r.Total() != 0 {
		t.Fatalf("an abort while leading flagged: %v", r.Details)
	}
	end = 9 // the key was gone before the abort at revision 10
	if r := Check(in); r.Violations[CheckJustified] != 1 {
		t.Fatalf("stale-owner abort not caught: %v %v", r.Violations, r.Details)
	}
}

// TestChecksCatchUnfencedParticipant: the observer's fencing anomaly (a
// vote or acknowledgement while unregistered) is a justified violation.
func TestChecksCatchUnfencedParticipant(t *testing.T) {
	in := goodInput()
	v := in.Txs["t1"]
	v.Anomalies = []string{"vote of b at revision 10 while b was not registered (fencing)"}
	in.Txs["t1"] = v
	if r := Check(in); r.Violations[CheckJustified] != 1 {
		t.Fatalf("unfenced vote not caught: %v", r.Violations)
	}
}

package chaos

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/concord-tx/concord/protocol"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// The checks, in the order they are reported. Each counts violations; a
// correct system scores 0 on every one.
const (
	CheckMoney       = "money"        // total conserved, no negative balance, no hold left
	CheckAtomicity   = "atomicity"    // every bank applied the decision; commit only with every yes
	CheckDurability  = "durability"   // what a client was told is what happened
	CheckLiveness    = "liveness"     // everything terminal within the bound, nothing left in etcd
	CheckExactlyOnce = "exactly-once" // balances are the sum of committed moves; one vote each
	CheckJustified   = "justified"    // every abort had its cause: a no vote, the deadline, a lost participant
	CheckProcesses   = "processes"    // no crash, panic or data race in any process
	// CheckFaults is about the suite: every fault did what it says (an
	// etcd partition showed its effect without leaking, and the member
	// rejoined), and every fault tried often enough was injected at least
	// once. The nemesis reports it; Check leaves it at 0.
	CheckFaults = "faults"
)

// Checks lists the check names in report order.
var Checks = []string{CheckMoney, CheckAtomicity, CheckDurability, CheckLiveness, CheckExactlyOnce, CheckJustified, CheckProcesses, CheckFaults}

// Account is one bank account as the bank reports it.
type Account struct {
	Balance  int64 `json:"balance"`
	Held     int64 `json:"held"`
	Incoming int64 `json:"incoming"` // headroom reserved by prepared credits
}

// BankState is what one bank reports about itself.
type BankState struct {
	Accounts map[string]Account
	Applied  map[string]string // transaction id → phase
}

// EtcdState is every Concord key read at one revision.
type EtcdState struct {
	Rev     int64
	Records map[string]protocol.Record
	Votes   map[string]map[string]string // id → participant → vote
	Inboxes map[string][]string          // id → participants with an inbox key
}

// ReadEtcd reads every Concord key at one revision.
func ReadEtcd(ctx context.Context, cli *clientv3.Client, keys protocol.Keys) (EtcdState, error) {
	st := EtcdState{Records: map[string]protocol.Record{}, Votes: map[string]map[string]string{}, Inboxes: map[string][]string{}}
	start, end := keys.All()
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(2000)}
		if st.Rev != 0 {
			opts = append(opts, clientv3.WithRev(st.Rev))
		}
		resp, err := cli.Get(ctx, start, opts...)
		if err != nil {
			return st, err
		}
		if st.Rev == 0 {
			st.Rev = resp.Header.Revision // later pages at this revision
		}
		for _, kv := range resp.Kvs {
			k := keys.Parse(string(kv.Key))
			switch k.Kind {
			case protocol.KindRecord:
				rec, err := protocol.DecodeRecord(kv.Value)
				if err != nil {
					return st, fmt.Errorf("record %s: %w", kv.Key, err)
				}
				st.Records[k.ID] = rec
			case protocol.KindVote:
				if st.Votes[k.ID] == nil {
					st.Votes[k.ID] = map[string]string{}
				}
				st.Votes[k.ID][k.Participant] = string(kv.Value)
			case protocol.KindInbox:
				st.Inboxes[k.ID] = append(st.Inboxes[k.ID], k.Participant)
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return st, nil
		}
		start = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// CheckInput is everything the checks look at.
type CheckInput struct {
	Ops       []Op
	Txs       map[string]TxView // the observer's view
	Etcd      EtcdState         // the final read
	Banks     map[string]BankState
	Opening   map[string]map[string]int64 // bank → account → opening balance
	Healed    time.Time                   // when the last fault was lifted
	Bound     time.Duration               // liveness bound after heal
	Processes []*Process
	BankLogs  map[string]string // bank → its log file
	CoordLogs map[string]string // coordinator replica → its log file
	// CampaignEnd is the revision at which the election key of the
	// replica holding lease was deleted (the observer's CampaignEnd).
	CampaignEnd func(lease int64) (int64, bool)
}

// CheckReport is the outcome of the checks.
type CheckReport struct {
	Violations map[string]int
	Details    []string      // one line per violation (the first few hundred)
	Slowest    time.Duration // from the heal (or begin, if later) to terminal
	SlowestID  string
	// Longest is the longest time from begin to terminal of any
	// transaction, faults or not.
	Longest   time.Duration
	LongestID string
	Decided   map[string]protocol.State // outcome of every transaction etcd knows
}

// Total is the number of violations of every check.
func (r CheckReport) Total() int {
	n := 0
	for _, v := range r.Violations {
		n += v
	}
	return n
}

func (r *CheckReport) fail(check, format string, args ...any) {
	r.Violations[check]++
	if len(r.Details) < 500 {
		r.Details = append(r.Details, check+": "+fmt.Sprintf(format, args...))
	}
}

// Check runs every check.
func Check(in CheckInput) CheckReport {
	r := CheckReport{Violations: make(map[string]int), Decided: make(map[string]protocol.State)}
	for _, c := range Checks {
		r.Violations[c] = 0
	}
	ops := make(map[string]Op, len(in.Ops))
	for _, op := range in.Ops {
		ops[op.ID] = op
	}
	// The outcome of each transaction: the final record, or what the
	// observer saw decided before the record was collected.
	ids := make(map[string]bool)
	for id := range in.Etcd.Records {
		ids[id] = true
	}
	for id := range in.Txs {
		ids[id] = true
	}
	for id := range ids {
		rec, inEtcd := in.Etcd.Records[id]
		view, seen := in.Txs[id]
		var outcome protocol.State
		switch {
		case inEtcd:
			outcome = rec.State.Outcome()
		case seen && view.Decision.Valid():
			outcome = view.Decision.Outcome()
		}
		if outcome.Valid() {
			r.Decided[id] = outcome
		}
		for _, a := range view.Anomalies {
			check := CheckAtomicity
			switch {
			case strings.Contains(a, "(fencing)"):
				check = CheckJustified
			case strings.Contains(a, "written twice"):
				check = CheckExactlyOnce
			}
			r.fail(check, "%s: %s", id, a)
		}
		checkVotes(&r, id, rec, inEtcd, view, seen, in.Etcd.Votes[id])
		checkLiveness(&r, id, rec, inEtcd, view, seen, in)
	}
	checkBanks(&r, in, ops)
	checkClients(&r, in)
	checkProcesses(&r, in.Processes)
	for _, bank := range sortedKeys(in.BankLogs) {
		checkBankLog(&r, bank, in.BankLogs[bank])
	}
	for _, coord := range sortedKeys(in.CoordLogs) {
		checkCoordLog(&r, coord, in.CoordLogs[coord], in)
	}
	sort := func(a, b string) int { return strings.Compare(a, b) }
	slices.SortStableFunc(r.Details, sort)
	return r
}

// checkVotes: a commit needs every participant's yes, written no later
// than the decision; an abort needs its cause.
func checkVotes(r *CheckReport, id string, rec protocol.Record, inEtcd bool, view TxView, seen bool, final map[string]string) {
	var decision protocol.State
	var participants []string
	var cause protocol.Cause
	switch {
	case inEtcd:
		decision, participants, cause = rec.State, rec.Participants, rec.Cause
	case seen:
		decision, participants, cause = view.Decision, view.Participants, view.Cause
	default:
		return
	}
	vote := func(p string) (string, int64) {
		if v, ok := view.Votes[p]; seen && ok {
			return v.Value, v.Rev
		}
		return final[p], 0
	}
	switch {
	case decision.Committed():
		for _, p := range participants {
			v, rev := vote(p)
			if v != protocol.VoteYes {
				r.fail(CheckAtomicity, "%s committed without a yes vote from %s (vote %q)", id, p, v)
			} else if seen && view.DecidedRev != 0 && rev > view.DecidedRev {
				r.fail(CheckAtomicity, "%s: vote of %s at revision %d, after the commit decision at %d", id, p, rev, view.DecidedRev)
			}
		}
	case decision.Outcome() == protocol.StateAborted:
		switch cause {
		case protocol.CauseVoteNo:
			no := false
			for _, p := range participants {
				if v, _ := vote(p); strings.HasPrefix(v, "no:") {
					no = true
				}
			}
			if !no {
				r.fail(CheckJustified, "%s aborted for a no vote, but no participant voted no", id)
			}
		case protocol.CauseDeadline:
			if inEtcd && rec.Decided.Before(rec.Deadline) {
				r.fail(CheckJustified, "%s aborted for its deadline %s at %s, before it", id, rec.Deadline.Format(time.RFC3339Nano), rec.Decided.Format(time.RFC3339Nano))
			}
			if !seen || view.DecisionRelisted {
				return
			}
			// Every process of the run shares this host's clock, and the
			// observer sees a decision after it is made: one it saw before
			// the deadline was made before it. This holds after cleanup
			// has deleted the record too.
			if view.DecidedRev != 0 && !view.DecidedAt.IsZero() && !view.Deadline.IsZero() && view.DecidedAt.Before(view.Deadline) {
				r.fail(CheckJustified, "%s aborted for its deadline %s, but the decision was seen at %s, before it", id, view.Deadline.Format(time.RFC3339Nano), view.DecidedAt.Format(time.RFC3339Nano))
			}
			// With every vote in, the last one decides; the deadline
			// cannot have been what ended it.
			all := view.DecidedRev != 0
			for _, p := range participants {
				if v, ok := view.Votes[p]; !ok || v.Rev >= view.DecidedRev {
					all = false
				}
			}
			if all {
				r.fail(CheckJustified, "%s aborted for its deadline at revision %d, but every participant had voted before it (%v)", id, view.DecidedRev, view.Votes)
			}
		case protocol.CauseParticipantLost:
			if !seen || view.RegisteredAtDecision == nil {
				return
			}
			lost := false
			for _, p := range participants {
				v, ok := view.Votes[p]
				voted := ok && v.Rev < view.DecidedRev
				if !voted && !view.RegisteredAtDecision[p] {
					lost = true
				}
			}
			if !lost {
				r.fail(CheckJustified, "%s aborted for a lost participant at revision %d, but every participant had voted or was registered (%v)", id, view.DecidedRev, view.RegisteredAtDecision)
			}
		default:
			// The suite never asks for an abort (operator), and every other
			// abort names its cause.
			r.fail(CheckJustified, "%s aborted with cause %q, which nothing in the run justifies", id, cause)
		}
	}
}

// checkLiveness: terminal, no inbox left, and terminal within the bound.
func checkLiveness(r *CheckReport, id string, rec protocol.Record, inEtcd bool, view TxView, seen bool, in CheckInput) {
	if inEtcd && !rec.State.Terminal() {
		r.fail(CheckLiveness, "%s is %v at the end (votes %v, inboxes %v)", id, rec.State, in.Etcd.Votes[id], in.Etcd.Inboxes[id])
		return
	}
	if len(in.Etcd.Inboxes[id]) > 0 {
		r.fail(CheckLiveness, "%s: inbox keys left for %v", id, in.Etcd.Inboxes[id])
	}
	if seen && view.Deleted && !view.Terminal() && !view.Gaps {
		r.fail(CheckLiveness, "%s: record deleted before it was terminal (last seen %v)", id, view.Decision)
		return
	}
	if !seen || !view.Terminal() {
		return
	}
	if d := view.TerminalAt.Sub(view.CreatedAt); d > r.Longest {
		r.Longest, r.LongestID = d, id
	}
	t0 := view.CreatedAt
	if in.Healed.After(t0) {
		t0 = in.Healed
	}
	if view.TerminalAt.Before(t0) {
		return
	}
	d := view.TerminalAt.Sub(t0)
	if d > r.Slowest {
		r.Slowest, r.SlowestID = d, id
	}
	if in.Bound > 0 && d > in.Bound {
		r.fail(CheckLiveness, "%s terminal %v after heal (or begin), bound %v", id, d.Round(time.Millisecond), in.Bound)
	}
}

// checkBanks: each bank's records agree with the decisions, balances are
// the opening plus committed moves, and nothing is held.
func checkBanks(r *CheckReport, in CheckInput, ops map[string]Op) {
	var total, opening int64
	expected := make(map[string]map[string]int64)
	for bank, accts := range in.Opening {
		expected[bank] = make(map[string]int64)
		for a, v := range accts {
			expected[bank][a] = v
			opening += v
		}
	}
	for id, outcome := range r.Decided {
		op, ok := ops[id]
		if !ok {
			r.fail(CheckAtomicity, "%s is in etcd but was never requested", id)
			continue
		}
		for _, l := range op.Legs {
			phase := in.Banks[l.Bank].Applied[id]
			want := "aborted"
			if outcome == protocol.StateCommitted {
				want = "committed"
				expected[l.Bank][l.Account] += l.Amount
			}
			switch {
			case phase == want, want == "aborted" && phase == "refused":
			case phase == "" || phase == "prepared":
				if rec, ok := in.Etcd.Records[id]; !ok || rec.State.Terminal() {
					r.fail(CheckAtomicity, "%s decided %v, %s has %q", id, outcome, l.Bank, phase)
				}
			default:
				r.fail(CheckAtomicity, "%s decided %v, %s applied %q", id, outcome, l.Bank, phase)
			}
		}
	}
	for bank, st := range in.Banks {
		for id, phase := range st.Applied {
			op, requested := ops[id]
			if _, decided := r.Decided[id]; decided {
				continue
			}
			if !requested || !slices.ContainsFunc(op.Legs, func(l Leg) bool { return l.Bank == bank }) {
				r.fail(CheckAtomicity, "%s has %q for %s, which it has no branch of", bank, phase, id)
			} else if _, inEtcd := in.Etcd.Records[id]; !inEtcd {
				r.fail(CheckAtomicity, "%s has %q for %s, which etcd has no record of", bank, phase, id)
			}
		}
		for a, acct := range st.Accounts {
			total += acct.Balance
			if acct.Balance < 0 {
				r.fail(CheckMoney, "%s/%s: negative balance %d", bank, a, acct.Balance)
			}
			if acct.Held != 0 || acct.Incoming != 0 {
				r.fail(CheckMoney, "%s/%s: %d still held and %d incoming at the end", bank, a, acct.Held, acct.Incoming)
			}
			if want, ok := expected[bank][a]; !ok {
				r.fail(CheckExactlyOnce, "%s/%s: unexpected account", bank, a)
			} else if acct.Balance != want {
				r.fail(CheckExactlyOnce, "%s/%s: balance %d, opening plus committed moves is %d", bank, a, acct.Balance, want)
			}
		}
	}
	if total != opening {
		r.fail(CheckMoney, "total balance %d, opening total %d", total, opening)
	}
}

// checkClients: a client told committed finds it committed everywhere; one
// told aborted finds it applied nowhere.
func checkClients(r *CheckReport, in CheckInput) {
	for _, op := range in.Ops {
		outcome := r.Decided[op.ID]
		switch op.Result {
		case Committed:
			if outcome != protocol.StateCommitted {
				r.fail(CheckDurability, "%s: client told committed, etcd says %v", op.ID, outcome)
			}
			for _, l := range op.Legs {
				if p := in.Banks[l.Bank].Applied[op.ID]; p != "committed" {
					r.fail(CheckDurability, "%s: client told committed, %s has %q", op.ID, l.Bank, p)
				}
			}
		case Aborted:
			if outcome != protocol.StateAborted {
				r.fail(CheckDurability, "%s: client told aborted (%s), etcd says %v", op.ID, op.Reason, outcome)
			}
			for _, l := range op.Legs {
				if p := in.Banks[l.Bank].Applied[op.ID]; p == "committed" || p == "prepared" {
					r.fail(CheckDurability, "%s: client told aborted, %s has %q", op.ID, l.Bank, p)
				}
			}
		}
	}
}

// checkBankLog: the bank logs each handler call that changed its store
// with "repeat": false; a (transaction, phase) logged so twice took effect
// twice.
func checkBankLog(r *CheckReport, bank, path string) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	effects := map[[2]string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e struct {
			Msg    string `json:"msg"`
			TxID   string `json:"txid"`
			Repeat *bool  `json:"repeat"`
		}
		if json.Unmarshal(sc.Bytes(), &e) != nil || e.TxID == "" || e.Repeat == nil || *e.Repeat {
			continue
		}
		switch e.Msg {
		case "prepared", "prepare refused", "committed", "aborted":
			k := [2]string{e.TxID, e.Msg}
			effects[k]++
			if effects[k] == 2 {
				r.fail(CheckExactlyOnce, "%s: %q took effect twice for %s (log %s)", bank, e.Msg, e.TxID, path)
			}
		}
	}
}

// checkCoordLog: a replica logs "leading" with its lease when it wins the
// election, and "aborted" for each abort its fenced Txn decided. An abort
// decided after the replica's election key was deleted (its lease expired,
// as in a pause past the TTL) acted on stale ownership.
func checkCoordLog(r *CheckReport, coord, path string, in CheckInput) {
	if in.CampaignEnd == nil {
		return
	}
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	var lease int64
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "=== chaos: start") {
			lease = 0 // a new process
			continue
		}
		msg, fields := parseLogLine(line)
		switch msg {
		case "leading":
			if v, ok := fields["lease"].(float64); ok {
				lease = int64(v)
			}
			if v, ok := fields["lease"].(json.Number); ok {
				lease, _ = v.Int64()
			}
		case "aborted":
			id, _ := fields["txid"].(string)
			view, ok := in.Txs[id]
			if !ok || lease == 0 || view.DecisionRelisted || view.DecidedRev == 0 {
				continue
			}
			if end, ok := in.CampaignEnd(lease); ok && view.DecidedRev > end {
				r.fail(CheckJustified, "%s aborted %s at revision %d, after its election key (lease %x) was deleted at revision %d: it acted on stale ownership (%s)",
					coord, id, view.DecidedRev, lease, end, path)
			}
		}
	}
}

// parseLogLine reads a zap line, JSON or console ("time\tLEVEL\tmsg\t{fields}").
func parseLogLine(line string) (string, map[string]any) {
	fields := map[string]any{}
	dec := func(s string) {
		d := json.NewDecoder(strings.NewReader(s))
		d.UseNumber()
		d.Decode(&fields)
	}
	if strings.HasPrefix(line, "{") {
		dec(line)
		msg, _ := fields["msg"].(string)
		return msg, fields
	}
	parts := strings.Split(line, "\t")
	if len(parts) < 3 {
		return "", fields
	}
	msg := parts[2]
	if last := parts[len(parts)-1]; strings.HasPrefix(last, "{") {
		dec(last)
		if len(parts) > 4 {
			msg = parts[len(parts)-2] // logger name or caller before the message
		}
	}
	return msg, fields
}

// checkProcesses: exits nobody asked for, panics and data races.
func checkProcesses(r *CheckReport, procs []*Process) {
	for _, p := range procs {
		for _, c := range p.Crashes() {
			r.fail(CheckProcesses, "%s (log %s)", c, p.LogPath())
		}
		f, err := os.Open(p.LogPath())
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		line := 0
		for sc.Scan() {
			line++
			s := sc.Text()
			if strings.HasPrefix(s, "WARNING: DATA RACE") || strings.HasPrefix(s, "panic:") || strings.HasPrefix(s, "fatal error:") {
				r.fail(CheckProcesses, "%s:%d: %s", p.LogPath(), line, s)
			}
		}
		f.Close()
	}
}

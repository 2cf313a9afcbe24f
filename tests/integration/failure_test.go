package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/concord-tx/concord/coordinator"
	"github.com/concord-tx/concord/internal/testkit/etcdtest"
	"github.com/concord-tx/concord/internal/testkit/poll"
	"github.com/concord-tx/concord/participant"
	"github.com/concord-tx/concord/protocol"
)

// A participant that never answers: the replica aborts at the deadline.
func TestDeadline(t *testing.T) {
	e := newEnv(t)
	e.replica("replica")
	a, silent := newRecorder("a"), newRecorder("silent")
	silent.block["*"] = make(chan struct{})
	e.participant("a", a, false)
	e.participant("silent", silent, false)
	start := time.Now()
	out, err := e.c.Do(e.ctx, coordinator.Request{Branches: branches("a", "silent"), Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if out.Committed() || out.Cause != protocol.CauseDeadline || !strings.Contains(out.Reason, "deadline") {
		t.Fatalf("outcome %+v, want aborted at the deadline", out)
	}
	if took < time.Second || took > 5*time.Second {
		t.Errorf("decided after %v, want about 1s", took)
	}
	tx := e.terminal(out.ID, 10*time.Second)
	if tx.State != protocol.StateAborted || silent.count(out.ID, "abort") != 1 || a.count(out.ID, "abort") != 1 {
		t.Fatalf("%+v; a %v silent %v", tx, a.phases(out.ID), silent.phases(out.ID))
	}
}

// A participant process dies before voting: once its lease expires the
// replica aborts, well before the deadline.
func TestParticipantDiesBeforeVoting(t *testing.T) {
	e := newEnv(t)
	e.replica("replica")
	a, doomed := newRecorder("a"), newRecorder("doomed")
	doomed.block["*"] = make(chan struct{})
	e.participant("a", a, false)
	_, doomedCli := e.participant("doomed", doomed, false)
	b, err := e.c.Begin(e.ctx, coordinator.Request{Branches: branches("a", "doomed"), Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 5*time.Second, "doomed is preparing", func() (bool, string) {
		return doomed.count(b.ID, "prepare") == 1, strings.Join(doomed.phases(b.ID), ",")
	})
	killed := time.Now()
	kill(doomedCli)
	out, err := e.c.Wait(e.ctx, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	if out.Committed() || out.Cause != protocol.CauseParticipantLost || !strings.Contains(out.Reason, "doomed") {
		t.Fatalf("outcome %+v, want aborted for the lost participant", out)
	}
	if took := time.Since(killed); took > ttl+3*time.Second {
		t.Errorf("aborted %v after the kill, want about one lease TTL (%v)", took, ttl)
	}
	tx, err := e.c.Get(e.ctx, b.ID)
	if err != nil || tx.Branches[1].Vote != nil {
		t.Fatalf("doomed voted? %+v %v", tx, err)
	}
	// Its replacement applies the abort.
	e.participant("doomed", doomed, false)
	e.terminal(b.ID, 10*time.Second)
	if doomed.count(b.ID, "abort") != 1 || doomed.count(b.ID, "commit") != 0 {
		t.Errorf("doomed saw %v", doomed.phases(b.ID))
	}
}

// A participant dies after voting yes: it is prepared, so the transaction
// still commits, and the participant applies the commit when it returns.
func TestParticipantDiesAfterVotingYes(t *testing.T) {
	e := newEnv(t)
	e.replica("replica")
	a, b := newRecorder("a"), newRecorder("b")
	release := make(chan struct{})
	a.block["*"] = release
	e.participant("a", a, false)
	_, bCli := e.participant("b", b, false)
	begun, err := e.c.Begin(e.ctx, coordinator.Request{Branches: branches("a", "b"), Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 5*time.Second, "b voted", func() (bool, string) {
		tx, err := e.c.Get(e.ctx, begun.ID)
		return err == nil && tx.Branches[1].Vote != nil, ""
	})
	kill(bCli)
	// Wait until b's registration is gone, then let a vote: its yes
	// commits, and b is not there to apply it.
	keys := protocol.DefaultKeys()
	poll.Until(t, ttl+5*time.Second, "b's registration expired", func() (bool, string) {
		resp, err := e.cli.Get(e.ctx, keys.Participant("b"))
		return err == nil && len(resp.Kvs) == 0, ""
	})
	close(release)
	out, err := e.c.Wait(e.ctx, begun.ID)
	if err != nil || !out.Committed() {
		t.Fatalf("outcome %+v, %v: want committed", out, err)
	}
	var tx coordinator.Transaction
	poll.Until(t, 5*time.Second, "a acknowledged", func() (bool, string) {
		tx, err = e.c.Get(e.ctx, begun.ID)
		return err == nil && tx.Branches[0].Acked, ""
	})
	if tx.State != protocol.StateCommitting || tx.Branches[1].Acked {
		t.Fatalf("before b returns: %+v", tx)
	}
	e.participant("b", b, false)
	tx = e.terminal(begun.ID, 10*time.Second)
	if tx.State != protocol.StateCommitted {
		t.Fatalf("state %v", tx.State)
	}
	if got := b.phases(begun.ID); !equal(got, "prepare", "commit") {
		t.Errorf("b saw %v, want [prepare commit]: no second prepare after the restart", got)
	}
}

// Commit handlers are retried until they succeed.
func TestCommitRetried(t *testing.T) {
	e := newEnv(t)
	a := newRecorder("a")
	a.failCommits = 3
	e.participant("a", a, false)
	out, err := e.c.Do(e.ctx, coordinator.Request{Branches: branches("a")})
	if err != nil || !out.Committed() {
		t.Fatalf("%+v %v", out, err)
	}
	e.terminal(out.ID, 10*time.Second)
	if got := a.phases(out.ID); !equal(got, "prepare", "commit-failed", "commit-failed", "commit-failed", "commit") {
		t.Errorf("a saw %v", got)
	}
}

// A standby instance takes over when the active one dies, and finishes
// what it left.
func TestStandbyTakesOver(t *testing.T) {
	e := newEnv(t)
	first, second := newRecorder("a"), newRecorder("a")
	release := make(chan struct{})
	first.block["*"] = release
	_, firstCli := e.participant("a", first, false)
	standby, _ := e.participant("a", second, true)
	if standby.IsActive() {
		t.Fatal("second instance active while the first holds the name")
	}
	begun, err := e.c.Begin(e.ctx, coordinator.Request{Branches: branches("a")})
	if err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 5*time.Second, "first instance preparing", func() (bool, string) {
		return first.count(begun.ID, "prepare") == 1, ""
	})
	kill(firstCli)
	ctx, cancel := context.WithTimeout(e.ctx, ttl+5*time.Second)
	defer cancel()
	if err := standby.WaitActive(ctx); err != nil {
		t.Fatalf("standby did not take over: %v", err)
	}
	out, err := e.c.Wait(e.ctx, begun.ID)
	if err != nil || !out.Committed() {
		t.Fatalf("%+v %v", out, err)
	}
	e.terminal(begun.ID, 10*time.Second)
	if got := second.phases(begun.ID); !equal(got, "prepare", "commit") {
		t.Errorf("standby saw %v", got)
	}
}

// A Commit that keeps failing holds up no other transaction, even with a
// single handler slot.
func TestFailingCommitBlocksNoOne(t *testing.T) {
	e := newEnv(t)
	a := newRecorder("a")
	a.stuck["stuck"] = true
	e.participant("a", a, false, participant.WithWorkers(1))
	out, err := e.c.Do(e.ctx, coordinator.Request{ID: "stuck", Branches: branches("a")})
	if err != nil || !out.Committed() {
		t.Fatalf("%+v %v", out, err)
	}
	poll.Until(t, 5*time.Second, "stuck commit retried", func() (bool, string) {
		return a.count("stuck", "commit-failed") >= 2, strings.Join(a.phases("stuck"), ",")
	})
	for i := range 20 {
		id := fmt.Sprintf("other-%d", i)
		out, err := e.c.Do(e.ctx, coordinator.Request{ID: id, Branches: branches("a"), Timeout: 2 * time.Second})
		if err != nil || !out.Committed() {
			t.Fatalf("%s behind a failing commit: %+v %v", id, out, err)
		}
		e.terminal(id, 5*time.Second)
	}
	a.mu.Lock()
	delete(a.stuck, "stuck")
	a.mu.Unlock()
	e.terminal("stuck", 10*time.Second)
	if a.count("stuck", "commit") != 1 {
		t.Errorf("stuck saw %v", a.phases("stuck"))
	}
}

// A transaction naming a participant nobody runs aborts at once, and is
// made aborted by the replica one lease TTL later although that participant
// never acknowledged. Its inbox key stays for it: when it does start, it
// gets the Abort.
func TestParticipantNobodyRuns(t *testing.T) {
	e := newEnv(t)
	e.replica("replica")
	a := newRecorder("a")
	e.participant("a", a, false)
	out, err := e.c.Do(e.ctx, coordinator.Request{ID: "typo", Branches: branches("a", "bank-x")})
	if err != nil || out.Committed() || out.Cause != protocol.CauseParticipantLost {
		t.Fatalf("%+v %v", out, err)
	}
	tx := e.terminal("typo", ttl+10*time.Second)
	if tx.State != protocol.StateAborted || !tx.Branches[0].Acked || tx.Branches[1].Acked {
		t.Fatalf("%+v", tx)
	}
	if n := e.inboxCount(); n != 1 {
		t.Fatalf("%d inbox keys, want bank-x's alone", n)
	}
	x := newRecorder("bank-x")
	e.participant("bank-x", x, false)
	poll.Until(t, 5*time.Second, "bank-x applied the abort", func() (bool, string) {
		return e.inboxCount() == 0, strings.Join(x.phases("typo"), ",")
	})
	if got := x.phases("typo"); !equal(got, "abort") {
		t.Errorf("bank-x saw %v", got)
	}
	if tx, err := e.c.Get(e.ctx, "typo"); err != nil || tx.State != protocol.StateAborted || !tx.Branches[1].Acked {
		t.Errorf("after bank-x: %+v %v", tx, err)
	}
	// The abort, come without a prepare, names the transaction as a's
	// prepare did.
	if rev := x.revision("typo"); rev == 0 || rev != a.revision("typo") {
		t.Errorf("revisions given: bank-x %v, a %v", x.revisions["typo"], a.revisions["typo"])
	}
}

// The same with the most branches a transaction may have, all but one
// naming participants nobody runs: the replica's reads and its finishing
// Txn stay within etcd's 128 operations a Txn.
func TestManyParticipantsNobodyRuns(t *testing.T) {
	e := newEnv(t)
	e.replica("replica")
	a := newRecorder("a")
	e.participant("a", a, false)
	names := []string{"a"}
	for i := 1; i < protocol.DefaultMaxBranches; i++ {
		names = append(names, fmt.Sprintf("gone-%02d", i))
	}
	out, err := e.c.Do(e.ctx, coordinator.Request{ID: "wide", Branches: branches(names...)})
	if err != nil || out.Committed() || out.Cause != protocol.CauseParticipantLost {
		t.Fatalf("%+v %v", out, err)
	}
	tx := e.terminal("wide", ttl+10*time.Second)
	if tx.State != protocol.StateAborted || len(tx.Branches) != len(names) || !tx.Branches[0].Acked {
		t.Fatalf("%+v", tx)
	}
	if n := e.inboxCount(); n != len(names)-1 {
		t.Fatalf("%d inbox keys, want the %d of the participants nobody runs", n, len(names)-1)
	}
	if got := a.phases("wide"); !equal(got, "abort") && !equal(got, "prepare", "abort") {
		t.Errorf("a saw %v, want an abort (after a prepare or not)", got)
	}
}

// TestCommitPastSilentMember: every client lists, before the real etcd
// member, one that takes every request and never answers. Every request
// is bounded and sent again to the next member, every watch that member
// does not create is opened again elsewhere, so participants register,
// a replica leads, and transactions commit as usual, only slower.
func TestCommitPastSilentMember(t *testing.T) {
	const requestTimeout = 300 * time.Millisecond
	e := newEnvWith(t, etcdtest.SilentMember(t), coordinator.WithRequestTimeout(requestTimeout))
	e.replica("replica", coordinator.WithRequestTimeout(requestTimeout))
	names := []string{"p0", "p1"}
	recs := make([]*recorder, len(names))
	for i, n := range names {
		recs[i] = newRecorder(n)
		e.participant(n, recs[i], false, participant.WithRequestTimeout(requestTimeout))
	}
	for i := range 5 {
		ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
		start := time.Now()
		out, err := e.c.Do(ctx, coordinator.Request{ID: fmt.Sprintf("silent-%d", i), Branches: branches(names...)})
		cancel()
		t.Logf("transaction %d decided in %v", i, time.Since(start).Round(time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		if !out.Committed() {
			t.Fatalf("transaction %d: outcome %+v, want committed", i, out)
		}
		tx := e.terminal(out.ID, 30*time.Second)
		if tx.State != protocol.StateCommitted {
			t.Fatalf("record %+v", tx.Record)
		}
		for j, r := range recs {
			if got := r.phases(out.ID); !equal(got, "prepare", "commit") {
				t.Errorf("%s saw %v for %s, want [prepare commit]", names[j], got, out.ID)
			}
		}
	}
}

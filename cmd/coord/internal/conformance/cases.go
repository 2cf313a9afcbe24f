package conformance

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/concord-tx/concord/coordinator"
	"github.com/concord-tx/concord/protocol"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// testCase is one scenario of PROTOCOL.md §11. It starts with instance 1
// running and registered, and may leave any instance stopped: the next
// case starts instance 1 again.
type testCase struct {
	name string
	run  func(ctx context.Context, s *suite) error
}

var cases = []testCase{
	{"commit alone", commitAlone},
	{"commit, participant last", commitLast},
	{"commit, participant first", commitFirst},
	{"vote no", voteNo},
	{"vote no, long reason", voteNoLong},
	{"decision while preparing", decisionWhilePreparing},
	{"duplicate delivery", duplicateDelivery},
	{"crash after yes vote", crashAfterYes},
	{"shutdown revokes the lease", shutdownRevokes},
	{"abort without prepare", abortWithoutPrepare},
	{"compaction while down", compactionWhileDown},
	{"standby takeover", standbyTakeover},
	{"no vote after the deadline", noVoteAfterDeadline},
}

// begin starts transaction id with a branch for the participant (mine)
// and, unless nil, one for the peer.
func (s *suite) begin(ctx context.Context, id string, timeout time.Duration, mine payload, theirs *payload) error {
	branches := []protocol.Branch{{Participant: s.cfg.Name, Payload: mine.bytes()}}
	if theirs != nil {
		branches = append(branches, protocol.Branch{Participant: PeerName, Payload: theirs.bytes()})
	}
	_, err := s.client.Begin(ctx, coordinator.Request{ID: id, Branches: branches, Timeout: timeout})
	return err
}

// committed waits until id is committed and finished, with the
// participants' votes yes.
func (s *suite) committed(ctx context.Context, id string, withPeer bool) (txState, error) {
	return s.waitTx(ctx, id, id+" to commit", func(st txState) error {
		errs := []error{st.finished(protocol.StateCommitted, "", ""), st.vote(s.cfg.Name, protocol.VoteYes)}
		if withPeer {
			errs = append(errs, st.vote(PeerName, protocol.VoteYes))
		}
		return all(errs...)
	})
}

func commitAlone(ctx context.Context, s *suite) error {
	return s.commitOne(ctx, "commit-alone")
}

// decidedBy checks that the Txn that decided id is the one that wrote
// p's vote.
func (s *suite) decidedBy(ctx context.Context, id, p string, st txState) error {
	d, err := s.decisionRev(ctx, id, st)
	if err != nil {
		return err
	}
	if v := st.votes[p]; v.mod != d {
		return fmt.Errorf("expected %s's vote (revision %d) to carry the decision (revision %d)", p, v.mod, d)
	}
	return nil
}

// commitLast: the peer votes first (while the participant is down); the
// participant's yes vote finds the peer's and must carry the commit
// decision (the nested compare on every other vote being "yes").
func commitLast(ctx context.Context, s *suite) error {
	const id = "commit-last"
	if err := s.down(0); err != nil {
		return err
	}
	if err := s.begin(ctx, id, DefaultTimeout, yes, &yes); err != nil {
		return err
	}
	if _, err := s.waitTx(ctx, id, "the peer's vote", func(st txState) error {
		return all(st.inState(protocol.StatePreparing), st.vote(PeerName, protocol.VoteYes))
	}); err != nil {
		return err
	}
	if err := s.up(ctx); err != nil {
		return err
	}
	st, err := s.committed(ctx, id, true)
	if err != nil {
		return err
	}
	return s.decidedBy(ctx, id, s.cfg.Name, st)
}

// votedFirst holds the peer's Prepare of id, begins id with a yes branch
// for each, and waits until the participant has voted yes while id is
// still preparing. The caller releases the peer (s.peer.release(id)).
func (s *suite) votedFirst(ctx context.Context, id string) error {
	s.peer.hold(id)
	if err := s.begin(ctx, id, DefaultTimeout, yes, &yes); err != nil {
		return err
	}
	_, err := s.waitTx(ctx, id, "the participant's vote", func(st txState) error {
		return all(st.inState(protocol.StatePreparing), st.vote(s.cfg.Name, protocol.VoteYes))
	})
	return err
}

// commitFirst: the participant votes while the peer has not (its vote key
// is missing, so the participant's compare fails and it only votes); the
// peer's vote then decides.
func commitFirst(ctx context.Context, s *suite) error {
	const id = "commit-first"
	defer s.peer.release(id)
	if err := s.votedFirst(ctx, id); err != nil {
		return err
	}
	s.peer.release(id)
	st, err := s.committed(ctx, id, true)
	if err != nil {
		return err
	}
	return s.decidedBy(ctx, id, PeerName, st)
}

func voteNo(ctx context.Context, s *suite) error {
	const id = "vote-no"
	if err := s.begin(ctx, id, DefaultTimeout, no("insufficient funds"), &yes); err != nil {
		return err
	}
	_, err := s.waitTx(ctx, id, id+" to abort", func(st txState) error {
		return all(st.finished(protocol.StateAborted, protocol.CauseVoteNo, s.cfg.Name+": insufficient funds"),
			st.vote(s.cfg.Name, "no:insufficient funds"))
	})
	return err
}

// voteNoLong: reasons are cut at 512 bytes, the vote's and the record's
// ("<participant>: <reason>") each on its own.
func voteNoLong(ctx context.Context, s *suite) error {
	const id = "vote-no-long"
	reason := strings.Repeat("r", protocol.MaxReasonLength+100)
	if err := s.begin(ctx, id, DefaultTimeout, no(reason), nil); err != nil {
		return err
	}
	full := s.cfg.Name + ": " + reason
	_, err := s.waitTx(ctx, id, id+" to abort", func(st txState) error {
		return all(st.finished(protocol.StateAborted, protocol.CauseVoteNo, full[:protocol.MaxReasonLength]),
			st.vote(s.cfg.Name, "no:"+reason[:protocol.MaxReasonLength]))
	})
	return err
}

// decisionWhilePreparing: the abort arrives while the participant's
// Prepare still waits; it must apply the abort and acknowledge it, and
// cannot vote any more.
func decisionWhilePreparing(ctx context.Context, s *suite) error {
	const id = "decided-while-preparing"
	mine := yes
	mine.DelayMS = 5000
	theirs := no("the peer refuses")
	if err := s.begin(ctx, id, DefaultTimeout, mine, &theirs); err != nil {
		return err
	}
	st, err := s.waitTx(ctx, id, id+" to abort", func(st txState) error {
		return st.finished(protocol.StateAborted, protocol.CauseVoteNo, PeerName+": the peer refuses")
	})
	if err != nil {
		return err
	}
	return st.vote(s.cfg.Name, "")
}

// commitOne begins a one-branch transaction and waits until it has
// committed. As a sentinel after a restart: once it has committed, the
// participant has listed its inbox since it started.
func (s *suite) commitOne(ctx context.Context, id string) error {
	if err := s.begin(ctx, id, DefaultTimeout, yes, nil); err != nil {
		return err
	}
	_, err := s.committed(ctx, id, false)
	return err
}

// duplicateDelivery: restarted after its yes vote and before the
// decision, the participant lists the prepare message again; it must not
// vote again (the vote is written once) and must apply the commit.
func duplicateDelivery(ctx context.Context, s *suite) error {
	const id = "duplicate"
	defer s.peer.release(id)
	if err := s.votedFirst(ctx, id); err != nil {
		return err
	}
	if err := s.down(0); err != nil {
		return err
	}
	if err := s.up(ctx); err != nil {
		return err
	}
	if err := s.commitOne(ctx, "duplicate-sentinel"); err != nil {
		return err
	}
	s.peer.release(id)
	_, err := s.committed(ctx, id, true)
	return err
}

// crashAfterYes: killed after its yes vote, the participant is prepared:
// the peer's vote decides commit, and the restarted participant applies
// it and acknowledges.
func crashAfterYes(ctx context.Context, s *suite) error {
	const id = "crash-after-yes"
	defer s.peer.release(id)
	if err := s.votedFirst(ctx, id); err != nil {
		return err
	}
	dead, err := s.crash(ctx, 0)
	if err != nil {
		return err
	}
	s.peer.release(id)
	if _, err := s.waitTx(ctx, id, id+" to be decided", func(st txState) error {
		if _, ok := st.inbox[s.cfg.Name]; !ok {
			return fmt.Errorf("the participant's inbox key is gone while it is down: %s", st)
		}
		return st.inState(protocol.StateCommitting)
	}); err != nil {
		return err
	}
	p, err := s.start(1)
	if err != nil {
		return err
	}
	s.inst[0] = p
	if err := s.waitRegistered(ctx, dead); err != nil {
		return err
	}
	_, err = s.committed(ctx, id, true)
	return err
}

// shutdownRevokes: on SIGTERM the participant revokes its lease, so its
// registration goes at once rather than at the TTL.
func shutdownRevokes(ctx context.Context, s *suite) error {
	reg, ok, err := s.registration(ctx)
	if err != nil || !ok {
		return fmt.Errorf("no registration to start with (%v)", err)
	}
	if err := s.down(0); err != nil {
		return err
	}
	ttl, err := s.cli.TimeToLive(ctx, clientv3.LeaseID(reg.lease))
	if err != nil {
		return err
	}
	if ttl.TTL > 0 {
		return fmt.Errorf("the instance exited and its lease %d still lives (%ds left): it was not revoked", reg.lease, ttl.TTL)
	}
	if _, ok, err := s.registration(ctx); err != nil || ok {
		return fmt.Errorf("the registration outlived the instance (%v)", err)
	}
	return nil
}

// abortWithoutPrepare: the transaction is aborted before the participant
// ever saw it; started, it finds the abort in its inbox, applies it and
// acknowledges, and never votes.
func abortWithoutPrepare(ctx context.Context, s *suite) error {
	const id = "abort-without-prepare"
	if err := s.down(0); err != nil {
		return err
	}
	if err := s.begin(ctx, id, DefaultTimeout, yes, nil); err != nil {
		return err
	}
	if _, err := s.client.Abort(ctx, id, "aborted before prepare"); err != nil {
		return err
	}
	if err := s.up(ctx); err != nil {
		return err
	}
	st, err := s.waitTx(ctx, id, id+" to finish", func(st txState) error {
		return st.finished(protocol.StateAborted, protocol.CauseOperator, "aborted before prepare")
	})
	if err != nil {
		return err
	}
	return st.vote(s.cfg.Name, "")
}

// compactionWhileDown: while the participant is down its transaction is
// begun and etcd's history is compacted past it; started, it must catch
// up from a listing.
func compactionWhileDown(ctx context.Context, s *suite) error {
	const id = "compacted"
	if err := s.down(0); err != nil {
		return err
	}
	if err := s.begin(ctx, id, DefaultTimeout, yes, nil); err != nil {
		return err
	}
	for i := range 50 {
		if _, err := s.cli.Put(ctx, fmt.Sprintf("/conformance-filler/%d", i), "x"); err != nil {
			return err
		}
	}
	resp, err := s.cli.Delete(ctx, "/conformance-filler/", clientv3.WithPrefix())
	if err != nil {
		return err
	}
	if _, err := s.cli.Compact(ctx, resp.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		return err
	}
	if err := s.up(ctx); err != nil {
		return err
	}
	_, err = s.committed(ctx, id, false)
	return err
}

// standbyTakeover: a second instance waits while the first holds the
// name, and takes over when the first is killed (within its lease TTL).
func standbyTakeover(ctx context.Context, s *suite) error {
	p2, err := s.start(2)
	if err != nil {
		return err
	}
	s.inst[1] = p2
	defer func() {
		if err := s.down(1); err != nil {
			s.log.Warn(err.Error())
		}
	}()
	before, _, err := s.registration(ctx)
	if err != nil {
		return err
	}
	if err := s.commitOne(ctx, "standby-first"); err != nil {
		return err
	}
	now, _, err := s.registration(ctx)
	if err != nil {
		return err
	}
	if now.lease != before.lease || now.value != before.value {
		return fmt.Errorf("the second instance took the registration from the first (%q, lease %d, now %q, lease %d)", before.value, before.lease, now.value, now.lease)
	}
	if p2.exited() {
		return fmt.Errorf("the second instance exited instead of waiting as a standby: %v (log %s)", p2.err, p2.logPath)
	}
	dead, err := s.crash(ctx, 0)
	if err != nil {
		return err
	}
	killed := time.Now()
	if err := s.begin(ctx, "standby-second", DefaultTimeout, yes, nil); err != nil {
		return err
	}
	if err := s.waitRegistered(ctx, dead); err != nil {
		return err
	}
	if took, limit := time.Since(killed), s.cfg.LeaseTTL+5*time.Second; took > limit {
		return fmt.Errorf("the standby took over %.1fs after the kill, expected within the lease TTL and 5s", took.Seconds())
	}
	_, err = s.committed(ctx, "standby-second", false)
	return err
}

// noVoteAfterDeadline: a prepare message read at or after the deadline
// gets no vote (the vote Txn has no deadline compare); the replica's
// deadline abort then ends it.
func noVoteAfterDeadline(ctx context.Context, s *suite) error {
	const id = "after-deadline"
	if err := s.down(0); err != nil {
		return err
	}
	if err := s.begin(ctx, id, time.Second, yes, nil); err != nil {
		return err
	}
	st, err := s.read(ctx, id)
	if err != nil || st.rec == nil {
		return fmt.Errorf("read %s: %v %s", id, err, st)
	}
	deadline := st.rec.Deadline
	if err := s.poll(ctx, "the deadline to pass", func() error {
		if time.Now().Before(deadline) {
			return fmt.Errorf("%v to go", time.Until(deadline))
		}
		return nil
	}); err != nil {
		return err
	}
	if err := s.up(ctx); err != nil {
		return err
	}
	if err := s.commitOne(ctx, "after-deadline-sentinel"); err != nil {
		return err
	}
	if st, err = s.read(ctx, id, s.cfg.Name); err != nil {
		return err
	}
	if err := all(st.inState(protocol.StatePreparing), st.vote(s.cfg.Name, "")); err != nil {
		return fmt.Errorf("voted after the deadline: %w", err)
	}
	r, err := coordinator.NewReplica(s.cli, coordinator.WithPrefix(s.cfg.Prefix), coordinator.WithLeaseTTL(s.cfg.LeaseTTL), coordinator.WithLogger(s.log.Named("replica")))
	if err != nil {
		return err
	}
	defer r.Close()
	st, err = s.waitTx(ctx, id, id+" to abort at its deadline", func(st txState) error {
		if st.rec != nil && st.rec.Cause != protocol.CauseDeadline {
			return fmt.Errorf("expected cause %q; found %s", protocol.CauseDeadline, st)
		}
		return st.inState(protocol.StateAborted)
	})
	if err != nil {
		return err
	}
	return all(st.vote(s.cfg.Name, ""), st.finished(protocol.StateAborted, protocol.CauseDeadline, st.rec.Reason))
}

package coordinator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/concord-tx/concord/internal/tracing"
	"github.com/concord-tx/concord/protocol"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// review aborts transaction id if it is undecided and past its deadline, or
// if a participant that has not voted is not registered; and finishes an
// aborting one that waits only for participants that are gone.
func (l *leadership) review(ctx context.Context, id string) {
	t := l.active[id]
	if t == nil {
		return
	}
	if t.pending {
		// The action may fail its compares without changing the record
		// (a participant registered again), and the timer that brought us
		// here is spent: review once more when it ends.
		t.recheck = true
		return
	}
	o := l.r.opts
	rec, rev := t.rec, t.rev
	if rec.State == protocol.StateAborting {
		if grace := rec.Decided.Add(o.leaseTTL); o.now().Before(grace) {
			l.timers.push(grace, id)
			return
		}
		l.act(ctx, t, func(ctx context.Context) actionResult { return l.finishAbandoned(ctx, rec, rev) })
		return
	}
	if rec.State != protocol.StatePreparing {
		return
	}
	if !o.now().Before(rec.Deadline) {
		reason := fmt.Sprintf("deadline exceeded: not every participant voted within %v", rec.Deadline.Sub(rec.Created).Round(time.Millisecond))
		l.act(ctx, t, func(ctx context.Context) actionResult {
			return l.abort(ctx, rec, rev, nil, protocol.CauseDeadline, reason, ActionAbortDeadline)
		})
		return
	}
	for _, p := range rec.Participants {
		if l.registered[p] || t.voted[p] {
			continue
		}
		keys := o.keys
		extra := []clientv3.Cmp{
			clientv3.Compare(clientv3.CreateRevision(keys.Vote(rec.ID, p)), "=", 0),
			clientv3.Compare(clientv3.CreateRevision(keys.Participant(p)), "=", 0),
		}
		reason := fmt.Sprintf("participant %s is not registered and had not voted", p)
		l.act(ctx, t, func(ctx context.Context) actionResult {
			return l.abort(ctx, rec, rev, extra, protocol.CauseParticipantLost, reason, ActionAbortParticipantLost)
		})
		return
	}
}

func (l *leadership) abort(ctx context.Context, rec protocol.Record, rev int64, extra []clientv3.Cmp, cause protocol.Cause, reason string, action Action) actionResult {
	ctx, span := l.r.opts.startRecovery(ctx, rec, action)
	_, ok, err := decideAbort(ctx, l.r.cli, l.r.opts, rec, rev, append(extra, l.fence), cause, reason)
	defer func() { endRecovery(span, ok, err) }()
	log := tracing.Logger(ctx, l.r.log)
	if err != nil {
		log.Warn("abort failed", zap.String("txid", rec.ID), zap.String("cause", string(cause)), zap.Error(err))
		return actionResult{id: rec.ID, err: err, retry: l.r.opts.now().Add(time.Second)}
	}
	if ok {
		tracing.Decided(span, protocol.StateAborting, cause, "replica")
		l.r.opts.observer.Recovery(action, 1)
		log.Info("aborted", zap.String("txid", rec.ID), zap.String("cause", string(cause)), zap.String("reason", reason))
	}
	return actionResult{id: rec.ID}
}

// finishAbandoned makes an aborting transaction aborted when every
// participant that has not acknowledged it neither voted nor is registered.
// Such a participant holds nothing the outcome depends on: it never voted
// yes. Its inbox key is left in place, so that if it did call Prepare
// before it went away, it still finds the abort when it returns. Without
// this, a transaction naming a participant that never runs would stay
// aborting for ever.
//
// Both Txns stay within etcd's 128 operations for any number of branches
// up to protocol.DefaultMaxBranches: the read takes one operation per
// branch and two ranges, the finish one compare per participant gone and
// two more.
func (l *leadership) finishAbandoned(ctx context.Context, rec protocol.Record, rev int64) actionResult {
	keys, o := l.r.keys, l.r.opts
	reads := make([]clientv3.Op, 0, len(rec.Participants)+2)
	for _, p := range rec.Participants {
		reads = append(reads, clientv3.OpGet(keys.Inbox(p, rec.ID), clientv3.WithCountOnly()))
	}
	reads = append(reads,
		clientv3.OpGet(keys.TxPrefix(rec.ID), clientv3.WithPrefix(), clientv3.WithKeysOnly()),
		clientv3.OpGet(keys.Participants(), clientv3.WithPrefix(), clientv3.WithKeysOnly()))
	resp, err := retry(ctx, o, "txn", func(ctx context.Context) (*clientv3.TxnResponse, error) {
		return l.r.cli.Txn(ctx).Then(reads...).Commit()
	})
	later := actionResult{id: rec.ID, err: errors.New("waiting for participants"), retry: o.now().Add(5 * o.leaseTTL)}
	if err != nil {
		l.r.log.Warn("reading an aborting transaction's participants failed", zap.String("txid", rec.ID), zap.Error(err))
		return later
	}
	n := len(rec.Participants)
	present := make(map[string]bool) // voted, or registered
	for _, res := range resp.Responses[n:] {
		for _, kv := range res.GetResponseRange().Kvs {
			if k := keys.Parse(string(kv.Key)); k.Kind == protocol.KindVote || k.Kind == protocol.KindParticipant {
				present[k.Participant] = true
			}
		}
	}
	// The record's compare also keeps what was read true: inbox keys are
	// written only with the record (by the begin and the decision) and
	// after that only deleted, and a vote lands only on the undecided
	// record. Only registrations can change.
	cmps := []clientv3.Cmp{l.fence, clientv3.Compare(clientv3.ModRevision(keys.Record(rec.ID)), "=", rev)}
	var gone []string
	for i, p := range rec.Participants {
		if resp.Responses[i].GetResponseRange().Count == 0 {
			continue // acknowledged
		}
		if present[p] {
			return later // it voted or it is running: it acknowledges itself
		}
		gone = append(gone, p)
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(keys.Participant(p)), "=", 0))
	}
	if len(gone) == 0 {
		return actionResult{id: rec.ID} // the last acknowledgement finishes it
	}
	ctx, span := o.startRecovery(ctx, rec, ActionFinishAbandoned)
	var finished bool
	defer func() { endRecovery(span, finished, err) }()
	if span.IsRecording() {
		span.SetAttributes(tracing.AttrGone.StringSlice(gone))
	}
	_, fin, err := keys.FinishWrite(rec, o.now())
	if err != nil {
		return actionResult{id: rec.ID, err: err, retry: o.now().Add(o.leaseTTL)}
	}
	done, err := retry(ctx, o, "txn", func(ctx context.Context) (*clientv3.TxnResponse, error) {
		return l.r.cli.Txn(ctx).If(cmps...).Then(clientv3.OpPut(fin.Key, string(fin.Value))).Commit()
	})
	if err != nil {
		l.r.log.Warn("finishing an aborting transaction failed", zap.String("txid", rec.ID), zap.Error(err))
		return later
	}
	if !done.Succeeded {
		return later
	}
	finished = true
	o.observer.Recovery(ActionFinishAbandoned, 1)
	tracing.Logger(ctx, l.r.log).Info("aborted without acknowledgements from participants that are gone", zap.String("txid", rec.ID), zap.Strings("participants", gone))
	return actionResult{id: rec.ID}
}

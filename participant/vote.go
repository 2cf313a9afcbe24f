package participant

import (
	"context"
	"errors"
	"time"

	"github.com/concord-tx/concord/internal/batch"
	"github.com/concord-tx/concord/internal/tracing"
	"github.com/concord-tx/concord/protocol"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.uber.org/zap"
)

// vote writes this participant's vote, guarded so that it lands only on
// the undecided record of revision R and only once (and, through the
// writer's guard, only while this instance holds the registration). A yes
// vote carries the commit decision if every other vote is already yes: etcd
// evaluates that compare when it applies the Txn, one Txn at a time, so of
// two last voters exactly one decides. A no vote carries the abort decision.
//
// The handler's slot is already free. When the writer has a slot free, this
// transaction's runner sends the vote itself and waits for its answer (or
// for ctx); that holds up only this transaction's next message, whose
// decision cannot arrive before the vote is applied (or is an abort that
// makes the vote moot).
func (in *inbox) vote(ctx context.Context, m message, v protocol.Vote, log *zap.Logger) error {
	keys, me, rec := in.p.keys, in.p.name, m.Record
	span := in.startWrite(ctx, tracing.SpanVote, m)
	rk, vk := keys.Record(m.id), keys.Vote(m.id, me)
	voteOp := batch.Put(vk, []byte(v.Encode()))
	var then *pb.RequestOp
	if v.Yes {
		_, writes, err := keys.DecisionWrites(rec, m.mod, protocol.StateCommitting, time.Now(), protocol.CauseNone, "")
		if err != nil {
			tracing.End(span, err)
			return err
		}
		var allYes []*pb.Compare
		for _, q := range rec.Participants {
			if q != me {
				allYes = append(allYes, batch.ValueIs(keys.Vote(m.id, q), protocol.VoteYes))
			}
		}
		then = batch.Txn(allYes, append([]*pb.RequestOp{voteOp}, batch.Puts(writes)...), []*pb.RequestOp{voteOp})
	} else {
		_, writes, err := keys.DecisionWrites(rec, m.mod, protocol.StateAborting, time.Now(), protocol.CauseVoteNo, me+": "+v.Reason)
		if err != nil {
			tracing.End(span, err)
			return err
		}
		then = batch.Txn(nil, append([]*pb.RequestOp{voteOp}, batch.Puts(writes)...), nil)
	}
	op := batch.Op{
		Cmps: []*pb.Compare{
			batch.ModRevisionIs(rk, m.mod), // R: this is a prepare message
			batch.CreateRevisionIs(vk, 0),
		},
		Then: []*pb.RequestOp{then},
		Else: []*pb.RequestOp{batch.Get(vk)},
		Key:  m.id,
	}
	in.writer.Submit(ctx, op, func(resp *pb.TxnResponse, rev int64, err error) {
		if err != nil {
			in.failed(m, log, "vote", err)
			tracing.End(span, err)
			return
		}
		outcome := "already decided"
		switch {
		case resp.Succeeded && resp.Responses[0].GetResponseTxn().Succeeded:
			outcome = "voted and decided"
		case resp.Succeeded:
			outcome = "voted"
		case len(resp.Responses[0].GetResponseRange().Kvs) > 0:
			outcome = "already voted" // by an attempt whose answer was lost
		}
		log.Debug("vote written", zap.Stringer("vote", v), zap.String("outcome", outcome), zap.Int64("rev", rev))
		in.voted(span, v, outcome, outcome == "voted and decided" || (!v.Yes && outcome == "voted"))
		span.End()
	})
	return nil
}

// ack acknowledges the decision by deleting this participant's inbox key,
// guarded by the key's revision. If every other inbox key of the
// transaction is gone too, the same Txn writes the terminal record: the last
// acknowledgement finalises the transaction. Nobody waits for it, so it is
// submitted lazily, to ride with a vote when one comes soon.
//
// clearFailure adds the deletion of this participant's failure report
// (see reportFailure) to the Txn.
func (in *inbox) ack(ctx context.Context, m message, clearFailure bool, log *zap.Logger) error {
	keys, me := in.p.keys, in.p.name
	span := in.startWrite(ctx, tracing.SpanAck, m)
	ik := keys.Inbox(me, m.id)
	_, fin, err := keys.FinishWrite(m.Record, time.Now())
	if err != nil {
		tracing.End(span, err)
		return err
	}
	last := []*pb.Compare{batch.ModRevisionIs(keys.Record(m.id), m.mod)}
	for _, q := range m.Record.Participants {
		if q != me {
			last = append(last, batch.CreateRevisionIs(keys.Inbox(q, m.id), 0))
		}
	}
	then := []*pb.RequestOp{batch.Delete(ik), batch.Txn(last, []*pb.RequestOp{batch.Put(fin.Key, fin.Value)}, nil)}
	if clearFailure {
		then = append(then, batch.Delete(keys.Failure(m.id, me)))
	}
	op := batch.Op{
		Cmps: []*pb.Compare{batch.ModRevisionIs(ik, m.mod)},
		Then: then,
		Lazy: true,
		Key:  m.id,
	}
	in.writer.Submit(ctx, op, func(resp *pb.TxnResponse, rev int64, err error) {
		if err != nil {
			in.failed(m, log, "acknowledgement", err)
			tracing.End(span, err)
			return
		}
		// Not succeeded: acknowledged before, by an attempt whose answer
		// was lost. Either way the key is gone.
		in.forget(m)
		finalised := resp.Succeeded && resp.Responses[1].GetResponseTxn().Succeeded
		log.Debug("acknowledged", zap.Bool("finalised", finalised), zap.Int64("rev", rev))
		in.acked(span, m, resp.Succeeded, finalised)
		span.End()
	})
	return nil
}

// failed handles a write that did not happen: the message stays in the
// inbox, and is forgotten here so that the next listing hands it out again.
func (in *inbox) failed(m message, log *zap.Logger, what string, err error) {
	in.mu.Lock()
	if in.mu.latest[m.id] == m.mod {
		delete(in.mu.latest, m.id)
	}
	in.mu.Unlock()
	switch {
	case errors.Is(err, batch.ErrGuardFailed):
		log.Warn(what+" refused: this instance no longer holds the registration", zap.Error(ErrFenced))
	case errors.Is(err, batch.ErrClosed), errors.Is(err, context.Canceled):
		log.Debug(what+" not written: stopping", zap.Error(err))
	default:
		log.Warn(what+" not written; it will be retried from the inbox", zap.Error(err))
	}
}

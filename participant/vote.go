package participant

import (
	"context"
	"fmt"
	"time"

	"github.com/concord-tx/concord/internal/retry"
	"github.com/concord-tx/concord/protocol"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// vote writes this participant's vote in one Txn, guarded so that it lands
// only on the undecided record of revision R, only once, and only while
// this instance holds the registration. A yes vote carries the commit
// decision if every other vote is already yes (the compare is evaluated by
// etcd, which applies Txns one at a time, so of two last voters exactly one
// decides). A no vote carries the abort decision. It returns what happened:
// "decided", "voted", or why it did not vote.
func (in *inbox) vote(ctx context.Context, m message, v protocol.Vote) (string, error) {
	keys, me, rec := in.p.keys, in.p.name, m.Record
	rk, vk := keys.Record(m.id), keys.Vote(m.id, me)
	voteOp := clientv3.OpPut(vk, v.Encode())
	var then clientv3.Op
	if v.Yes {
		_, writes, err := keys.DecisionWrites(rec, protocol.StateCommitting, time.Now(), protocol.CauseNone, "")
		if err != nil {
			return "", err
		}
		var allYes []clientv3.Cmp
		for _, q := range rec.Participants {
			if q != me {
				allYes = append(allYes, clientv3.Compare(clientv3.Value(keys.Vote(m.id, q)), "=", protocol.VoteYes))
			}
		}
		then = clientv3.OpTxn(allYes, append([]clientv3.Op{voteOp}, puts(writes)...), []clientv3.Op{voteOp})
	} else {
		_, writes, err := keys.DecisionWrites(rec, protocol.StateAborting, time.Now(), protocol.CauseVoteNo, me+": "+v.Reason)
		if err != nil {
			return "", err
		}
		then = clientv3.OpTxn(nil, append([]clientv3.Op{voteOp}, puts(writes)...), nil)
	}
	resp, err := retry.Do(ctx, in.policy, func(ctx context.Context) (*clientv3.TxnResponse, error) {
		return in.p.cli.Txn(ctx).
			If(
				clientv3.Compare(clientv3.ModRevision(rk), "=", m.created),
				clientv3.Compare(clientv3.CreateRevision(vk), "=", 0),
				in.fence,
			).
			Then(then).
			Else(clientv3.OpGet(rk), clientv3.OpGet(vk), clientv3.OpGet(keys.Participant(me))).
			Commit()
	})
	if err != nil {
		return "", fmt.Errorf("vote: %w", err)
	}
	if resp.Succeeded {
		if resp.Responses[0].GetResponseTxn().Succeeded {
			return "voted and decided", nil
		}
		return "voted", nil
	}
	// Why not: read in the same Txn.
	reg := resp.Responses[2].GetResponseRange().Kvs
	if len(reg) == 0 || reg[0].Lease != int64(in.lease) {
		return "", fmt.Errorf("vote on %s: %w", m.id, ErrFenced)
	}
	if len(resp.Responses[1].GetResponseRange().Kvs) > 0 {
		return "already voted", nil
	}
	return "already decided", nil
}

// ack acknowledges the decision by deleting this participant's inbox key,
// guarded by the key's revision and the registration. If every other inbox
// key of the transaction is gone too, the same Txn writes the terminal
// record: the last acknowledgement finalises the transaction.
func (in *inbox) ack(ctx context.Context, m message) (bool, error) {
	keys, me := in.p.keys, in.p.name
	ik := keys.Inbox(me, m.id)
	_, fin, err := keys.FinishWrite(m.Record, time.Now())
	if err != nil {
		return false, err
	}
	last := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(keys.Record(m.id)), "=", m.mod)}
	for _, q := range m.Record.Participants {
		if q != me {
			last = append(last, clientv3.Compare(clientv3.CreateRevision(keys.Inbox(q, m.id)), "=", 0))
		}
	}
	resp, err := retry.Do(ctx, in.policy, func(ctx context.Context) (*clientv3.TxnResponse, error) {
		return in.p.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(ik), "=", m.mod), in.fence).
			Then(clientv3.OpDelete(ik), clientv3.OpTxn(last, []clientv3.Op{clientv3.OpPut(fin.Key, fin.Value)}, nil)).
			Else(clientv3.OpGet(keys.Participant(me))).
			Commit()
	})
	if err != nil {
		return false, fmt.Errorf("ack: %w", err)
	}
	if resp.Succeeded {
		return resp.Responses[1].GetResponseTxn().Succeeded, nil
	}
	reg := resp.Responses[0].GetResponseRange().Kvs
	if len(reg) == 0 || reg[0].Lease != int64(in.lease) {
		return false, fmt.Errorf("ack of %s: %w", m.id, ErrFenced)
	}
	return false, nil // acknowledged before: an earlier attempt whose answer was lost
}

// puts turns protocol writes into etcd operations.
func puts(kvs []protocol.KeyValue) []clientv3.Op {
	ops := make([]clientv3.Op, len(kvs))
	for i, kv := range kvs {
		ops[i] = clientv3.OpPut(kv.Key, kv.Value)
	}
	return ops
}

package coordinator

import (
	"context"
	"fmt"

	"github.com/concord-tx/concord/protocol"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// decideAbort writes the abort decision for rec, read at ModRevision rev
// (which, the record being undecided, is the begin's revision R), in
// one Txn that compares the record is unchanged since (so it is still
// undecided and the same record) plus the caller's extra compares. ok is
// false when a compare failed: somebody else decided first, or an extra
// condition no longer holds; the caller re-reads before acting again. The
// decided record comes with its ModRevision.
func decideAbort(ctx context.Context, cli *clientv3.Client, o options, rec protocol.Record, rev int64, extra []clientv3.Cmp, cause protocol.Cause, reason string) (Transaction, bool, error) {
	decided, writes, err := o.keys.DecisionWrites(rec, rev, protocol.StateAborting, o.now(), cause, reason)
	if err != nil {
		return Transaction{}, false, err
	}
	cmps := append([]clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(o.keys.Record(rec.ID)), "=", rev)}, extra...)
	puts := make([]clientv3.Op, len(writes))
	for i, w := range writes {
		puts[i] = clientv3.OpPut(w.Key, string(w.Value))
	}
	resp, err := retry(ctx, o, "txn", func(ctx context.Context) (*clientv3.TxnResponse, error) {
		return cli.Txn(ctx).If(cmps...).Then(puts...).Commit()
	})
	if err != nil {
		return Transaction{}, false, fmt.Errorf("coordinator: abort %s: %w", rec.ID, err)
	}
	return Transaction{Record: decided, Revision: resp.Header.Revision}, resp.Succeeded, nil
}

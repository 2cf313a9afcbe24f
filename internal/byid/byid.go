package byid

import (
	"context"

	"github.com/concord-tx/concord/internal/retry"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Read sends the reads of each id, in order, in as few Txns as etcd
// takes: 128 operations a Txn, its default limit, halved while etcd
// refuses that many. Each Txn is retried as p says. use gets each Txn's
// responses, in the order of the reads; an error from it ends Read with
// that error.
func Read(ctx context.Context, cli *clientv3.Client, p retry.Policy, ids []string, reads func(id string) []clientv3.Op, use func(resps []*etcdserverpb.ResponseOp) error) error {
	per := 1
	if len(ids) > 0 {
		per = max(len(reads(ids[0])), 1)
	}
	for n := max(128/per, 1); len(ids) > 0; {
		chunk := ids[:min(n, len(ids))]
		ops := make([]clientv3.Op, 0, len(chunk)*per)
		for _, id := range chunk {
			ops = append(ops, reads(id)...)
		}
		resp, err := retry.Do(ctx, p, func(ctx context.Context) (*clientv3.TxnResponse, error) {
			return cli.Txn(ctx).Then(ops...).Commit()
		})
		if retry.TooManyOps(err) && n > 1 {
			n /= 2
			continue
		}
		if err != nil {
			return err
		}
		if err := use(resp.Responses); err != nil {
			return err
		}
		ids = ids[len(chunk):]
	}
	return nil
}

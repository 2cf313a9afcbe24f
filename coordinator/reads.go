package coordinator

import (
	"context"
	"maps"
	"slices"

	retrypkg "github.com/concord-tx/concord/internal/retry"
	"github.com/concord-tx/concord/protocol"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// readPages reads the keys in [start, end) page by page and hands each page
// to use until use says it is done. With pinned, every page is read at the
// revision of the first, which it returns: one consistent picture, which a
// compaction past that revision ends with an error. Without, each page is
// read at the latest revision, which no compaction can fail.
func readPages(ctx context.Context, cli *clientv3.Client, o options, start, end string, pinned bool, opts []clientv3.OpOption, use func([]*mvccpb.KeyValue) (done bool, err error)) (int64, error) {
	var rev int64
	for {
		getOpts := append([]clientv3.OpOption{clientv3.WithRange(end)}, opts...)
		if pinned && rev != 0 {
			getOpts = append(getOpts, clientv3.WithRev(rev))
		}
		resp, err := retry(ctx, o, "get", func(ctx context.Context) (*clientv3.GetResponse, error) {
			return cli.Get(ctx, start, getOpts...)
		})
		if err != nil {
			return rev, err
		}
		if rev == 0 {
			// Later pages read at the first page's revision. (A response's
			// header names the store's current revision, not the one read.)
			rev = resp.Header.Revision
		}
		if done, err := use(resp.Kvs); done || err != nil {
			return rev, err
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return rev, nil
		}
		start = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// unfinishedIDs returns, in order, the id of every transaction holding an
// inbox key, and the revision read at (of the first page, if not pinned;
// see readPages). Every transaction not yet terminal holds one: the begin
// writes one per participant, and the acknowledgement that deletes the
// last one makes the record terminal in the same Txn (PROTOCOL.md §4.3).
// A terminal abort whose abandoned participants' keys are left holds some
// too. So this finds the work in flight in reads that grow with it, not
// with the retention window.
func unfinishedIDs(ctx context.Context, cli *clientv3.Client, o options, pinned bool) ([]string, int64, error) {
	prefix := o.keys.Inboxes()
	ids := make(map[string]struct{})
	rev, err := readPages(ctx, cli, o, prefix, clientv3.GetPrefixRangeEnd(prefix), pinned, []clientv3.OpOption{clientv3.WithKeysOnly(), clientv3.WithLimit(1000)}, func(kvs []*mvccpb.KeyValue) (bool, error) {
		for _, kv := range kvs {
			if k := o.keys.Parse(string(kv.Key)); k.Kind == protocol.KindInbox {
				ids[k.ID] = struct{}{}
			}
		}
		return false, nil
	})
	if err != nil {
		return nil, 0, err
	}
	return slices.Sorted(maps.Keys(ids)), rev, nil
}

// readEach sends the reads of each id, in order, in as few Txns as etcd
// takes: 128 operations a Txn, its default limit, halved while etcd
// refuses that many. use gets each Txn's responses, in the order of the
// reads.
func readEach(ctx context.Context, cli *clientv3.Client, o options, ids []string, reads func(id string) []clientv3.Op, use func(resps []*etcdserverpb.ResponseOp) error) error {
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
		resp, err := retry(ctx, o, "txn", func(ctx context.Context) (*clientv3.TxnResponse, error) {
			return cli.Txn(ctx).Then(ops...).Commit()
		})
		if retrypkg.TooManyOps(err) && n > 1 {
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

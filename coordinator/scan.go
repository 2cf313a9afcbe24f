package coordinator

import (
	"context"
	"fmt"
	"slices"

	"github.com/concord-tx/concord/internal/byid"
	"github.com/concord-tx/concord/protocol"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// A new leader reads what it must act on before it acts, and what it only
// has to clean up after. The first is the work in flight: registrations,
// and the records and votes of the transactions holding inbox keys, a few
// reads however long the retention window. The second is every record
// kept for that window, which at a high rate is hundreds of thousands:
// read in the background, streamed a chunk at a time, while the leader
// already decides deadlines and lost participants.

// scanUnfinished reads every registration, and the record and votes of
// every transaction holding an inbox key, each read at the latest
// revision: a transaction open when the watch started keeps its inbox
// keys until it finishes, and its finish comes through the watch.
func (l *leadership) scanUnfinished(ctx context.Context) error {
	cli, keys, o := l.r.cli, l.r.keys, l.r.opts
	regs, err := retry(ctx, o, "get", func(ctx context.Context) (*clientv3.GetResponse, error) {
		return cli.Get(ctx, keys.Participants(), clientv3.WithPrefix())
	})
	if err != nil {
		return fmt.Errorf("scan registrations: %w", err)
	}
	for _, kv := range regs.Kvs {
		l.apply(ctx, false, kv.Key, kv.Value, kv.ModRevision, true)
	}
	ids, _, err := unfinishedIDs(ctx, cli, o, false)
	if err != nil {
		return fmt.Errorf("scan inboxes: %w", err)
	}
	err = byid.Read(ctx, cli, policy(o, "txn"), ids, func(id string) []clientv3.Op {
		return []clientv3.Op{clientv3.OpGet(keys.Record(id)), clientv3.OpGet(keys.TxPrefix(id), clientv3.WithPrefix())}
	}, func(resps []*etcdserverpb.ResponseOp) error {
		for _, r := range resps {
			for _, kv := range r.GetResponseRange().Kvs {
				l.apply(ctx, false, kv.Key, kv.Value, kv.ModRevision, true)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("scan records: %w", err)
	}
	slices.SortStableFunc(l.gcQueue, byFinished)
	l.r.log.Info("view built", zap.Int("active", len(l.active)), zap.Int("participants", len(l.registered)))
	return nil
}

// scanPage is one page of the background scan, or the error that ended
// it.
type scanPage struct {
	kvs []*mvccpb.KeyValue
	err error
}

// scanFinished reads every record and vote, a chunk at a time at recent
// revisions (see readRange), and hands the chunks to the leadership's
// loop; it closes pages when done. Reading at recent revisions, a
// compaction during a long scan cannot invalidate it; the loop keeps the
// newest revision of each key, and what was deleted meanwhile (see gone),
// so pages and the watch converge whatever order they come in.
func (l *leadership) scanFinished(ctx context.Context, pages chan<- scanPage) {
	defer close(pages)
	start, end := l.r.keys.Records()
	err := readRange(ctx, l.r.cli, l.r.opts, start, end, 0, nil, func(kvs []*mvccpb.KeyValue) (bool, error) {
		select {
		case pages <- scanPage{kvs: kvs}:
			return false, nil
		case <-ctx.Done():
			return true, ctx.Err()
		}
	})
	if err != nil && ctx.Err() == nil {
		select {
		case pages <- scanPage{err: err}:
		case <-ctx.Done():
		}
	}
}

// scanned folds the records of a page of the background scan into the
// view. Not its votes: the transactions in flight had theirs read with
// them, later votes come through the watch, and a page may be older than
// what the watch has shown (a vote of a deleted transaction whose id a
// new one took).
func (l *leadership) scanned(ctx context.Context, p scanPage) error {
	if p.err != nil {
		return fmt.Errorf("scan records: %w", p.err)
	}
	for _, kv := range p.kvs {
		if l.r.keys.Parse(string(kv.Key)).Kind == protocol.KindRecord {
			l.apply(ctx, false, kv.Key, kv.Value, kv.ModRevision, true)
		}
	}
	return nil
}

// scanDone ends the background scan: the terminal records it found join
// the cleanup queue, in the order they finished.
func (l *leadership) scanDone() {
	l.r.log.Info("finished transactions found", zap.Int("terminal", len(l.backlog)), zap.Int("queued", len(l.gcQueue)+len(l.backlog)))
	l.gcQueue = append(l.gcQueue, l.backlog...)
	slices.SortStableFunc(l.gcQueue, byFinished)
	l.backlog, l.gone = nil, nil
}

// byFinished orders the cleanup queue.
func byFinished(a, b gcEntry) int { return a.finished.Compare(b.finished) }

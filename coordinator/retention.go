package coordinator

import (
	"context"
	"time"

	retrypkg "github.com/concord-tx/concord/internal/retry"
	"github.com/concord-tx/concord/protocol"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

type gcEntry struct {
	id          string
	rev         int64
	finished    time.Time              // on the leader's clock
	inboxesLeft []string               // participants whose inbox keys may be left (see inboxesLeft)
	trace       *protocol.TraceContext // nil: none stored
}

func (l *leadership) gcInterval() time.Duration {
	return min(max(l.r.opts.retention/10, 100*time.Millisecond), 10*time.Second)
}

// collect deletes terminal records older than the retention window, with
// their votes, many per Txn.
func (l *leadership) collect(ctx context.Context) {
	cutoff := l.r.opts.now().Add(-l.r.opts.retention)
	n := 0
	for n < len(l.gcQueue) && l.gcQueue[n].finished.Before(cutoff) {
		n++
	}
	if n == 0 {
		return
	}
	due := l.gcQueue[:n]
	deleted := 0
	for len(due) > 0 {
		// Within etcd's default 128 operations a Txn (or what etcd
		// took): each record costs its own delete, its votes' and one per
		// participant's inbox key.
		k, ops := 0, 0
		for k < len(due) && (k == 0 || ops+gcOps(due[k]) <= l.gcMaxOps) {
			ops += gcOps(due[k])
			k++
		}
		d, err := l.delete(ctx, due[:k])
		deleted += d
		if err != nil {
			// Not answered: these records and the rest stay first in the
			// queue. (Requests are retried until the leadership ends, so
			// this is mostly that end.)
			if ctx.Err() == nil {
				l.r.log.Warn("deleting terminal records failed; will retry", zap.Int("records", len(due)), zap.Error(err))
			}
			break
		}
		due = due[k:]
	}
	l.gcQueue = l.gcQueue[n-len(due):]
	if deleted > 0 {
		l.r.opts.observer.Recovery(ActionGC, deleted)
		l.r.log.Debug("deleted terminal records", zap.Int("n", deleted))
	}
}

func gcOps(e gcEntry) int { return 2 + len(e.inboxesLeft) }

// inboxesLeft names the participants whose inbox keys a terminal record
// may have left behind. Only an abort can leave any: a replica finishes an
// abandoned one with the inbox keys of the participants that went away in
// place (see finishAbandoned). A commit is finished only by the last
// acknowledgement, whose Txn requires every other inbox key of the
// transaction gone and deletes its own; and after the decision inbox keys
// are only deleted. Deleting them again would cost etcd a lookup each for
// nothing.
func inboxesLeft(rec protocol.Record) []string {
	if rec.State == protocol.StateCommitted {
		return nil
	}
	return rec.Participants
}

// delete removes a chunk of terminal records in one Txn, with their votes
// and the inbox keys that participants which never acknowledged left
// behind, and returns how many it removed. If any of them changed
// meanwhile, or etcd refuses a Txn that large (run with --max-txn-ops
// below its default; later chunks are then held to half the size), it
// falls back to one Txn each so the rest still go; a record etcd refuses
// even alone is left, and said so. An error means etcd did not answer (or
// ctx ended): whatever was not removed is worth trying again.
func (l *leadership) delete(ctx context.Context, chunk []gcEntry) (int, error) {
	keys := l.r.keys
	txn := func(entries []gcEntry) (ok bool, err error) {
		spans := l.r.opts.startGC(ctx, entries)
		defer func() { endGC(spans, ok, err) }()
		cmps := []clientv3.Cmp{l.fence}
		var ops []clientv3.Op
		for _, e := range entries {
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(keys.Record(e.id)), "=", e.rev))
			ops = append(ops, clientv3.OpDelete(keys.Record(e.id)), clientv3.OpDelete(keys.TxPrefix(e.id), clientv3.WithPrefix()))
			for _, p := range e.inboxesLeft {
				ops = append(ops, clientv3.OpDelete(keys.Inbox(p, e.id)))
			}
		}
		resp, err := retry(ctx, l.r.opts, "txn", func(ctx context.Context) (*clientv3.TxnResponse, error) {
			return l.r.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
		})
		if err != nil {
			return false, err
		}
		return resp.Succeeded, nil
	}
	unanswered := func(err error) bool { return ctx.Err() != nil || retrypkg.Transient(err) }
	ok, err := txn(chunk)
	switch {
	case err == nil && ok:
		return len(chunk), nil
	case err != nil && unanswered(err):
		return 0, err
	case retrypkg.TooManyOps(err):
		// Later chunks hold at most half as many.
		ops := 0
		for _, e := range chunk {
			ops += gcOps(e)
		}
		l.gcMaxOps = min(l.gcMaxOps, max(ops/2, 1))
	}
	n := 0
	for _, e := range chunk {
		ok, err := txn([]gcEntry{e})
		switch {
		case err != nil && unanswered(err):
			return n, err
		case err != nil:
			l.r.log.Warn("etcd refuses to delete a terminal record; it is left in place", zap.String("txid", e.id), zap.Error(err))
		case ok:
			n++
		}
	}
	return n, nil
}

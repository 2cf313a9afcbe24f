package coordinator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/concord-tx/concord/internal/watch"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// candidacy is this replica's place in the election: its key, attached to
// its lease, and the key's creation revision. Replicas lead in the order
// their keys were created; the leader's actions compare the creation
// revision, so they fail once the key is gone.
type candidacy struct {
	key string
	rev int64
}

// fence is the compare every action of the leader carries.
func (c candidacy) fence() clientv3.Cmp {
	return clientv3.Compare(clientv3.CreateRevision(c.key), "=", c.rev)
}

// campaign waits until this replica leads. It keeps the key layout and
// order of concurrency.Election, so replicas of either kind share one
// queue, but bounds each request as every other request of the replica is
// bounded: an attempt that an etcd member holds (its leader died after it
// took the request, so it answers only when etcd's own request timeout
// passes, 7s by default) is abandoned after the request timeout and sent
// again, to the next member. Waiting for the replicas ahead is not bounded:
// their keys go when they resign or their leases expire.
//
// A campaign that fails while the session lives (etcd briefly unreachable,
// the watch's member behind or compacted past) resumes with the same key:
// the key keeps its place in the queue.
func (r *Replica) campaign(ctx context.Context, lease clientv3.LeaseID) (candidacy, error) {
	backoff := 50 * time.Millisecond
	for {
		c, err := r.stand(ctx, lease)
		if err == nil {
			err = r.waitTurn(ctx, c)
		}
		if err == nil || ctx.Err() != nil {
			return c, err
		}
		r.log.Info("campaign interrupted, resuming", zap.Error(err), zap.Duration("backoff", backoff))
		select {
		case <-ctx.Done():
			return c, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// electionPrefix is where candidates' keys go. The "/" after the
// protocol's election prefix is the one concurrency.NewElection adds.
func (r *Replica) electionPrefix() string { return r.keys.Election() + "/" }

// stand creates this replica's key, or finds it from an earlier attempt
// whose answer was lost: the same Txn twice is harmless.
func (r *Replica) stand(ctx context.Context, lease clientv3.LeaseID) (candidacy, error) {
	val := fmt.Sprintf("%x", lease)
	key := r.electionPrefix() + val
	resp, err := retry(ctx, r.opts, "campaign", func(ctx context.Context) (*clientv3.TxnResponse, error) {
		return r.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, val, clientv3.WithLease(lease))).
			Else(clientv3.OpGet(key)).
			Commit()
	})
	if err != nil {
		return candidacy{}, err
	}
	if resp.Succeeded {
		return candidacy{key: key, rev: resp.Header.Revision}, nil
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 {
		// Its lease expired between the compare and the read: the
		// session is over, and the replica starts a new one.
		return candidacy{}, errors.New("election key gone with its lease")
	}
	return candidacy{key: key, rev: kvs[0].CreateRevision}, nil
}

// waitTurn returns once no key created before c's is left.
func (r *Replica) waitTurn(ctx context.Context, c candidacy) error {
	for {
		resp, err := retry(ctx, r.opts, "get", func(ctx context.Context) (*clientv3.GetResponse, error) {
			return r.cli.Get(ctx, r.electionPrefix(), append(clientv3.WithLastCreate(), clientv3.WithMaxCreateRev(c.rev-1))...)
		})
		if err != nil {
			return err
		}
		if len(resp.Kvs) == 0 {
			return nil
		}
		// Through internal/watch, which leaves a member that falls behind
		// the cluster: a watch held there would not see the key go.
		if err := watch.UntilDeleted(ctx, r.cli, r.log, string(resp.Kvs[0].Key), resp.Header.Revision); err != nil {
			return err
		}
	}
}

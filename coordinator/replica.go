package coordinator

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/concord-tx/concord/internal/term"
	"github.com/concord-tx/concord/protocol"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Replica is one coordinator replica's recovery loop. Replicas elect a
// leader among themselves; the leader watches every transaction and aborts
// those past their deadline or whose unvoted participant is gone, and
// deletes terminal records after the retention window. When the leader's
// lease expires another replica takes over within one lease TTL.
//
// Safety does not rest on the election: every action is a Txn guarded by
// the record's revision, and also by the leader's own election key, so a
// replica that was paused past its lease cannot act on what it believed
// before.
type Replica struct {
	cli    *clientv3.Client
	opts   options
	keys   protocol.Keys
	log    *zap.Logger
	cancel context.CancelFunc
	done   chan struct{}
	leader atomic.Bool
}

// NewReplica starts a replica that campaigns for leadership until Close.
// cli is not closed by the replica.
func NewReplica(cli *clientv3.Client, opts ...ReplicaOption) (*Replica, error) {
	o, err := newReplicaOptions(opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Replica{cli: cli, opts: o, keys: o.keys, log: o.logger, cancel: cancel, done: make(chan struct{})}
	go r.run(ctx)
	return r, nil
}

// IsLeader reports whether this replica is currently leading.
func (r *Replica) IsLeader() bool { return r.leader.Load() }

// Done is closed when the replica has stopped.
func (r *Replica) Done() <-chan struct{} { return r.done }

// Close stops the replica, resigns leadership, revokes its lease so another
// replica takes over at once, and waits for its goroutines.
func (r *Replica) Close() error {
	r.cancel()
	<-r.done
	return nil
}

func (r *Replica) run(ctx context.Context) {
	defer close(r.done)
	term.Run(ctx, r.cli, term.Config{
		TTL:            r.opts.leaseTTL,
		RequestTimeout: r.opts.requestTimeout,
		MinBackoff:     100 * time.Millisecond,
		MaxBackoff:     5 * time.Second,
		Logger:         r.log,
		Lost:           "replica lost its session, starting again",
	}, r.lead)
}

// lead is one term of this replica, while its lease lives: campaign, then
// lead until ctx ends (the lease is lost, or the replica closes). The
// leader's view is rebuilt whenever it fails.
func (r *Replica) lead(ctx context.Context, lease clientv3.LeaseID) error {
	c, err := r.campaign(ctx, lease)
	if err != nil {
		return fmt.Errorf("campaign: %w", err)
	}
	r.leader.Store(true)
	defer r.leader.Store(false)
	fence := c.fence()
	r.log.Info("leading", zap.Int64("lease", int64(lease)), zap.Int64("rev", c.rev))
	for ctx.Err() == nil {
		err := newLeadership(r, fence).run(ctx)
		if ctx.Err() == nil {
			r.log.Info("rebuilding view", zap.Error(err))
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return ctx.Err()
}

// Package watch opens etcd watches that leave a member that has fallen
// behind the cluster.
//
// A watch is served by one etcd member. When that member is cut off from
// its peers it stays up and keeps the watch open, but it applies nothing
// more, so the watch goes silent while the other members commit. Requiring
// a leader does not help soon enough: the member notices it has no leader
// only after an election timeout, and etcd ends such watches after three
// more. A participant whose inbox watch is silent votes on nothing, and
// every transaction that needs it waits.
//
// Open checks, twice a second, that the member serving the watch has caught
// up with a revision read from the cluster through a member that has a
// leader; when it has not within a second, Open ends the watch (its channel
// closes) so that the caller opens it again from where it got to. Each
// watch gets a gRPC stream of its own (the etcd client puts watches with
// the same metadata on one stream), so the new one is placed afresh by the
// client's round-robin balancer, and the check's progress requests reach
// only that stream. A member that is merely slow is given the second to
// catch up; if it does not, moving is cheap.
package watch

import (
	"context"
	"time"

	"github.com/google/uuid"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/metadata"
)

const (
	interval = 500 * time.Millisecond // between checks
	grace    = time.Second            // for the member to reach the cluster's revision
)

// Open watches key with opts like cli.Watch, requiring a leader. The
// returned channel also closes when the serving member is found behind;
// stop ends the watch and waits for its check to end. It must be called.
func Open(ctx context.Context, cli *clientv3.Client, lg *zap.Logger, key string, opts ...clientv3.OpOption) (wch clientv3.WatchChan, stop func()) {
	if lg == nil {
		lg = zap.NewNop()
	}
	sctx := metadata.AppendToOutgoingContext(clientv3.WithRequireLeader(ctx),
		"concord-watch-stream", uuid.NewString())
	wctx, cancel := context.WithCancel(sctx)
	wch = cli.Watch(wctx, key, opts...)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if check(wctx, cli, key) {
			lg.Info("watch's etcd member is behind the cluster; watching through another", zap.String("key", key))
			cancel()
		}
	}()
	return wch, func() {
		cancel()
		<-done
	}
}

// check returns true once the member serving ctx's stream is found
// behind, false when ctx ends or the stream does.
func check(ctx context.Context, cli *clientv3.Client, key string) bool {
	// A watch on the same stream that passes no events: it receives the
	// stream's progress notifications, which carry the member's revision.
	probe := cli.Watch(ctx, key, clientv3.WithFilterPut(), clientv3.WithFilterDelete())
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
		rctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(ctx), interval)
		resp, err := cli.Get(rctx, key, clientv3.WithCountOnly())
		cancel()
		if err != nil {
			continue // no member with a leader answered: nothing to compare with
		}
		caught, ok := caughtUp(ctx, cli, probe, resp.Header.Revision)
		if !ok {
			return false
		}
		if !caught {
			return true
		}
	}
}

// caughtUp asks the stream's member for its revision until it reports want
// or more, for up to grace. ok is false when ctx or the probe ended.
func caughtUp(ctx context.Context, cli *clientv3.Client, probe clientv3.WatchChan, want int64) (caught, ok bool) {
	deadline := time.NewTimer(grace)
	defer deadline.Stop()
	for {
		if err := cli.RequestProgress(ctx); err != nil {
			return false, false
		}
		again := time.After(interval / 5)
	wait:
		for {
			select {
			case <-ctx.Done():
				return false, false
			case <-deadline.C:
				return false, true
			case resp, open := <-probe:
				if !open || resp.Err() != nil {
					return false, false
				}
				if resp.Header.Revision >= want {
					return true, true
				}
			case <-again:
				break wait
			}
		}
	}
}

package watch

import (
	"context"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

const (
	interval = 500 * time.Millisecond // between checks
	grace    = time.Second            // for the member to reach the cluster's revision
	// createTimeout bounds the wait for a member to create a watch, which
	// it does at once, without consulting its peers.
	createTimeout = 2 * time.Second
)

// Open watches key with opts like cli.Watch, requiring a leader. The
// returned channel also closes when the serving member is found behind;
// stop ends the watch and waits for its check to end. It must be called.
func Open(ctx context.Context, cli *clientv3.Client, lg *zap.Logger, key string, opts ...clientv3.OpOption) (wch clientv3.WatchChan, stop func()) {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	if cli.ActiveConnection() == nil {
		// A client with no connection of its own (clientv3.NewCtxClient):
		// its watcher is all there is.
		return cli.Watch(wctx, key, opts...), cancel
	}
	if lg == nil {
		lg = zap.NewNop()
	}
	w := clientv3.NewWatcher(cli)
	// Watch returns only once the member has created the watch. A member
	// that takes the stream and never answers (its process frozen) would
	// hold this call for good: give it createTimeout, then end the watch,
	// which closes the channel as a member found behind does.
	slow := time.AfterFunc(createTimeout, func() {
		lg.Info("watch's etcd member did not create it in time; watching through another", zap.String("key", key), zap.Duration("waited", createTimeout))
		cancel()
	})
	wch = w.Watch(wctx, key, opts...)
	slow.Stop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if behind(wctx, cli, w, key) {
			lg.Info("watch's etcd member is behind the cluster; watching through another", zap.String("key", key))
			cancel()
		}
	}()
	return wch, func() {
		cancel()
		<-done
		w.Close()
	}
}

// ErrEnded: a watch ended before what it waited for happened (its member
// fell behind, etcd ended it); reading again tells where things stand.
var ErrEnded = errors.New("watch ended")

// UntilDeleted returns nil once key is deleted after revision rev; ErrEnded
// if the watch ends first, or ctx's error.
func UntilDeleted(ctx context.Context, cli *clientv3.Client, lg *zap.Logger, key string, rev int64) error {
	wch, stop := Open(ctx, cli, lg, key, clientv3.WithRev(rev+1), clientv3.WithFilterPut())
	defer stop()
	for resp := range wch {
		if len(resp.Events) > 0 {
			return nil // deletions only pass the filter
		}
		if err := resp.Err(); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrEnded, key, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return fmt.Errorf("%w: %s", ErrEnded, key)
}

// behind returns true once the member serving w's stream is found behind
// the cluster, false when ctx ends or the stream does.
func behind(ctx context.Context, cli *clientv3.Client, w clientv3.Watcher, key string) bool {
	// A watch on the same stream that passes no events: its creation and
	// the stream's progress notifications carry the member's revision. A
	// member that does not create it in time (frozen since it created the
	// watch) counts as behind.
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	slow := time.AfterFunc(createTimeout, cancel)
	probe := w.Watch(pctx, key, clientv3.WithFilterPut(), clientv3.WithFilterDelete(), clientv3.WithCreatedNotify())
	if !slow.Stop() {
		return ctx.Err() == nil
	}
	var member int64 // the highest revision the member reported
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
		var ok bool
		if member, ok = reach(pctx, w, probe, member, resp.Header.Revision); !ok {
			return false
		}
		if member < resp.Header.Revision {
			return true
		}
	}
}

// reach reads the probe, and asks the member for its revision, until it
// reports want or more or grace passes; it returns the highest revision
// the member reported. ok is false when ctx or the probe ended.
func reach(ctx context.Context, w clientv3.Watcher, probe clientv3.WatchChan, member, want int64) (int64, bool) {
	deadline := time.NewTimer(grace)
	defer deadline.Stop()
	for member < want {
		// A member holds its answer back while a watch on the stream
		// starts after its revision or is replaying history: ask again.
		if err := w.RequestProgress(ctx); err != nil {
			return member, false
		}
		again := time.After(interval / 5)
	wait:
		for member < want {
			select {
			case <-ctx.Done():
				return member, false
			case <-deadline.C:
				return member, true
			case resp, open := <-probe:
				if !open || resp.Err() != nil {
					return member, false
				}
				member = max(member, resp.Header.Revision)
			case <-again:
				break wait
			}
		}
	}
	return member, true
}

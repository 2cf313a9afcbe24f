package session

import (
	"context"
	"errors"
	"fmt"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"

	"github.com/concord-tx/concord/internal/retry"
)

// Config says what lease to keep.
type Config struct {
	TTL            time.Duration // lease TTL, rounded up to whole seconds
	RequestTimeout time.Duration // bound on granting the lease, retries included
	Logger         *zap.Logger   // may be nil
}

// New grants a lease and returns a session that keeps it alive until ctx
// ends, the session is closed or orphaned, or the lease is lost (its Done
// channel closes then). The caller revokes the lease or leaves it to
// expire; New never does.
//
// The session's Client is not cli but a view of it that shares cli's
// connections, key-value and watch services; it must not be closed.
func New(ctx context.Context, cli *clientv3.Client, cfg Config) (*concurrency.Session, error) {
	lg := cfg.Logger
	if lg == nil {
		lg = zap.NewNop()
	}
	ttl := int64((cfg.TTL + time.Second - 1) / time.Second)
	r := &renewer{Lease: cli.Lease, log: lg, ttl: time.Duration(ttl) * time.Second}
	r.attempt = attemptTimeout(r.ttl)
	if conn := cli.ActiveConnection(); conn != nil {
		r.remote = pb.NewLeaseClient(conn)
		r.recv = make(chan received)
		// Open the renewals' stream before the lease exists: with auth on,
		// opening authenticates first, which can take a good part of a
		// short TTL on a loaded etcd. If it fails, renewing opens another.
		if st, err := openStream(ctx, r.remote, r.recv, cfg.RequestTimeout); err == nil {
			r.good = st
		} else {
			lg.Debug("open lease renewal stream", zap.Error(err))
		}
	}

	gctx, cancel := context.WithTimeout(ctx, cfg.RequestTimeout)
	defer cancel()
	// A grant whose answer was lost leaves a lease nobody renews; it
	// expires after one TTL.
	resp, err := retry.Do(gctx, retry.Policy{Timeout: cfg.RequestTimeout / 2, MinBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond},
		func(actx context.Context) (*clientv3.LeaseGrantResponse, error) {
			r.granted = time.Now()
			return cli.Grant(actx, ttl)
		})
	if err != nil {
		r.good.close()
		return nil, fmt.Errorf("grant lease: %w", err)
	}
	r.ttl = time.Duration(resp.TTL) * time.Second // etcd may raise it to its minimum

	if r.remote == nil {
		// A client with no connection of its own (clientv3.NewCtxClient)
		// renews through its own lease service.
		return concurrency.NewSession(cli, concurrency.WithLease(resp.ID), concurrency.WithContext(ctx))
	}
	// The view lives as long as the renewal: concurrency's election uses
	// its context for clean-up requests.
	vctx, stop := context.WithCancel(ctx)
	r.stop = stop
	view := clientv3.NewCtxClient(vctx, clientv3.WithZapLogger(cli.GetLogger()))
	view.KV, view.Watcher, view.Lease = cli.KV, sharedWatcher{cli.Watcher}, r
	// The session's own context is ctx, not the view's: Session.Close
	// revokes with it after the renewal, and so the view, has ended.
	s, err := concurrency.NewSession(view, concurrency.WithLease(resp.ID), concurrency.WithContext(ctx))
	if err != nil {
		stop()
		r.good.close()
		return nil, err
	}
	return s, nil
}

// sharedWatcher is the caller's watch service, which closing the view must
// not close.
type sharedWatcher struct{ clientv3.Watcher }

func (sharedWatcher) Close() error { return nil }

// attemptTimeout is how long a renewal may go unanswered before it is sent
// again on another stream: a tenth of the TTL, within [100ms, 1s]. The
// late one is kept, so a short wait costs a request, not the stream, and
// after a renewal every third of the TTL, the two thirds left hold several
// attempts on every member of the cluster.
func attemptTimeout(ttl time.Duration) time.Duration {
	return min(max(ttl/10, 100*time.Millisecond), time.Second)
}

// Revoke revokes lease so that whoever waits for it to go (a standby, the
// next term of the same process) need not wait for it to expire. It gives
// up after timeout: a lease etcd cannot be reached to revoke expires by
// itself. Its attempts are hedged like every other request, so one caught
// on a member that does not answer costs a quarter of timeout. A lease
// already gone (an attempt whose answer was lost revoked it) counts as
// revoked.
func Revoke(cli *clientv3.Client, lease clientv3.LeaseID, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	p := retry.Policy{Timeout: timeout, HedgeAfter: retry.HedgeAfter(timeout), MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}
	_, err := retry.Do(ctx, p, func(ctx context.Context) (*clientv3.LeaseRevokeResponse, error) {
		return cli.Revoke(ctx, lease)
	})
	if errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return nil
	}
	return err
}

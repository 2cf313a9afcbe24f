package session

import (
	"context"
	"errors"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// renewer is the session's lease service: the caller's for everything but
// keep-alives, which it sends on a stream of its own, one at a time, and
// gives that stream up when an answer is late.
type renewer struct {
	clientv3.Lease
	remote  pb.LeaseClient // through the caller's connection and interceptors
	log     *zap.Logger
	ttl     time.Duration // as granted
	attempt time.Duration
	granted time.Time          // when the grant that succeeded was sent
	stop    context.CancelFunc // ends the view's context
}

// errExpired says that no renewal succeeded before the lease's TTL ran out.
var errExpired = errors.New("no renewal succeeded within the lease's TTL")

// KeepAlive renews the lease until ctx ends or it is lost, and closes the
// returned channel then. concurrency.NewSession calls it once.
func (r *renewer) KeepAlive(ctx context.Context, id clientv3.LeaseID) (<-chan *clientv3.LeaseKeepAliveResponse, error) {
	ch := make(chan *clientv3.LeaseKeepAliveResponse, 1)
	go r.renew(ctx, id, ch)
	return ch, nil
}

// Close does nothing: the lease service it wraps is the caller's.
func (r *renewer) Close() error { return nil }

func (r *renewer) renew(ctx context.Context, id clientv3.LeaseID, ch chan<- *clientv3.LeaseKeepAliveResponse) {
	defer r.stop()
	defer close(ch)
	var st *stream
	defer func() { st.close() }()
	// A lower bound on when etcd lets the lease expire: it counts the TTL
	// from when the leader handled the request, which is after it was sent.
	expires := r.granted.Add(r.ttl)
	for {
		resp, sent, err := r.renewOnce(ctx, &st, id, expires, expires.Add(r.ttl))
		if err != nil {
			if ctx.Err() == nil {
				r.log.Warn("lease lost", zap.Int64("lease", int64(id)), zap.Error(err))
			}
			return
		}
		ttl := time.Duration(resp.TTL) * time.Second
		expires = sent.Add(ttl)
		select {
		case ch <- resp:
		default: // the session only counts on the channel staying open
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(ttl / 3):
		}
	}
}

// renewOnce sends renewals until one is answered, etcd says the lease is
// gone, or expires passes. It returns the answer and when it was sent. A
// renewal not answered within the attempt timeout, or a stream that
// fails, costs the stream: the next one is opened on the member the
// client's balancer picks next. Answers that there is no leader move
// expires on, up to limit: one member cut off from the rest also answers
// so, while the others may still count the lease down.
func (r *renewer) renewOnce(ctx context.Context, st **stream, id clientv3.LeaseID, expires, limit time.Time) (*clientv3.LeaseKeepAliveResponse, time.Time, error) {
	for {
		left := time.Until(expires)
		if left <= 0 {
			return nil, time.Time{}, errExpired
		}
		if *st == nil {
			s, err := openStream(ctx, r.remote, min(r.attempt, left))
			if err != nil {
				if ctx.Err() != nil {
					return nil, time.Time{}, ctx.Err()
				}
				r.failed(ctx, id, err, left)
				continue
			}
			*st = s
		}
		sent := time.Now()
		resp, err := (*st).renew(ctx, id, min(r.attempt, left))
		switch {
		case err == nil && resp.TTL <= 0:
			return nil, time.Time{}, rpctypes.ErrLeaseNotFound
		case err == nil:
			return &clientv3.LeaseKeepAliveResponse{ResponseHeader: resp.Header, ID: id, TTL: resp.TTL}, sent, nil
		case ctx.Err() != nil:
			return nil, time.Time{}, ctx.Err()
		case errors.Is(rpctypes.Error(err), rpctypes.ErrNoLeader):
			// While members answer that they have no leader, nobody can
			// let the lease expire, and a new leader restarts every
			// lease's countdown when it takes over: an election longer
			// than what was left of the TTL does not cost the lease.
			expires = later(expires, earlier(limit, time.Now().Add(r.attempt)))
		}
		(*st).close()
		*st = nil
		r.failed(ctx, id, err, time.Until(expires))
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// failed logs a failed attempt and pauses briefly, so that a cluster in
// which every member fails at once (an election) is not flooded.
func (r *renewer) failed(ctx context.Context, id clientv3.LeaseID, err error, left time.Duration) {
	r.log.Debug("lease renewal failed, trying another member", zap.Int64("lease", int64(id)), zap.Error(err))
	select {
	case <-ctx.Done():
	case <-time.After(min(50*time.Millisecond, left)):
	}
}

// stream is one keep-alive stream and the goroutine reading it.
type stream struct {
	s      pb.Lease_LeaseKeepAliveClient
	cancel context.CancelFunc
	recv   chan received
	done   chan struct{}
}

type received struct {
	resp *pb.LeaseKeepAliveResponse
	err  error
}

// openStream opens a stream that requires a leader: a member that knows
// it has none refuses it at once. Opening is bounded by timeout: with auth
// on, the etcd client authenticates first, a request that a cut member
// holds like any other.
func openStream(ctx context.Context, remote pb.LeaseClient, timeout time.Duration) (*stream, error) {
	sctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	bound := time.AfterFunc(timeout, cancel)
	s, err := remote.LeaseKeepAlive(sctx)
	if !bound.Stop() && err == nil {
		err = context.DeadlineExceeded // cancelled as it opened
	}
	if err != nil {
		cancel()
		return nil, clientv3.ContextError(ctx, err)
	}
	st := &stream{s: s, cancel: cancel, recv: make(chan received), done: make(chan struct{})}
	go st.read(sctx)
	return st, nil
}

func (st *stream) read(ctx context.Context) {
	defer close(st.done)
	for {
		resp, err := st.s.Recv()
		select {
		case st.recv <- received{resp, err}:
		case <-ctx.Done():
			return
		}
		if err != nil {
			return
		}
	}
}

// renew sends one renewal and waits up to timeout for its answer.
func (st *stream) renew(ctx context.Context, id clientv3.LeaseID, timeout time.Duration) (*pb.LeaseKeepAliveResponse, error) {
	if err := st.s.Send(&pb.LeaseKeepAliveRequest{ID: int64(id)}); err != nil {
		return nil, err
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case got := <-st.recv:
		return got.resp, got.err
	case <-timer.C:
		return nil, context.DeadlineExceeded
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// close ends the stream and waits for its reader. A nil stream is closed.
func (st *stream) close() {
	if st == nil {
		return
	}
	st.cancel()
	<-st.done
}

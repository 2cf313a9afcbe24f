package session

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// maxStreams bounds the renewals of one round in flight at once; the
// oldest is closed to make room for another. The attempt timeout, a tenth
// of the TTL, makes room for about seven in a round before the lease would
// be given up.
const maxStreams = 8

// renewer is the session's lease service: the caller's for everything but
// keep-alives, which it sends on streams of its own.
type renewer struct {
	clientv3.Lease
	remote  pb.LeaseClient // through the caller's connection and interceptors
	log     *zap.Logger
	ttl     time.Duration      // as granted
	attempt time.Duration      // before a late renewal is sent again on a new stream
	granted time.Time          // when the grant that succeeded was sent
	stop    context.CancelFunc // ends the view's context

	// Owned by renew's goroutine.
	good *stream       // the stream that answered last, with nothing in flight
	recv chan received // every stream's answers
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
	defer func() { r.good.close() }()
	// A lower bound on when etcd lets the lease expire: it counts the TTL
	// from when the leader handled the request, which is after it was sent.
	expires := r.granted.Add(r.ttl)
	for {
		resp, sent, err := r.round(ctx, id, expires, expires.Add(r.ttl))
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
		// The next round starts a third of the TTL after this renewal was
		// sent, not after its answer came: an answer that took more than
		// two thirds of the TTL (an etcd election) would otherwise start
		// the next round past expires, and give up a lease just renewed.
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(sent.Add(ttl / 3))):
		}
	}
}

// round renews the lease once: it sends the renewal on the stream that
// answered last, and each time no answer has come for the attempt
// timeout, sends it again on a new stream, which the client's balancer
// places on the next member, keeping the earlier ones (up to maxStreams)
// in case they are only slow. It ends at the first answer, when etcd says
// the lease is gone, or when expires passes, and closes every stream but
// the one that answered. It returns the answer and when it was sent.
//
// Answers that there is no leader move expires on, up to limit: without a
// leader nothing expires a lease, and a new leader restarts every lease's
// countdown when it takes over. The limit is there because a member cut
// off from the rest answers so too, while the others may count down.
func (r *renewer) round(ctx context.Context, id clientv3.LeaseID, expires, limit time.Time) (*clientv3.LeaseKeepAliveResponse, time.Time, error) {
	sent := map[*stream]time.Time{} // streams with this round's renewal in flight
	defer func() {
		for st := range sent {
			st.close()
		}
	}()
	next := time.Now() // when to send on another stream
	for {
		now := time.Now()
		if !now.Before(expires) {
			return nil, time.Time{}, errExpired
		}
		if !now.Before(next) && r.opening(sent, now) {
			// With auth on, every stream authenticates as it opens, which
			// takes a while on a loaded etcd and would take longer still
			// with more opening at once: wait for the one opening.
			next = now.Add(r.attempt)
		} else if !now.Before(next) {
			if len(sent) == maxStreams {
				oldest := oldestOf(sent)
				delete(sent, oldest)
				oldest.close()
			}
			next = now.Add(r.attempt)
			st, err := r.send(ctx, id)
			if err != nil {
				if ctx.Err() != nil {
					return nil, time.Time{}, ctx.Err()
				}
				r.log.Debug("lease renewal not sent", zap.Int64("lease", int64(id)), zap.Error(err))
				next = now.Add(min(50*time.Millisecond, r.attempt)) // not a flood when every member fails at once
			} else {
				sent[st] = now
			}
		}
		wait := time.NewTimer(time.Until(earlier(expires, next)))
		select {
		case <-ctx.Done():
			wait.Stop()
			return nil, time.Time{}, ctx.Err()
		case <-wait.C:
			if len(sent) > 0 {
				r.log.Debug("lease renewal late, sending it on another stream", zap.Int64("lease", int64(id)), zap.Int("in_flight", len(sent)))
			}
		case got := <-r.recv:
			wait.Stop()
			at, ours := sent[got.st]
			if !ours {
				continue // from a stream closed since
			}
			delete(sent, got.st)
			switch {
			case got.err != nil:
				got.st.close()
				r.log.Debug("lease renewal failed", zap.Int64("lease", int64(id)), zap.Error(got.err))
				if errors.Is(rpctypes.Error(got.err), rpctypes.ErrNoLeader) {
					expires = later(expires, earlier(limit, time.Now().Add(r.attempt)))
				}
				next = earlier(next, time.Now().Add(min(50*time.Millisecond, r.attempt)))
			case got.resp.TTL <= 0:
				got.st.close()
				return nil, time.Time{}, rpctypes.ErrLeaseNotFound
			default:
				r.good = got.st
				return &clientv3.LeaseKeepAliveResponse{ResponseHeader: got.resp.Header, ID: id, TTL: got.resp.TTL}, at, nil
			}
		}
	}
}

// send sends the renewal on the stream that answered last, or else starts
// a new stream that opens and sends it in the background: opening waits,
// with auth on, for an authentication that a cut member holds like any
// other request, and the round must not wait with it.
func (r *renewer) send(ctx context.Context, id clientv3.LeaseID) (*stream, error) {
	st := r.good
	r.good = nil
	if st == nil {
		return startStream(ctx, r.remote, r.recv, id), nil
	}
	if err := st.s.Send(&pb.LeaseKeepAliveRequest{ID: int64(id)}); err != nil {
		st.close()
		return nil, err
	}
	return st, nil
}

// opening reports whether a stream of sent is still opening, for less than
// a third of the TTL (one that takes longer may be held by a cut member).
func (r *renewer) opening(sent map[*stream]time.Time, now time.Time) bool {
	for st, at := range sent {
		if !st.opened.Load() && now.Sub(at) < r.ttl/3 {
			return true
		}
	}
	return false
}

// oldestOf returns the stream of sent that was sent on first.
func oldestOf(sent map[*stream]time.Time) *stream {
	var oldest *stream
	for st, at := range sent {
		if oldest == nil || at.Before(sent[oldest]) {
			oldest = st
		}
	}
	return oldest
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

// stream is one keep-alive stream and the goroutine that opens and reads
// it.
type stream struct {
	s      pb.Lease_LeaseKeepAliveClient // set before its first answer is passed on
	opened atomic.Bool                   // open, and the renewal sent on it
	cancel context.CancelFunc
	done   chan struct{}
}

type received struct {
	st   *stream
	resp *pb.LeaseKeepAliveResponse
	err  error
}

// Streams require a leader: a member that knows it has none refuses them
// at once.

// openStream opens a stream and passes its answers to recv, until it fails
// or is closed. Opening is bounded by timeout.
func openStream(ctx context.Context, remote pb.LeaseClient, recv chan<- received, timeout time.Duration) (*stream, error) {
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
	st := &stream{s: s, cancel: cancel, done: make(chan struct{})}
	st.opened.Store(true)
	go func() {
		defer close(st.done)
		st.read(sctx, recv)
	}()
	return st, nil
}

// startStream opens a stream in the background, sends the renewal of id
// on it, and passes its answers to recv, until it fails or is closed.
func startStream(ctx context.Context, remote pb.LeaseClient, recv chan<- received, id clientv3.LeaseID) *stream {
	sctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	st := &stream{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(st.done)
		s, err := remote.LeaseKeepAlive(sctx)
		if err == nil {
			err = s.Send(&pb.LeaseKeepAliveRequest{ID: int64(id)})
		}
		if err != nil {
			st.pass(sctx, recv, received{st: st, err: clientv3.ContextError(sctx, err)})
			return
		}
		st.s = s
		st.opened.Store(true)
		st.read(sctx, recv)
	}()
	return st
}

func (st *stream) read(ctx context.Context, recv chan<- received) {
	for {
		resp, err := st.s.Recv()
		if !st.pass(ctx, recv, received{st, resp, err}) {
			return
		}
	}
}

// pass hands got to recv; false when the stream is done.
func (st *stream) pass(ctx context.Context, recv chan<- received, got received) bool {
	select {
	case recv <- got:
		return got.err == nil
	case <-ctx.Done():
		return false
	}
}

// close ends the stream and waits for its goroutine. A nil stream is
// closed.
func (st *stream) close() {
	if st == nil {
		return
	}
	st.cancel()
	<-st.done
}

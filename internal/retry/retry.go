package retry

import (
	"context"
	"errors"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Policy says how to retry.
type Policy struct {
	Timeout    time.Duration // bound on each attempt
	MinBackoff time.Duration // first pause
	MaxBackoff time.Duration // longest pause
	// HedgeAfter, if positive and below Timeout, sends a second copy of an
	// attempt still unanswered after it, alongside the first; the first
	// success wins. The client's balancer sends each request to the next
	// member, so the copy leaves a member that holds requests (frozen, or
	// waiting for a leader that died) without waiting out the Timeout.
	// Only for requests that are harmless to run twice (every request
	// here is), and whose f may run twice at once.
	HedgeAfter time.Duration
	OnError    func(err error) // called after each failed attempt; may be nil
	// RetryNoSpace repeats requests that etcd refuses because its space
	// quota is full (the NOSPACE alarm), until ctx ends. Without it such a
	// request fails at once: it cannot succeed before an operator frees
	// space and disarms the alarm.
	RetryNoSpace bool
}

// Do runs f until it succeeds, ctx ends, or its error is one a repeat
// cannot fix. It returns the last result and error.
//
// Each attempt requires a leader: an etcd member that has lost its peers
// refuses it at once instead of holding it until the attempt times out,
// and the next attempt goes to another member.
func Do[T any](ctx context.Context, p Policy, f func(context.Context) (T, error)) (T, error) {
	backoff := p.MinBackoff
	ctx = clientv3.WithRequireLeader(ctx)
	for {
		v, err := attempt(ctx, p, f)
		if err == nil {
			return v, nil
		}
		if p.OnError != nil {
			p.OnError(err)
		}
		if ctx.Err() != nil || !Transient(err) || (NoSpace(err) && !p.RetryNoSpace) {
			return v, err
		}
		select {
		case <-ctx.Done():
			return v, err
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, p.MaxBackoff)
	}
}

// HedgeAfter is the hedging delay Concord's policies use for attempts
// bounded by timeout: a quarter of it. A healthy etcd answers in
// milliseconds, so a copy goes out only when a member holds the request.
func HedgeAfter(timeout time.Duration) time.Duration { return timeout / 4 }

// attempt runs f once within p.Timeout, and a second copy alongside it if
// p.HedgeAfter passes first. It returns the first success, or the last
// error once every copy has failed; a copy still running when it returns
// is cancelled and waited for.
//
// The first copy runs in the caller's goroutine: almost every attempt is
// answered long before p.HedgeAfter, and a goroutine for it would cost
// its start, the growth of its stack through gRPC's call, and a handoff
// of the answer, on every request of the commit path.
func attempt[T any](ctx context.Context, p Policy, f func(context.Context) (T, error)) (T, error) {
	actx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	if p.HedgeAfter <= 0 || p.HedgeAfter >= p.Timeout {
		return f(actx)
	}
	type result struct {
		v   T
		err error
	}
	first, cancelFirst := context.WithCancel(actx)
	defer cancelFirst()
	copied := make(chan result, 1)
	hedge := time.AfterFunc(p.HedgeAfter, func() {
		v, err := f(actx)
		if err == nil {
			cancelFirst() // the first copy's answer is not needed any more
		}
		copied <- result{v, err}
	})
	v, err := f(first)
	if hedge.Stop() {
		return v, err // no copy went out
	}
	if err == nil {
		cancel() // the copy's answer is not needed
		<-copied
		return v, nil
	}
	r := <-copied
	return r.v, r.err
}

// NoSpace reports whether err is etcd refusing a write because its
// backend reached its space quota: the NOSPACE alarm is raised, and every
// write that adds data fails until an operator compacts, defragments and
// disarms it (deletions and reads still work).
func NoSpace(err error) bool {
	return errors.Is(err, rpctypes.ErrGRPCNoSpace) || errors.Is(err, rpctypes.ErrNoSpace) ||
		err != nil && strings.Contains(err.Error(), rpctypes.ErrNoSpace.Error())
}

// TooManyOps reports whether err is etcd refusing a Txn for holding more
// operations than its --max-txn-ops.
func TooManyOps(err error) bool {
	return err != nil && strings.Contains(err.Error(), "too many operations")
}

// TooLarge reports whether err is a request refused for its size: by etcd
// (over --max-request-bytes), or by gRPC on either side before etcd sees
// it (etcd's server takes --max-request-bytes plus 512 KiB).
func TooLarge(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "request is too large") || strings.Contains(err.Error(), "message larger than max"))
}

// Transient reports whether a failed etcd request may succeed if repeated:
// timeouts, lost connections and leader changes may; malformed requests and
// refused permissions may not.
func Transient(err error) bool {
	if errors.Is(err, context.Canceled) || TooManyOps(err) || TooLarge(err) {
		return false
	}
	s := err.Error()
	for _, permanent := range []string{
		"duplicate key",
		"permission denied", "authentication failed", "user name is empty",
		"invalid auth token", "key is not provided", "requested lease not found",
		// A read at a revision etcd no longer has, or does not have yet,
		// will not find it by asking again.
		"required revision has been compacted", "required revision is a future revision",
	} {
		if strings.Contains(s, permanent) {
			return false
		}
	}
	return true
}

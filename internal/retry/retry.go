// Package retry repeats idempotent etcd requests. Both the coordinator and
// the participant use it: a request that timed out has an unknown outcome,
// and every request that comes through here is harmless to repeat, so the
// answer to "did it apply?" is to run it again and read what its compares
// say.
package retry

import (
	"context"
	"errors"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Policy says how to retry.
type Policy struct {
	Timeout    time.Duration   // bound on each attempt
	MinBackoff time.Duration   // first pause
	MaxBackoff time.Duration   // longest pause
	OnError    func(err error) // called after each failed attempt; may be nil
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
		actx, cancel := context.WithTimeout(ctx, p.Timeout)
		v, err := f(actx)
		cancel()
		if err == nil {
			return v, nil
		}
		if p.OnError != nil {
			p.OnError(err)
		}
		if ctx.Err() != nil || !Transient(err) {
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

// Transient reports whether a failed etcd request may succeed if repeated:
// timeouts, lost connections and leader changes may; malformed requests and
// refused permissions may not.
func Transient(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	s := err.Error()
	for _, permanent := range []string{
		"too many operations", "request is too large", "duplicate key",
		"permission denied", "authentication failed", "user name is empty",
		"invalid auth token", "key is not provided",
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

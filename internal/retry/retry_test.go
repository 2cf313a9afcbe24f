package retry

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Refusals for size are told apart by kind, whichever side refused.
func TestRefusedForSize(t *testing.T) {
	for _, c := range []struct {
		err             error
		tooMany, tooBig bool
	}{
		{rpctypes.ErrTooManyOps, true, false},
		{rpctypes.ErrGRPCTooManyOps, true, false},
		{rpctypes.ErrRequestTooLarge, false, true},
		{status.Error(codes.ResourceExhausted, "grpc: received message larger than max (700000 vs. 589824)"), false, true},
		{rpctypes.ErrTooManyRequests, false, false},
		{rpctypes.ErrNoSpace, false, false},
		{nil, false, false},
	} {
		if TooManyOps(c.err) != c.tooMany || TooLarge(c.err) != c.tooBig {
			t.Errorf("%v: TooManyOps %v, TooLarge %v; want %v, %v", c.err, TooManyOps(c.err), TooLarge(c.err), c.tooMany, c.tooBig)
		}
	}
}

func TestTransient(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{context.DeadlineExceeded, true},
		{rpctypes.ErrNoLeader, true},
		{rpctypes.ErrTimeout, true},
		{rpctypes.ErrNoSpace, true}, // until an operator frees space; see RetryNoSpace
		{context.Canceled, false},
		{rpctypes.ErrCompacted, false},
		{rpctypes.ErrFutureRev, false},
		{rpctypes.ErrTooManyOps, false},
		{rpctypes.ErrPermissionDenied, false},
		{rpctypes.ErrLeaseNotFound, false},
		{rpctypes.ErrRequestTooLarge, false},
		{status.Error(codes.ResourceExhausted, "grpc: received message larger than max (700000 vs. 589824)"), false},
		{status.Error(codes.ResourceExhausted, "grpc: trying to send message larger than max (3000000 vs. 2097152)"), false},
		{rpctypes.ErrTooManyRequests, true}, // etcd's own back-pressure
	} {
		if got := Transient(c.err); got != c.want {
			t.Errorf("Transient(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// TestDoRetriesThenGivesUp: transient errors are retried, a permanent one
// ends the retries with it, and every attempt requires a leader.
func TestDoRetriesThenGivesUp(t *testing.T) {
	var attempts int
	var failed []error
	p := Policy{Timeout: time.Second, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond,
		OnError: func(err error) { failed = append(failed, err) }}
	_, err := Do(t.Context(), p, func(ctx context.Context) (int, error) {
		attempts++
		if md, _ := metadata.FromOutgoingContext(ctx); len(md[rpctypes.MetadataRequireLeaderKey]) == 0 {
			t.Errorf("attempt %d does not require a leader", attempts)
		}
		if attempts < 3 {
			return 0, rpctypes.ErrNoLeader
		}
		return 0, rpctypes.ErrCompacted
	})
	if !errors.Is(err, rpctypes.ErrCompacted) || attempts != 3 || len(failed) != 3 {
		t.Fatalf("err %v after %d attempts (%d reported), want ErrCompacted after 3", err, attempts, len(failed))
	}
}

// TestHedgeLeavesHeldAttempt: an attempt held past HedgeAfter gets a copy
// alongside it. Whichever of the two answers, the first copy or the
// hedged one, its answer is returned well before the Timeout, and the
// held one has been cancelled and has returned by then.
func TestHedgeLeavesHeldAttempt(t *testing.T) {
	for _, held := range []int32{1, 2} {
		var calls atomic.Int32
		heldStarted, heldDone := make(chan struct{}), make(chan struct{})
		p := Policy{Timeout: 10 * time.Second, HedgeAfter: 50 * time.Millisecond, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond}
		start := time.Now()
		v, err := Do(t.Context(), p, func(ctx context.Context) (int32, error) {
			n := calls.Add(1)
			if n == held {
				close(heldStarted)
				<-ctx.Done() // a member that never answers
				close(heldDone)
				return 0, ctx.Err()
			}
			<-heldStarted // the first copy answers only once the copy is out
			return n, nil
		})
		if want := 3 - held; err != nil || v != want {
			t.Fatalf("copy %d held: Do = %d, %v; want the other copy's %d", held, v, err, want)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("copy %d held: Do took %v: the copy did not go out after HedgeAfter", held, d)
		}
		select {
		case <-heldDone:
		default:
			t.Fatalf("copy %d held: Do returned while it was still running", held)
		}
		if n := calls.Load(); n != 2 {
			t.Fatalf("copy %d held: %d calls, want 2", held, n)
		}
	}
}

// TestNoHedgeForPromptAnswer: an attempt answered before HedgeAfter is not
// sent twice, and a failed one is retried as without hedging.
func TestNoHedgeForPromptAnswer(t *testing.T) {
	var calls atomic.Int32
	p := Policy{Timeout: 10 * time.Second, HedgeAfter: time.Second, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond}
	v, err := Do(t.Context(), p, func(ctx context.Context) (int, error) {
		if calls.Add(1) == 1 {
			return 0, rpctypes.ErrNoLeader
		}
		return 7, nil
	})
	if err != nil || v != 7 || calls.Load() != 2 {
		t.Fatalf("Do = %d, %v after %d calls; want 7 after 2 (one failure, one retry)", v, err, calls.Load())
	}
}

// TestNoSpacePolicy: a write refused because etcd's space quota is full
// fails at once by default, and is repeated until it succeeds under
// RetryNoSpace. NoSpace knows the error in each form the client returns.
func TestNoSpacePolicy(t *testing.T) {
	for _, err := range []error{rpctypes.ErrGRPCNoSpace, rpctypes.ErrNoSpace, fmt.Errorf("txn: %s", rpctypes.ErrNoSpace.Error())} {
		if !NoSpace(err) {
			t.Errorf("NoSpace(%v) = false, want true", err)
		}
	}
	if NoSpace(nil) || NoSpace(rpctypes.ErrNoLeader) {
		t.Error("NoSpace true for nil or another error")
	}
	for _, retrying := range []bool{false, true} {
		var calls int
		p := Policy{Timeout: time.Second, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond, RetryNoSpace: retrying}
		v, err := Do(t.Context(), p, func(context.Context) (int, error) {
			if calls++; calls < 3 {
				return 0, rpctypes.ErrNoSpace
			}
			return 7, nil
		})
		switch {
		case !retrying && (!errors.Is(err, rpctypes.ErrNoSpace) || calls != 1):
			t.Errorf("without RetryNoSpace: %d, %v after %d calls; want ErrNoSpace after 1", v, err, calls)
		case retrying && (err != nil || v != 7 || calls != 3):
			t.Errorf("with RetryNoSpace: %d, %v after %d calls; want 7 after 3", v, err, calls)
		}
	}
}

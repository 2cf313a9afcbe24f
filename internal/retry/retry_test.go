package retry

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/metadata"
)

func TestTransient(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{context.DeadlineExceeded, true},
		{rpctypes.ErrNoLeader, true},
		{rpctypes.ErrTimeout, true},
		{context.Canceled, false},
		{rpctypes.ErrCompacted, false},
		{rpctypes.ErrFutureRev, false},
		{rpctypes.ErrTooManyOps, false},
		{rpctypes.ErrPermissionDenied, false},
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

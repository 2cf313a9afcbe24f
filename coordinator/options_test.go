package coordinator

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/concord-tx/concord/protocol"
)

// Options out of range are refused by both constructors, before anything
// starts, with an error naming the option.
func TestInvalidOptions(t *testing.T) {
	tooWide := protocol.DefaultLimits()
	tooWide.MaxBranches = protocol.DefaultMaxBranches + 1
	noTimeouts := protocol.DefaultLimits()
	noTimeouts.MinTimeout = 0
	for _, tt := range []struct {
		opt  Option
		want string
	}{
		{WithPrefix("tx"), "invalid key prefix"},
		{WithLimits(tooWide), "MaxBranches 101, expected 1 to 100"},
		{WithLimits(noTimeouts), "MinTimeout 0s"},
		{WithDefaultTimeout(time.Millisecond), "default timeout"},
		{WithLeaseTTL(500 * time.Millisecond), "lease TTL 500ms, expected at least 1s"},
		{WithRetention(0), "retention 0s, expected a positive duration"},
		{WithRequestTimeout(-time.Second), "request timeout -1s, expected a positive duration"},
	} {
		// Neither constructor gets far enough to use the etcd client.
		_, cerr := NewClient(context.Background(), nil, tt.opt)
		_, rerr := NewReplica(nil, tt.opt)
		for _, err := range []error{cerr, rerr} {
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want ErrInvalidConfig saying %q", err, tt.want)
			}
		}
	}
}

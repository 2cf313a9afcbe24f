package coordinator

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/concord-tx/concord/protocol"
)

// Options out of range are refused, before anything starts, with an error
// naming the option, by the constructor that uses them; an option only one
// of them uses is not of the other's type, so it cannot be passed to it.
func TestInvalidOptions(t *testing.T) {
	tooWide := protocol.DefaultLimits()
	tooWide.MaxBranches = protocol.DefaultMaxBranches + 1
	noTimeouts := protocol.DefaultLimits()
	noTimeouts.MinTimeout = 0
	const client, replica, both = 1, 2, 3
	for _, tt := range []struct {
		opt  any
		by   int
		want string
	}{
		{WithPrefix("tx"), both, "invalid key prefix"},
		{WithRequestTimeout(-time.Second), both, "request timeout -1s, expected a positive duration (WithRequestTimeout)"},
		{WithLimits(tooWide), client, "MaxBranches 101, expected 1 to 100"},
		{WithLimits(noTimeouts), client, "MinTimeout 0s"},
		{WithDefaultTimeout(time.Millisecond), client, "default timeout"},
		{WithLeaseTTL(500 * time.Millisecond), replica, "lease TTL 500ms, expected at least 1s (WithLeaseTTL)"},
		{WithRetention(-time.Hour), replica, "retention -1h0m0s, expected a positive duration (WithRetention)"},
	} {
		errs := map[int]error{}
		co, isClient := tt.opt.(ClientOption)
		if isClient {
			_, errs[client] = newClientOptions([]ClientOption{co})
		}
		ro, isReplica := tt.opt.(ReplicaOption)
		if isReplica {
			_, errs[replica] = newReplicaOptions([]ReplicaOption{ro})
		}
		if isClient != (tt.by&client != 0) || isReplica != (tt.by&replica != 0) {
			t.Errorf("option for %q: client option %v, replica option %v; want %v, %v", tt.want, isClient, isReplica, tt.by&client != 0, tt.by&replica != 0)
		}
		for part, err := range errs {
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("part %d: got %v, want refused saying %q", part, err, tt.want)
			}
		}
	}
	// The constructors check before they use the etcd client.
	if _, err := NewClient(context.Background(), nil, WithRequestTimeout(0)); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("NewClient: %v", err)
	}
	if _, err := NewReplica(nil, WithLeaseTTL(0)); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("NewReplica: %v", err)
	}
	// Limits whose timeouts exclude the default 30s keep the default
	// within them.
	short := protocol.DefaultLimits()
	short.MaxTimeout = 10 * time.Second
	if o, err := newClientOptions([]ClientOption{WithLimits(short)}); err != nil || o.timeout != 10*time.Second {
		t.Errorf("limits up to 10s: default timeout %v, %v; want 10s", o.timeout, err)
	}
}

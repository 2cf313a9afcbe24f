package coordinator

import (
	"fmt"
	"testing"
	"time"

	"github.com/concord-tx/concord/internal/testkit/etcdtest"
	"github.com/concord-tx/concord/internal/testkit/poll"
	"github.com/concord-tx/concord/protocol"
	"go.uber.org/zap/zaptest"
)

// A replica given WithClient follows the Client's watch (one subscription,
// no watch of its own) and acts on what it sees there; with the Client's
// storage limits off, that watch leaves out what the replica needs, and the
// replica keeps a watch of its own.
func TestReplicaFollowsClient(t *testing.T) {
	srv := etcdtest.Start(t)
	for _, tt := range []struct {
		name    string
		storage StorageLimits
		follows bool
	}{
		{"limits on", StorageLimits{}, true},
		{"limits off", StorageLimits{MaxPendingMessages: -1, MaxPendingBytes: -1, MaxUndecided: -1}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cli := srv.Client(t)
			prefix := WithPrefix("/" + map[bool]string{true: "on", false: "off"}[tt.follows])
			c, err := NewClient(t.Context(), cli, prefix, WithStorageLimits(tt.storage))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			r, err := NewReplica(cli, prefix, WithClient(c), WithLeaseTTL(2*time.Second), WithLogger(zaptest.NewLogger(t)))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.Close() })
			poll.Until(t, 10*time.Second, "the replica leads", func() (bool, string) { return r.IsLeader(), "" })
			subscriptions := func() int {
				c.hub.mu.Lock()
				defer c.hub.mu.Unlock()
				return len(c.hub.mu.subs)
			}
			want := map[bool]int{true: 1, false: 0}[tt.follows]
			poll.Until(t, 10*time.Second, "the view follows as expected", func() (bool, string) {
				n := subscriptions()
				return n == want, fmt.Sprintf("%d subscriptions", n)
			})
			// A participant nobody registered: the leader aborts at once,
			// from what its view saw of the begin.
			out, err := c.Do(t.Context(), Request{Branches: []protocol.Branch{{Participant: "nobody"}}, Timeout: time.Minute})
			if err != nil || out.Committed() || out.Cause != protocol.CauseParticipantLost {
				t.Fatalf("outcome %+v, %v: want aborted, participant lost", out, err)
			}
			if n := subscriptions(); n != want {
				t.Errorf("%d subscriptions after the transaction, want %d", n, want)
			}
		})
	}
}

package coordinator

import (
	"context"
	"testing"
	"time"

	"github.com/concord-tx/concord/internal/testkit/etcdtest"
	"github.com/concord-tx/concord/internal/testkit/poll"
	"github.com/concord-tx/concord/protocol"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// TestLeadershipPastSilentMember: with a member that never answers among
// the client's endpoints, every request of the election is bounded and
// sent again to the next member, so leadership passes from replica to
// replica within the request timeout, and the leader aborts a
// transaction whose participant does not exist. Before the campaign
// bounded its requests, each handover sent its first request to the
// silent member half the time and waited there for good.
func TestLeadershipPastSilentMember(t *testing.T) {
	srv := etcdtest.Start(t)
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{etcdtest.SilentMember(t), srv.Endpoints[0]},
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	opts := []ReplicaOption{WithLeaseTTL(2 * time.Second), WithRequestTimeout(300 * time.Millisecond), WithLogger(zaptest.NewLogger(t))}
	keys := protocol.DefaultKeys()

	start := func() *Replica {
		r, err := NewReplica(cli, opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		return r
	}
	leading := start()
	for i := range 4 {
		poll.Until(t, 10*time.Second, "a replica leads", func() (bool, string) {
			return leading.IsLeader(), "not leading"
		})
		// The leader's key is in etcd, attached to a lease.
		resp, err := srv.Client(t).Get(t.Context(), keys.Election(), clientv3.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Kvs) != 1 || resp.Kvs[0].Lease == 0 {
			t.Fatalf("handover %d: election keys %v, expected one with a lease", i, resp.Kvs)
		}
		next := start()
		leading.Close()
		leading = next
	}
	poll.Until(t, 10*time.Second, "the last replica leads", func() (bool, string) {
		return leading.IsLeader(), "not leading"
	})

	c, err := NewClient(t.Context(), cli, WithRequestTimeout(300*time.Millisecond), WithLogger(zaptest.NewLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out, err := c.Do(ctx, Request{ID: "ghost-tx", Branches: []protocol.Branch{{Participant: "ghost"}}, Timeout: 15 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if out.State != protocol.StateAborted || out.Cause != protocol.CauseParticipantLost {
		t.Fatalf("outcome %+v, expected aborted because participant ghost is not registered", out)
	}
}

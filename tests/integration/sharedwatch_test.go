package integration

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/concord-tx/concord/coordinator"
	"github.com/concord-tx/concord/internal/testkit/poll"
	"github.com/concord-tx/concord/protocol"
	"go.uber.org/zap/zaptest"
)

// A replica that follows a Client's watch (WithClient) does all of its
// work from it: deadline aborts and retention. When that Client closes,
// the replica goes on with a watch of its own and misses nothing.
func TestReplicaFollowsClientWatch(t *testing.T) {
	e := newEnv(t)
	r, _ := e.replica("replica", coordinator.WithClient(e.c), coordinator.WithRetention(500*time.Millisecond))
	poll.Until(t, 5*time.Second, "replica leads", func() (bool, string) { return r.IsLeader(), "" })
	silent := newRecorder("silent")
	silent.block["*"] = make(chan struct{})
	e.participant("silent", silent, false)
	e.participant("a", newRecorder("a"), false)

	// deadlineAndRetention begins one transaction that commits and one
	// that waits for a vote that never comes, through c; the replica must
	// abort the second at its deadline and delete both after retention.
	deadlineAndRetention := func(c *coordinator.Client) {
		t.Helper()
		out, err := c.Do(e.ctx, coordinator.Request{Branches: branches("a")})
		if err != nil || !out.Committed() {
			t.Fatalf("commit: %+v, %v", out, err)
		}
		stuck, err := c.Do(e.ctx, coordinator.Request{Branches: branches("a", "silent"), Timeout: time.Second})
		if err != nil || stuck.Committed() || stuck.Cause != protocol.CauseDeadline {
			t.Fatalf("outcome %+v, %v: want aborted at the deadline", stuck, err)
		}
		e.terminal(stuck.ID, 10*time.Second)
		poll.Until(t, 10*time.Second, "records deleted after retention", e.onlyRegistrations)
		for _, id := range []string{out.ID, stuck.ID} {
			if _, err := c.Get(e.ctx, id); !errors.Is(err, coordinator.ErrNotFound) {
				t.Errorf("get %s after retention: %v", id, err)
			}
		}
	}
	deadlineAndRetention(e.c)

	// The Client followed closes; another one, not followed, begins.
	if err := e.c.Close(); err != nil {
		t.Fatal(err)
	}
	other, err := coordinator.NewClient(e.ctx, e.client(), coordinator.WithLogger(zaptest.NewLogger(t).Named("other")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	deadlineAndRetention(other)
	if !r.IsLeader() {
		t.Error("the replica stopped leading")
	}
}

// A replica refuses to follow a Client of another prefix.
func TestReplicaFollowsOnlyItsPrefix(t *testing.T) {
	e := newEnv(t)
	_, err := coordinator.NewReplica(e.client(), coordinator.WithPrefix("/other"), coordinator.WithClient(e.c))
	if !errors.Is(err, coordinator.ErrInvalidConfig) {
		t.Fatalf("got %v, want ErrInvalidConfig", err)
	}
	const want = `the Client's prefix "/tx" differs from the replica's "/other" (WithClient, WithPrefix)`
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
}

package session_test

import (
	"testing"
	"time"

	"github.com/concord-tx/concord/internal/session"
	"github.com/concord-tx/concord/internal/testkit/etcdtest"
	"github.com/concord-tx/concord/internal/testkit/leaktest"
	"github.com/concord-tx/concord/internal/testkit/poll"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

// A member cut off from its peers is tested in tests/chaos
// (TestSessionsSurviveCutMember): it needs a cluster of processes.

func start(t *testing.T, ttl time.Duration) (*clientv3.Client, *concurrency.Session) {
	t.Helper()
	cli := etcdtest.Start(t).Client(t)
	s, err := session.New(t.Context(), cli, session.Config{TTL: ttl, RequestTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Orphan)
	return cli, s
}

// remaining returns the seconds left of the lease (-1 once it is gone)
// and the TTL it was granted with.
func remaining(t *testing.T, cli *clientv3.Client, id clientv3.LeaseID) (left, granted int64) {
	t.Helper()
	resp, err := cli.TimeToLive(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return resp.TTL, resp.GrantedTTL
}

// TestRenewsPastTTL: the lease outlives two of its TTLs, and etcd reports
// it renewed all along, not merely not yet expired.
func TestRenewsPastTTL(t *testing.T) {
	cli, s := start(t, 3*time.Second)
	_, granted := remaining(t, cli, s.Lease())
	if granted != 3 {
		t.Fatalf("lease granted with TTL %ds, asked for 3s", granted)
	}
	end := time.Now().Add(2 * time.Duration(granted) * time.Second)
	for time.Now().Before(end) {
		select {
		case <-s.Done():
			t.Fatal("session ended while etcd was healthy")
		case <-time.After(100 * time.Millisecond):
		}
		// Renewed every second, it never has less than one of its three
		// seconds left (TimeToLive rounds down).
		if left, _ := remaining(t, cli, s.Lease()); left < 1 {
			t.Fatalf("lease has %ds of %ds left: not renewed", left, granted)
		}
	}
}

// TestEndsWhenLeaseRevoked: a lease revoked by someone else ends the
// session at its next renewal, not after a TTL of silence.
func TestEndsWhenLeaseRevoked(t *testing.T) {
	cli, s := start(t, 3*time.Second)
	if _, err := cli.Revoke(t.Context(), s.Lease()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Done():
	case <-time.After(3 * time.Second): // one renewal interval is 1s
		t.Fatal("session still open 3s after its lease was revoked")
	}
}

// TestOrphanStopsRenewal: an orphaned session stops renewing at once (the
// package's leak check sees its goroutine gone) and leaves the lease to
// expire.
func TestOrphanStopsRenewal(t *testing.T) {
	cli, s := start(t, 2*time.Second)
	s.Orphan()
	select {
	case <-s.Done():
	default:
		t.Fatal("Orphan returned before the session ended")
	}
	poll.Until(t, 10*time.Second, "lease expired", func() (bool, string) {
		left, _ := remaining(t, cli, s.Lease())
		return left == -1, "TTL left " + time.Duration(left*int64(time.Second)).String()
	})
}

// TestGrantFailsWithinRequestTimeout: with etcd gone, New gives up after
// its request timeout and says so.
func TestGrantFailsWithinRequestTimeout(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	srv.Close()
	start := time.Now()
	_, err := session.New(t.Context(), cli, session.Config{TTL: time.Second, RequestTimeout: time.Second})
	if err == nil {
		t.Fatal("New succeeded with etcd stopped")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("New took %v to fail with a 1s request timeout", d)
	}
	t.Logf("error: %v", err)
}

// TestRevokeOnce: Revoke takes the lease and its keys away at once, and a
// second Revoke of the same lease (as after a lost answer) is no error.
func TestRevokeOnce(t *testing.T) {
	cli, s := start(t, 10*time.Second)
	if _, err := cli.Put(t.Context(), "held", "v", clientv3.WithLease(s.Lease())); err != nil {
		t.Fatal(err)
	}
	s.Orphan()
	for i := range 2 {
		if err := session.Revoke(cli, s.Lease(), time.Second); err != nil {
			t.Fatalf("Revoke %d: %v", i+1, err)
		}
	}
	if left, _ := remaining(t, cli, s.Lease()); left != -1 {
		t.Errorf("lease has %ds left after Revoke", left)
	}
	if resp, err := cli.Get(t.Context(), "held"); err != nil || len(resp.Kvs) != 0 {
		t.Errorf("key attached to the lease after Revoke: %v %v", resp, err)
	}
}

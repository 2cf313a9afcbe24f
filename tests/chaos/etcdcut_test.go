package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/concord-tx/concord/httpapi"
	"github.com/concord-tx/concord/protocol"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestCutFollowerKeepsSessions cuts each etcd follower in turn off from
// its peers while transfers run. The other two members are a healthy
// majority, so nothing may notice more than a short wait: every
// registration and the leading replica's election key keep their leases,
// and every transfer commits.
//
// Before internal/session and internal/watch, a process whose lease
// keep-alive stream sat on the cut member lost its lease (its renewals
// waited there for a leader they could not reach), and a participant whose
// inbox watch sat there saw no new transaction until etcd ended the watch
// seconds later: banks aborted as if they had crashed. With two followers
// cut in turn, some process has its stream on one of them almost always.
func TestCutFollowerKeepsSessions(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sys, err := StartSystem(ctx, bins, Config{
		Dir: t.TempDir(), Seed: 1, Members: 3, Coords: 2,
		Banks: []string{"bank-a", "bank-b"}, Accounts: []string{"alice"}, Opening: 1_000_000,
		LeaseTTL: 2 * time.Second, Prefix: protocol.DefaultPrefix, Retention: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close()

	before := sessionLeases(ctx, t, sys)
	leader, followers, err := sys.Cluster.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("etcd leader %s; leases before the cuts: %v", leader.Name, before)

	n := 0
	for _, m := range followers {
		sys.Cluster.CutPeers(m, CutBoth)
		cutAt := time.Now()
		// Three lease TTLs: long enough for a stuck renewal to cost a
		// lease, and for etcd to end a stuck watch that requires a leader.
		var slowest time.Duration
		for time.Since(cutAt) < 3*sys.Cfg.LeaseTTL {
			n++
			coord := sys.Coords[n%len(sys.Coords)]
			start := time.Now()
			state, reason := transfer(t, coord.URL(), fmt.Sprintf("cut-%03d", n))
			if state != Committed {
				sys.Cluster.HealPeers()
				t.Fatalf("transfer %d through %s, %v into the cut of %s: %s (%s)", n, coord.Name, start.Sub(cutAt).Round(time.Millisecond), m.Name, state, reason)
			}
			slowest = max(slowest, time.Since(start))
		}
		sys.Cluster.HealPeers()
		t.Logf("%s cut for %v: transfers committed, slowest %v", m.Name, time.Since(cutAt).Round(time.Millisecond), slowest.Round(time.Millisecond))
		if err := sys.Cluster.WaitHealthy(ctx); err != nil {
			t.Fatal(err)
		}
	}

	after := sessionLeases(ctx, t, sys)
	for key, lease := range before {
		if after[key] != lease {
			t.Errorf("%s: lease %x before the cuts, %x after: a session was lost while a majority of etcd was healthy", key, lease, after[key])
		}
	}
}

// sessionLeases returns the lease of every bank's registration and of the
// leading replica's election key, by key.
func sessionLeases(ctx context.Context, t *testing.T, sys *System) map[string]int64 {
	t.Helper()
	cli := sys.Cluster.Client()
	leases := map[string]int64{}
	for _, b := range sys.Banks {
		key := sys.Keys.Participant(b.Name)
		resp, err := cli.Get(ctx, key)
		if err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("registration %s: %v (%d keys)", key, err, len(resp.Kvs))
		}
		leases[key] = resp.Kvs[0].Lease
	}
	resp, err := cli.Get(ctx, sys.Keys.Election(), clientv3.WithFirstCreate()...)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("election: %v", err)
	}
	leases[string(resp.Kvs[0].Key)] = resp.Kvs[0].Lease
	return leases
}

// transfer moves 1 from bank-a:alice to bank-b:alice through coord, with
// the traffic generator's call, and returns the decision and its reason.
// Its timeout is long: the test asks whether it commits, not how fast.
func transfer(t *testing.T, coord, id string) (Result, string) {
	t.Helper()
	leg := func(bank string, amount int64) httpapi.BranchRequest {
		p, _ := json.Marshal(map[string]any{"account": "alice", "amount": amount})
		return httpapi.BranchRequest{Participant: bank, Payload: p}
	}
	req := httpapi.BeginRequest{ID: id, Timeout: "20s", Branches: []httpapi.BranchRequest{leg("bank-a", -1), leg("bank-b", 1)}}
	res, reason, errText, _ := (&Traffic{client: readClient}).call(coord, req, time.Now().Add(30*time.Second))
	if res == Unknown {
		t.Fatalf("transfer %s: %s", id, errText)
	}
	return res, reason
}

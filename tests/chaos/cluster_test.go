package chaos

import (
	"context"
	"testing"
	"time"
)

// startTestCluster starts a 3-member etcd for infrastructure tests.
func startTestCluster(t *testing.T) *Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a 3-member etcd cluster; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := StartCluster(ctx, binary(t, "etcd"), t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// TestClusterLeaderKill: the leader's death elects another, and the member
// comes back.
func TestClusterLeaderKill(t *testing.T) {
	c := startTestCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, _, err := c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	nl, _, err := c.Leader(ctx)
	if err != nil || nl == l {
		t.Fatalf("new leader %v, %v", nl, err)
	}
	if err := l.Start(); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	// Raft went through the peer proxies, which named who dialed.
	if s := c.PeerStats(); s.Conns == 0 || s.Unnamed == s.Conns {
		t.Fatalf("peer proxies: %+v", s)
	}
}

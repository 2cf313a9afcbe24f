package chaos

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

func proxiedClient(t *testing.T, p *Proxy) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{p.Addr()}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// TestProxyLosesAppliedResponse shows the outcome-unknown fault: the Txn is
// applied by etcd, and its caller sees an error.
func TestProxyLosesAppliedResponse(t *testing.T) {
	c := startTestCluster(t)
	p, err := NewProxy("test", c.Members[0].ClientAddr, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	cli := proxiedClient(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := cli.Get(ctx, "warm-up"); err != nil {
		t.Fatal(err)
	}
	p.Set(LinkFaults{LoseResponseRate: 1})
	tctx, tcancel := context.WithTimeout(ctx, 3*time.Second)
	_, err = cli.Txn(tctx).If(clientv3.Compare(clientv3.CreateRevision("k"), "=", 0)).Then(clientv3.OpPut("k", "v")).Commit()
	tcancel()
	if err == nil {
		t.Fatal("Txn answered although its response was to be lost")
	}
	t.Logf("caller saw: %v", err)
	resp, err := c.Client().Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 {
		t.Fatalf("the Txn was not applied: %v", resp.Kvs)
	}
	if s := p.Stats(); s.LostResponses == 0 {
		t.Fatalf("no response counted as lost: %+v", s)
	}
	p.Set(LinkFaults{})
	r, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision("k"), "=", 0)).Then(clientv3.OpPut("k", "v2")).Commit()
	if err != nil {
		t.Fatal(err)
	}
	if r.Succeeded {
		t.Fatal("the repeated Txn applied twice")
	}
	if s := p.Stats(); s.UnparsedConns != 0 {
		t.Fatalf("the proxy lost track of the HTTP/2 framing: %+v", s)
	}
}

// TestProxyPartitionHoldsThenDelivers: a partition is silence, and a heal
// delivers what was held.
func TestProxyPartitionHoldsThenDelivers(t *testing.T) {
	c := startTestCluster(t)
	p, err := NewProxy("test", c.Members[1].ClientAddr, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	cli := proxiedClient(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "a", "1"); err != nil {
		t.Fatal(err)
	}
	p.Set(LinkFaults{Partition: true})
	sctx, scancel := context.WithTimeout(ctx, 500*time.Millisecond)
	_, err = cli.Get(sctx, "a")
	scancel()
	if err == nil {
		t.Fatal("read answered through a partition")
	}
	done := make(chan error, 1)
	go func() {
		_, err := cli.Put(ctx, "b", "2")
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("put finished through a partition: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	p.Set(LinkFaults{})
	if err := <-done; err != nil {
		t.Fatalf("put after heal: %v", err)
	}
	p.Set(LinkFaults{Latency: 50 * time.Millisecond})
	start := time.Now()
	if _, err := cli.Get(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Fatalf("round trip %v with 50ms each way", d)
	}
}

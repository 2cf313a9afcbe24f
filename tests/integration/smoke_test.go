package integration

import (
	"context"
	"testing"
	"time"

	"github.com/concord-tx/concord/coordinator"
	"github.com/concord-tx/concord/internal/etcdtest"
	"github.com/concord-tx/concord/participant"
	"github.com/concord-tx/concord/protocol"
)

func TestSmokeCommit(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var names = []string{"a", "b"}
	for _, n := range names {
		p, err := participant.New(cli, n, participant.HandlerFuncs{}, participant.WithLeaseTTL(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		if err := p.WaitActive(ctx); err != nil {
			t.Fatal(err)
		}
	}
	c, err := coordinator.NewClient(ctx, cli)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	out, err := c.Do(ctx, coordinator.Request{Branches: []protocol.Branch{{Participant: "a"}, {Participant: "b"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("outcome %+v in %v", out, time.Since(start))
	if !out.Committed() {
		t.Fatalf("not committed: %+v", out)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		tx, err := c.Get(ctx, out.ID)
		if err != nil {
			t.Fatal(err)
		}
		if tx.State == protocol.StateCommitted {
			t.Logf("%+v", tx)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not terminal: %+v", tx)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

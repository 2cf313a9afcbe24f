package participant

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/concord-tx/concord/coordinator"
	"github.com/concord-tx/concord/internal/testkit/etcdtest"
	"github.com/concord-tx/concord/internal/testkit/poll"
	"github.com/concord-tx/concord/protocol"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// The inbox watch leaves out deletions; an instance forgets a message when
// its own acknowledgement is answered instead. After the transactions
// finish it remembers none of them, and each handler ran once.
func TestInboxForgetsAcknowledged(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var prepares, commits atomic.Int64
	h := HandlerFuncs{
		PrepareFunc: func(context.Context, Tx) error { prepares.Add(1); return nil },
		CommitFunc:  func(context.Context, Tx) error { commits.Add(1); return nil },
	}
	var ps []*Participant
	for _, name := range []string{"a", "b"} {
		p, err := New(cli, name, h, WithAckDelay(time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		if err := p.WaitActive(ctx); err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	c, err := coordinator.NewClient(ctx, cli)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 40
	errs := make(chan error, n)
	for i := range n {
		go func() {
			out, err := c.Do(ctx, coordinator.Request{ID: fmt.Sprintf("t-%d", i), Branches: []protocol.Branch{{Participant: "a"}, {Participant: "b"}}})
			if err == nil && !out.Committed() {
				err = fmt.Errorf("%s: %v", out.ID, out.State)
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	keys := protocol.DefaultKeys()
	poll.Until(t, 10*time.Second, "every record committed, every inbox empty and forgotten", func() (bool, string) {
		inboxes, err := cli.Get(ctx, keys.Inboxes(), clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			return false, err.Error()
		}
		committed := 0
		for i := range n {
			tx, err := c.Get(ctx, fmt.Sprintf("t-%d", i))
			if err == nil && tx.Record.State == protocol.StateCommitted {
				committed++
			}
		}
		a, b := ps[0].remembered(), ps[1].remembered()
		return inboxes.Count == 0 && committed == n && a == 0 && b == 0,
			fmt.Sprintf("%d inbox keys, %d of %d committed, remembered %d and %d", inboxes.Count, committed, n, a, b)
	})
	if p, c := prepares.Load(), commits.Load(); p != 2*n || c != 2*n {
		t.Errorf("%d prepares and %d commits, want %d each: a message handed out again", p, c, 2*n)
	}
}

// remembered is how many messages the inbox served keeps, handed out or
// acknowledged; -1 when none is served.
func (p *Participant) remembered() int {
	p.mu.Lock()
	in := p.mu.inbox
	p.mu.Unlock()
	if in == nil {
		return -1
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.mu.latest) + len(in.mu.acknowledged)
}

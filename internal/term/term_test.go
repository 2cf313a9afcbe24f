package term_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/concord-tx/concord/internal/term"
	"github.com/concord-tx/concord/internal/testkit/etcdtest"
	"github.com/concord-tx/concord/internal/testkit/leaktest"
	"github.com/concord-tx/concord/internal/testkit/poll"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

func config() term.Config {
	return term.Config{TTL: 2 * time.Second, RequestTimeout: 2 * time.Second, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, Lost: "lost"}
}

// leases records the lease of every term, and holds each term until its
// ctx ends.
type leases struct {
	mu   sync.Mutex
	seen []clientv3.LeaseID
}

func (l *leases) work(ctx context.Context, lease clientv3.LeaseID) error {
	l.mu.Lock()
	l.seen = append(l.seen, lease)
	l.mu.Unlock()
	<-ctx.Done()
	return ctx.Err()
}

func (l *leases) all() []clientv3.LeaseID {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]clientv3.LeaseID(nil), l.seen...)
}

func ttl(t *testing.T, cli *clientv3.Client, id clientv3.LeaseID) int64 {
	t.Helper()
	resp, err := cli.TimeToLive(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return resp.TTL
}

// TestNewTermAfterLoss: a lease revoked behind the work's back ends its
// term (its ctx ends) and a new term starts with a new, live lease; when
// the caller stops, Run returns and the last lease is revoked.
func TestNewTermAfterLoss(t *testing.T) {
	cli := etcdtest.Start(t).Client(t)
	ctx, cancel := context.WithCancel(t.Context())
	var l leases
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		term.Run(ctx, cli, config(), l.work)
	}()
	poll.Until(t, 10*time.Second, "first term", func() (bool, string) { return len(l.all()) == 1, "no term yet" })
	first := l.all()[0]
	if left := ttl(t, cli, first); left <= 0 {
		t.Fatalf("first term's lease %x has TTL %d, expected it alive", first, left)
	}
	if _, err := cli.Revoke(t.Context(), first); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "second term", func() (bool, string) { return len(l.all()) == 2, "one term" })
	second := l.all()[1]
	if second == first {
		t.Fatalf("second term reused lease %x", first)
	}
	if left := ttl(t, cli, second); left <= 0 {
		t.Fatalf("second term's lease %x has TTL %d, expected it alive", second, left)
	}
	cancel()
	<-ran
	if left := ttl(t, cli, second); left != -1 {
		t.Fatalf("after Run returned, lease %x has TTL %d, expected it revoked (-1)", second, left)
	}
	if n := len(l.all()); n != 2 {
		t.Fatalf("%d terms, expected 2", n)
	}
}

// TestOneReportsLoss: One tells a lost lease (ErrLeaseLost) from the
// work's own error, and revokes the lease in both cases.
func TestOneReportsLoss(t *testing.T) {
	cli := etcdtest.Start(t).Client(t)
	var lost clientv3.LeaseID
	err := term.One(t.Context(), cli, config(), func(ctx context.Context, lease clientv3.LeaseID) error {
		lost = lease
		if _, err := cli.Revoke(ctx, lease); err != nil {
			return err
		}
		<-ctx.Done()
		return ctx.Err()
	})
	if !errors.Is(err, term.ErrLeaseLost) {
		t.Fatalf("One after a revoke: %v, expected ErrLeaseLost", err)
	}
	if left := ttl(t, cli, lost); left != -1 {
		t.Fatalf("lease %x TTL %d, expected gone", lost, left)
	}
	boom := errors.New("boom")
	var kept clientv3.LeaseID
	err = term.One(t.Context(), cli, config(), func(_ context.Context, lease clientv3.LeaseID) error {
		kept = lease
		return boom
	})
	if !errors.Is(err, boom) || errors.Is(err, term.ErrLeaseLost) {
		t.Fatalf("One whose work failed: %v, expected the work's error", err)
	}
	if left := ttl(t, cli, kept); left != -1 {
		t.Fatalf("lease %x TTL %d after the work returned, expected revoked", kept, left)
	}
}

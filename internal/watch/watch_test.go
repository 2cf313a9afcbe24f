package watch_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/concord-tx/concord/internal/testkit/etcdtest"
	"github.com/concord-tx/concord/internal/testkit/leaktest"
	"github.com/concord-tx/concord/internal/watch"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

// A member that falls behind needs a cluster of processes: tests/chaos
// (TestCutFollowerKeepsSessions) cuts one off while banks watch through it.

// TestHealthyMemberKeepsWatch: on a member that keeps up, the watch passes
// every event in order, through many checks, and is never ended; the
// progress notifications the checks cause carry no events.
func TestHealthyMemberKeepsWatch(t *testing.T) {
	cli := etcdtest.Start(t).Client(t)
	ctx := t.Context()
	wch, stop := watch.Open(ctx, cli, nil, "k/", clientv3.WithPrefix())
	defer stop()

	const n = 40 // one every 100ms: eight checks
	writer := make(chan struct{})
	defer func() { <-writer }()
	go func() {
		defer close(writer)
		for i := range n {
			if _, err := cli.Put(ctx, fmt.Sprintf("k/%02d", i), "v"); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	got, progress := 0, 0
	deadline := time.After(30 * time.Second)
	for got < n {
		select {
		case resp, ok := <-wch:
			if !ok {
				t.Fatalf("watch ended after %d events on a healthy member", got)
			}
			if resp.IsProgressNotify() {
				progress++
			}
			for _, ev := range resp.Events {
				if want := fmt.Sprintf("k/%02d", got); string(ev.Kv.Key) != want {
					t.Fatalf("event %d is %s, want %s", got, ev.Kv.Key, want)
				}
				got++
			}
		case <-deadline:
			t.Fatalf("%d of %d events after 30s", got, n)
		}
	}
	if progress == 0 {
		t.Error("no progress notification: the checks did not run")
	}
	t.Logf("%d events, %d progress notifications", got, progress)
}

// TestIdleWatchStays: a watch from the next revision on an idle member,
// the way every caller opens one, is not moved: the member holds back its
// progress answers (the watch starts after its revision), and its revision
// at the probe's creation is the cluster's.
func TestIdleWatchStays(t *testing.T) {
	cli := etcdtest.Start(t).Client(t)
	ctx := t.Context()
	resp, err := cli.Put(ctx, "k/0", "v")
	if err != nil {
		t.Fatal(err)
	}
	wch, stop := watch.Open(ctx, cli, nil, "k/", clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1))
	defer stop()
	select {
	case r, ok := <-wch:
		if !ok {
			t.Fatal("watch of an idle member ended: judged behind")
		}
		if len(r.Events) > 0 {
			t.Fatalf("events on an idle member: %v", r.Events)
		}
	case <-time.After(3 * time.Second): // six checks
	}
	// And it still delivers.
	if _, err := cli.Put(ctx, "k/1", "v"); err != nil {
		t.Fatal(err)
	}
	for r := range wch {
		if len(r.Events) > 0 {
			if got := string(r.Events[0].Kv.Key); got != "k/1" {
				t.Fatalf("event for %s, want k/1", got)
			}
			return
		}
	}
	t.Fatal("watch ended before the event")
}

// TestStopEndsWatch: stop closes the channel and returns once the check
// has ended (the package's leak check would see it otherwise).
func TestStopEndsWatch(t *testing.T) {
	cli := etcdtest.Start(t).Client(t)
	wch, stop := watch.Open(t.Context(), cli, nil, "k")
	stop()
	select {
	case _, ok := <-wch:
		for ok {
			_, ok = <-wch
		}
	case <-time.After(5 * time.Second):
		t.Fatal("channel still open 5s after stop")
	}
}

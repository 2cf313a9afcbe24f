package watch_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/concord-tx/concord/internal/etcdtest"
	"github.com/concord-tx/concord/internal/leaktest"
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
	go func() {
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

package coordinator

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/concord-tx/concord/internal/testkit/etcdtest"
	"github.com/concord-tx/concord/protocol"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap/zaptest"
)

// A review that comes while an action on the same transaction is in flight
// is not lost: here the deadline passes while a participant-lost abort is
// in flight, the participant registers again so that abort's compares
// fail, and the leader still aborts at the deadline.
func TestReviewDuringActionIsNotLost(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	ctx := context.Background()
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	keys := protocol.DefaultKeys()

	c, err := NewClient(ctx, cli, withClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	regA, err := cli.Put(ctx, keys.Participant("a"), "instance-a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Begin(ctx, Request{ID: "x", Branches: []protocol.Branch{{Participant: "a"}, {Participant: "b"}}, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := cli.Get(ctx, keys.Record("x"))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := protocol.DecodeRecord(resp.Kvs[0].Value)
	if err != nil {
		t.Fatal(err)
	}

	// The leader's view, driven by hand; its worker pool is a queue the
	// test empties.
	o, err := newReplicaOptions([]ReplicaOption{withClock(clock), WithLogger(zaptest.NewLogger(t))})
	if err != nil {
		t.Fatal(err)
	}
	r := &Replica{cli: cli, opts: o, keys: o.keys, log: o.logger}
	l := newLeadership(r, clientv3.Compare(clientv3.CreateRevision("/no-such-key"), "=", 0))
	l.actions = make(chan func(context.Context) actionResult, 1)
	l.ready = true
	l.apply(ctx, false, []byte(keys.Participant("a")), []byte("instance-a"), regA.Header.Revision, false)
	l.record(ctx, rec, b.Revision, false) // b is not registered: a participant-lost abort
	var act func(context.Context) actionResult
	select {
	case act = <-l.actions:
	default:
		t.Fatal("no participant-lost abort for b")
	}

	regB, err := cli.Put(ctx, keys.Participant("b"), "instance-b")
	if err != nil {
		t.Fatal(err)
	}
	l.apply(ctx, false, []byte(keys.Participant("b")), []byte("instance-b"), regB.Header.Revision, false)
	advance(3 * time.Second)
	l.expire(ctx) // the deadline, while the abort is in flight
	l.done(act(ctx))
	if got := currentState(t, cli, keys, "x"); got != protocol.StatePreparing {
		t.Fatalf("the participant-lost abort went through although b registered: %v", got)
	}

	l.expire(ctx)
	select {
	case act = <-l.actions:
	default:
		t.Fatalf("no action after the in-flight one ended; %d timers", len(l.timers.items))
	}
	l.done(act(ctx))
	if got := currentState(t, cli, keys, "x"); got != protocol.StateAborting {
		t.Fatalf("past its deadline, x is %v, want aborting", got)
	}
}

func currentState(t *testing.T, cli *clientv3.Client, keys protocol.Keys, id string) protocol.State {
	t.Helper()
	resp, err := cli.Get(context.Background(), keys.Record(id))
	if err != nil || len(resp.Kvs) == 0 {
		t.Fatalf("read %s: %v", id, err)
	}
	rec, err := protocol.DecodeRecord(resp.Kvs[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	return rec.State
}

// Retention runs on the leader's clock: a terminal record seen live is
// kept from when the leader saw it, whatever Finished says; one found by
// the view's scan keeps its Finished, unless that is in the future.
func TestRetentionOnLeaderClock(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	l := stoppedClockLeadership(t, now)
	finished := func(id string, at time.Time, found bool) time.Time {
		l.record(context.Background(), protocol.Record{ID: id, State: protocol.StateCommitted, Participants: []string{"a"}, Finished: at}, 10, found)
		return l.gcQueue[len(l.gcQueue)-1].finished
	}
	for _, tt := range []struct {
		name string
		live bool
		at   time.Time
		want time.Time
	}{
		{"scanned", false, now.Add(-time.Hour), now.Add(-time.Hour)},
		{"scanned, clock ahead", false, now.Add(10 * time.Hour), now},
		{"live, clock behind", true, now.Add(-10 * time.Hour), now},
		{"live, clock ahead", true, now.Add(10 * time.Hour), now},
	} {
		if got := finished(tt.name, tt.at, !tt.live); !got.Equal(tt.want) {
			t.Errorf("%s: kept from %v, want %v", tt.name, got, tt.want)
		}
	}
}

// stoppedClockLeadership is a leader's view with no etcd, driven by hand,
// on a clock that stays at now. It is not ready: changes start no review.
func stoppedClockLeadership(t *testing.T, now time.Time) *leadership {
	t.Helper()
	o, err := newReplicaOptions([]ReplicaOption{withClock(func() time.Time { return now })})
	if err != nil {
		t.Fatal(err)
	}
	return newLeadership(&Replica{opts: o, keys: o.keys, log: o.logger}, clientv3.Cmp{})
}

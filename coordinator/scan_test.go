package coordinator

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/concord-tx/concord/protocol"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// The background scan's pages may come after the watch has moved on: a
// record its page shows that the view saw deleted since is not brought
// back, finished or not; a vote it shows is not taken for a newer
// transaction of the same id; and the terminal records it finds join the
// cleanup queue in the order they finished, among those seen live.
func TestScanFinishedMergesWithWatch(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	l := stoppedClockLeadership(t, now)
	l.gone = make(map[string]int64) // the background scan runs
	keys := l.r.keys
	ctx := context.Background()
	rec := func(id string, state protocol.State, finished time.Time, rev int64) *mvccpb.KeyValue {
		r := protocol.Record{ID: id, State: state, Participants: []string{"a"}}
		if state.Terminal() {
			r.Finished = finished
		}
		v, err := protocol.EncodeRecord(r)
		if err != nil {
			t.Fatal(err)
		}
		return &mvccpb.KeyValue{Key: []byte(keys.Record(id)), Value: v, ModRevision: rev}
	}
	kv := func(id string, finished time.Time, rev int64) *mvccpb.KeyValue {
		return rec(id, protocol.StateCommitted, finished, rev)
	}
	live := func(kv *mvccpb.KeyValue) { l.apply(ctx, false, kv.Key, kv.Value, kv.ModRevision, false) }
	live(kv("live", now, 30))
	l.apply(ctx, true, []byte(keys.Record("deleted")), nil, 20, false)
	// Seen open, then finished and deleted, all live.
	live(rec("was-open", protocol.StatePreparing, time.Time{}, 15))
	live(kv("was-open", now, 18))
	l.apply(ctx, true, []byte(keys.Record("was-open")), nil, 21, false)
	// An id taken again after its cleanup: the page has the old vote.
	live(rec("reused", protocol.StatePreparing, time.Time{}, 40))
	page := []*mvccpb.KeyValue{
		kv("deleted", now.Add(-3*time.Hour), 10), kv("two-hours", now.Add(-2*time.Hour), 12), kv("four-hours", now.Add(-4*time.Hour), 13), kv("live", now, 30),
		rec("was-open", protocol.StatePreparing, time.Time{}, 15),
		{Key: []byte(keys.Vote("reused", "a")), Value: []byte("yes"), ModRevision: 5},
	}
	if err := l.scanned(ctx, scanPage{kvs: page}); err != nil {
		t.Fatal(err)
	}
	if _, ok := l.active["was-open"]; ok {
		t.Error("a transaction deleted since the page was read is back in the view")
	}
	if tr := l.active["reused"]; tr == nil || tr.voted["a"] {
		t.Errorf("the page's vote of an earlier transaction of the same id counts for the newer one")
	}
	l.scanDone()
	var got []string
	for _, e := range l.gcQueue {
		got = append(got, e.id)
	}
	if want := "four-hours two-hours live was-open"; strings.Join(got, " ") != want {
		t.Errorf("cleanup queue %v, want %s", got, want)
	}
	if l.gone != nil || l.backlog != nil {
		t.Errorf("after the scan: %d deletions kept, %d found not queued", len(l.gone), len(l.backlog))
	}
}

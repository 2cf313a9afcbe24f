package coordinator

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/concord-tx/concord/protocol"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// The background scan's pages may come after the watch has moved on: a
// record its page shows that the view saw deleted since is not brought
// back, and the terminal records it finds join the cleanup queue in the
// order they finished, among those seen live.
func TestScanFinishedMergesWithWatch(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	o, err := newReplicaOptions([]ReplicaOption{withClock(func() time.Time { return now })})
	if err != nil {
		t.Fatal(err)
	}
	l := newLeadership(&Replica{opts: o, keys: o.keys, log: o.logger}, clientv3.Cmp{})
	l.ready, l.scanning, l.gone = true, true, make(map[string]int64)
	ctx := context.Background()
	kv := func(id string, finished time.Time, rev int64) *mvccpb.KeyValue {
		v, err := protocol.EncodeRecord(protocol.Record{ID: id, State: protocol.StateCommitted, Participants: []string{"a"}, Finished: finished})
		if err != nil {
			t.Fatal(err)
		}
		return &mvccpb.KeyValue{Key: []byte(o.keys.Record(id)), Value: v, ModRevision: rev}
	}
	live := kv("live", now, 30)
	l.apply(ctx, false, live.Key, live.Value, live.ModRevision, false)
	l.apply(ctx, true, []byte(o.keys.Record("deleted")), nil, 20, false)
	page := []*mvccpb.KeyValue{kv("deleted", now.Add(-3*time.Hour), 10), kv("two-hours", now.Add(-2*time.Hour), 12), kv("four-hours", now.Add(-4*time.Hour), 13), kv("live", now, 30)}
	if err := l.scanned(ctx, scanPage{kvs: page}); err != nil {
		t.Fatal(err)
	}
	l.scanDone()
	var got []string
	for _, e := range l.gcQueue {
		got = append(got, e.id)
	}
	if want := "four-hours two-hours live"; strings.Join(got, " ") != want {
		t.Errorf("cleanup queue %v, want %s", got, want)
	}
	if l.scanning || l.gone != nil || l.backlog != nil {
		t.Errorf("after the scan: scanning %v, %d deletions kept, %d found not queued", l.scanning, len(l.gone), len(l.backlog))
	}
}

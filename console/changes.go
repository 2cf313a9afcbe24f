package console

import (
	"context"

	"github.com/concord-tx/concord/protocol"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// count keeps the chart's stats, and the newest begins for the list (see
// recent), from the coordinator Client's watch (see
// coordinator.Client.Changes), whether or not a page is open, until ctx
// ends or the Client closes. That watch runs anyway, so the chart costs
// etcd nothing, and a page opened after an idle hour has the last five
// minutes without reading the records kept for the retention window
// (which is what rebuilding them took: a read that grows with
// --retention). The chart starts when the Console does.
func (h *hub) count(ctx context.Context, changes <-chan clientv3.WatchResponse, stop func()) {
	defer stop()
	defer func() {
		h.mu.Lock()
		h.mu.recent.gap() // what it holds would only grow stale
		h.mu.Unlock()
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case resp, ok := <-changes:
			if !ok {
				h.log.Debug("console: the coordinator client closed; the chart stops counting")
				return
			}
			if resp.CompactRevision != 0 {
				h.log.Info("console: the chart and the newest begins missed the changes before a compaction", zap.Int64("compact_revision", resp.CompactRevision))
				h.mu.Lock()
				h.mu.recent.gap()
				h.mu.Unlock()
			}
			h.countEvents(resp.Events)
		}
	}
}

// countEvents counts the begins and decisions among events: a record's
// first version is its begin, counted when seen and remembered among the
// newest; its second is the decision, the one write in committing or
// aborting, decoded for its outcome, cause and latency. Nothing else is
// decoded.
func (h *hub) countEvents(events []*clientv3.Event) {
	if len(events) == 0 {
		return
	}
	start, end := h.keys.Records()
	var begins []begin
	var decided []protocol.Record
	for _, ev := range events {
		kv := ev.Kv
		if ev.Type != mvccpb.PUT || kv.Version > 2 || string(kv.Key) < start || string(kv.Key) >= end {
			continue
		}
		k := h.keys.Parse(string(kv.Key))
		if k.Kind != protocol.KindRecord {
			continue // a vote
		}
		if kv.Version == 1 {
			begins = append(begins, begin{rev: kv.ModRevision, id: k.ID})
			continue
		}
		rec, err := protocol.DecodeRecord(kv.Value)
		if err != nil {
			h.log.Warn("console: undecodable record", zap.ByteString("key", kv.Key), zap.Error(err))
			continue
		}
		if rec.State == protocol.StateCommitting || rec.State == protocol.StateAborting {
			decided = append(decided, rec)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.mu.recent.seen(events[0].Kv.ModRevision, events[len(events)-1].Kv.ModRevision)
	now := h.now()
	for _, b := range begins {
		h.mu.recent.add(b)
		h.mu.stats.begun(now, now)
	}
	for _, rec := range decided {
		h.mu.stats.decided(rec, now)
	}
}

// newest returns the newest begins below revision before (0: the newest
// of all) with ids under prefix, looking at about n (see recent.before).
// The newest of all is what the coordinator Client's watch has delivered,
// a moment behind etcd.
func (h *hub) newest(before int64, n int, prefix string) (span, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	top := before - 1
	if before == 0 {
		top = h.mu.recent.upTo
	}
	return h.mu.recent.before(top, n, prefix)
}

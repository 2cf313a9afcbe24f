package console

import (
	"context"

	"github.com/concord-tx/concord/protocol"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// count keeps the chart's stats from the coordinator Client's watch (see
// coordinator.Client.Changes), whether or not a page is open, until ctx
// ends or the Client closes. That watch runs anyway, so the chart costs
// etcd nothing, and a page opened after an idle hour has the last five
// minutes without reading the records kept for the retention window
// (which is what rebuilding them took: a read that grows with
// --retention). The chart starts when the Console does.
func (h *hub) count(ctx context.Context) {
	changes, stop := h.client.Changes()
	defer stop()
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
				h.log.Debug("console: the chart missed the changes before a compaction", zap.Int64("compact_revision", resp.CompactRevision))
			}
			h.countEvents(resp.Events)
		}
	}
}

// countEvents counts the begins and decisions among events: a record's
// first version is its begin, counted when seen; its second is the
// decision, the one write in committing or aborting, decoded for its
// outcome, cause and latency. Nothing else is decoded.
func (h *hub) countEvents(events []*clientv3.Event) {
	start, end := h.keys.Records()
	begun := 0
	var decided []protocol.Record
	for _, ev := range events {
		kv := ev.Kv
		if ev.Type != mvccpb.PUT || kv.Version > 2 || string(kv.Key) < start || string(kv.Key) >= end {
			continue
		}
		if h.keys.Parse(string(kv.Key)).Kind != protocol.KindRecord {
			continue // a vote
		}
		if kv.Version == 1 {
			begun++
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
	if begun == 0 && len(decided) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.now()
	for range begun {
		h.mu.stats.begun(now, now)
	}
	for _, rec := range decided {
		h.mu.stats.decided(rec, now)
	}
}

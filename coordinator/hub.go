package coordinator

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/concord-tx/concord/internal/watch"
	"github.com/concord-tx/concord/protocol"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// hub is a Client's one watch over everything under the prefix: record
// decisions are fanned out to the calls waiting for them, inbox changes
// feed the storage limits' counts (see pending), and a Replica in the same
// process (WithClient) follows the same watch rather than one of its own.
// One watch for all waiters keeps the cost of Wait at zero etcd requests,
// where a watch per call would cost a create and a cancel each; one watch
// for the Client and the Replica halves what etcd sends the process.
type hub struct {
	cli    *clientv3.Client
	opts   options
	cancel context.CancelFunc
	done   chan struct{}
	// pending counts the inboxes, for the storage limits.
	pending *pending

	mu struct {
		sync.Mutex
		waiters map[string]map[*waiter]struct{}
		subs    map[*subscription]struct{}
		closed  bool // run has ended: no new subscription
	}
}

// waiter receives the decided record of one transaction.
type waiter struct{ ch chan protocol.Record }

func startHub(ctx context.Context, cli *clientv3.Client, o options) (*hub, error) {
	// The watch starts after this revision; every Wait registers and then
	// reads, at a later revision, so nothing falls between the two.
	rev, err := currentRevision(ctx, cli, o)
	if err != nil {
		return nil, fmt.Errorf("coordinator: read current revision: %w", err)
	}
	p := newPending(cli, o)
	if o.storage.enabled() {
		if err := p.load(ctx, rev); err != nil {
			return nil, fmt.Errorf("coordinator: read pending messages: %w", err)
		}
	}
	runCtx, cancel := context.WithCancel(context.Background())
	h := &hub{cli: cli, opts: o, cancel: cancel, done: make(chan struct{}), pending: p}
	h.mu.waiters = make(map[string]map[*waiter]struct{})
	h.mu.subs = make(map[*subscription]struct{})
	go h.run(runCtx, rev)
	return h, nil
}

func (h *hub) close() {
	h.cancel()
	<-h.done
}

func (h *hub) register(id string) *waiter {
	w := &waiter{ch: make(chan protocol.Record, 1)}
	h.mu.Lock()
	defer h.mu.Unlock()
	ws := h.mu.waiters[id]
	if ws == nil {
		ws = make(map[*waiter]struct{})
		h.mu.waiters[id] = ws
	}
	ws[w] = struct{}{}
	return w
}

func (h *hub) unregister(id string, w *waiter) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.mu.waiters[id], w)
	if len(h.mu.waiters[id]) == 0 {
		delete(h.mu.waiters, id)
	}
}

func (h *hub) wait(ctx context.Context, id string, w *waiter) (Outcome, error) {
	select {
	case rec := <-w.ch:
		return outcomeOf(rec), nil
	case <-ctx.Done():
		return Outcome{ID: id}, fmt.Errorf("coordinator: wait %s: %w", id, ctx.Err())
	case <-h.done:
		return Outcome{ID: id}, fmt.Errorf("coordinator: wait %s: %w", id, ErrClosed)
	}
}

// waited reports whether anyone waits for transaction id.
func (h *hub) waited(id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.mu.waiters[id]) > 0
}

// notify hands a decided record to every waiter of its transaction.
func (h *hub) notify(rec protocol.Record) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.mu.waiters[rec.ID] {
		select {
		case w.ch <- rec:
		default: // already notified
		}
	}
}

func (h *hub) run(ctx context.Context, rev int64) {
	defer close(h.done)
	defer h.endSubscriptions()
	// With the storage limits on (the default): everything under the
	// prefix, deletions included. The Client needs records (decisions) and
	// inboxes (the counts); a Replica following this watch needs the rest
	// (see subscribe). With every limit off: only records and votes, and
	// without deletions (cleanup), which etcd then drops before they are
	// sent.
	start, end := h.opts.keys.All()
	inboxes := []byte(h.opts.keys.Inboxes())
	var opts []clientv3.OpOption
	if !h.wide() {
		_, end = h.opts.keys.Records()
		opts = append(opts, clientv3.WithFilterDelete())
	}
	for ctx.Err() == nil {
		wch, stop := watch.Open(ctx, h.cli, h.opts.logger, start, append([]clientv3.OpOption{clientv3.WithRange(end), clientv3.WithRev(rev + 1)}, opts...)...)
		for resp := range wch {
			if resp.CompactRevision != 0 {
				// Decisions and inbox changes between rev and the
				// compaction are gone from history: read the waiters'
				// records, and the inboxes, instead, and go on from there.
				// If that fails, the watch from rev meets the compaction
				// again, and the reading is repeated.
				if r, err := h.resync(ctx); err == nil {
					rev = r
					// Only now: a subscription made before this point
					// learns that it missed changes and reads again; one
					// made after it reads after r, from where the watch
					// goes on.
					h.publish(resp)
				} else if ctx.Err() == nil {
					h.opts.logger.Warn("reading after a compaction failed; will try again", zap.Error(err))
				}
				break
			}
			if len(resp.Events) > 0 {
				// Not the other errors: the watch goes on after them from
				// where it was, and the subscribers see no gap.
				h.publish(resp)
			}
			if err := resp.Err(); err != nil {
				h.opts.logger.Debug("record watch ended", zap.Error(err), zap.Int64("rev", rev))
				break
			}
			for _, ev := range resp.Events {
				rev = ev.Kv.ModRevision
				if bytes.HasPrefix(ev.Kv.Key, inboxes) {
					h.pending.apply(ev)
					continue
				}
				// Version 1 is the record's creation, by a begin: undecided.
				if ev.Type != mvccpb.PUT || ev.Kv.Version == 1 {
					continue
				}
				// Most records (terminal records, other clients'
				// transactions) have no waiter here; skip decoding them. A
				// waiter registered after this event reads the record.
				if k := h.opts.keys.Parse(string(ev.Kv.Key)); k.Kind != protocol.KindRecord || !h.waited(k.ID) {
					continue
				}
				rec, err := protocol.DecodeRecord(ev.Kv.Value)
				if err != nil {
					h.opts.logger.Warn("undecodable record", zap.ByteString("key", ev.Kv.Key), zap.Error(err))
					continue
				}
				if rec.State.Decided() {
					h.notify(rec)
				}
			}
		}
		stop()
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// resync reads the record of every waiter and notifies those decided,
// and reloads the inboxes' counts; it returns the revision read at.
func (h *hub) resync(ctx context.Context) (int64, error) {
	// The revision first, then the waiters: a waiter registered after the
	// copy reads its record (or begins) after rev was read, so what it
	// misses, the watch restarting after rev delivers. The other order
	// would lose a decision made between the copy and the read.
	rev, err := currentRevision(ctx, h.cli, h.opts)
	if err != nil {
		return 0, err
	}
	h.mu.Lock()
	ids := make([]string, 0, len(h.mu.waiters))
	for id := range h.mu.waiters {
		ids = append(ids, id)
	}
	h.mu.Unlock()
	for _, id := range ids {
		r, err := retry(ctx, h.opts, "get", func(ctx context.Context) (*clientv3.GetResponse, error) {
			return h.cli.Get(ctx, h.opts.keys.Record(id), clientv3.WithRev(rev))
		})
		if err != nil {
			return 0, err
		}
		if len(r.Kvs) == 0 {
			continue
		}
		if rec, err := protocol.DecodeRecord(r.Kvs[0].Value); err == nil && rec.State.Decided() {
			h.notify(rec)
		}
	}
	if h.opts.storage.enabled() {
		if err := h.pending.load(ctx, rev); err != nil {
			return 0, err
		}
	}
	return rev, nil
}

// wide reports whether the hub watches everything under the prefix, as a
// subscriber needs: with the storage limits on.
func (h *hub) wide() bool { return h.opts.storage.enabled() }

// subscribe returns a subscription to every response of the hub's watch
// from now on (everything under the prefix only if wide), or false if the
// hub has stopped. Responses before the call are not delivered: the
// subscriber reads the state they left instead, after subscribing; what
// changes after that read comes through the subscription. A response that
// reports a compaction is delivered too, once the hub knows the revision
// it goes on from (the subscriber has missed changes, and must read
// again).
func (h *hub) subscribe() (*subscription, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.mu.closed {
		return nil, false
	}
	s := newSubscription(func(s *subscription) {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(h.mu.subs, s)
	})
	h.mu.subs[s] = struct{}{}
	return s, true
}

// publish hands resp to every subscription.
func (h *hub) publish(resp clientv3.WatchResponse) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.mu.subs {
		s.push(resp)
	}
}

// endSubscriptions ends every subscription, whose channels then close once
// drained, and refuses new ones.
func (h *hub) endSubscriptions() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.mu.closed = true
	for s := range h.mu.subs {
		s.end()
	}
	clear(h.mu.subs)
}

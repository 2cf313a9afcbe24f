package console

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/concord-tx/concord/coordinator"
	"github.com/concord-tx/concord/internal/watch"
	"github.com/concord-tx/concord/protocol"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

const (
	// subscriberBuffer is how many frames a page may fall behind (about
	// four seconds of flushes) before it is dropped.
	subscriberBuffer = 16
	// flushEvery is how often changed transactions are sent to pages, in
	// one frame: a page's work is bounded by the interval, not the load.
	flushEvery = 250 * time.Millisecond
	// maxPending bounds the transactions of one flush; past it the frame
	// says more changed, and a list page offers a reload.
	maxPending = 200
	// statsEvery is how often overview pages get the chart's last seconds.
	statsEvery = time.Second
)

// hub is the Console's one watch on the records range, fanned out to the
// pages' event streams, which keeps the view up to date. The watch runs
// only while pages are open (and for idleAfter after the last one
// closed). The chart's stats follow the coordinator Client's watch
// instead, which runs anyway (see count).
type hub struct {
	cli        *clientv3.Client
	client     *coordinator.Client
	keys       protocol.Keys
	log        *zap.Logger
	now        func() time.Time
	stuckAfter time.Duration
	// idleAfter is how long the watch runs on after the last page closed:
	// a console nobody looks at costs etcd nothing.
	idleAfter time.Duration
	cluster   *clusterView
	cancel    context.CancelFunc
	done      chan struct{}
	wake      chan struct{} // a page asks for the watch
	// watches counts the watches opened: one per session (a session
	// lasts while pages are open), plus one each time etcd ended one.
	watches atomic.Int64

	mu struct {
		sync.Mutex
		subs     map[*subscriber]struct{}
		view     view
		stats    stats
		recent   recent
		pending  map[string]TxSummary
		overflow bool
		// active: a session runs, or is about to. lastDemand is when a
		// page last asked; ready is closed once the session has loaded.
		active     bool
		lastDemand time.Time
		ready      chan struct{}
		closed     bool // the hub stopped: no new page streams
	}
}

// subscriber is one page's event stream. ch is closed when the page is
// dropped or the hub stops. ready is closed once the watch has loaded the
// records: from then on, every change reaches ch.
type subscriber struct {
	ch       chan []byte
	ready    <-chan struct{}
	overview bool
}

// TxSummary is what a page is told about a changed transaction.
type TxSummary struct {
	ID           string         `json:"id"`
	State        protocol.State `json:"state,omitzero"` // zero: only a vote changed
	Participants []string       `json:"participants,omitempty"`
	Created      time.Time      `json:"created,omitzero"`
	Decided      time.Time      `json:"decided,omitzero"`
	Cause        protocol.Cause `json:"cause,omitempty"`
	Reason       string         `json:"reason,omitempty"`
}

func summarize(r protocol.Record) TxSummary {
	return TxSummary{ID: r.ID, State: r.State, Participants: r.Participants, Created: r.Created, Decided: r.Decided, Cause: r.Cause, Reason: r.Reason}
}

func startHub(cli *clientv3.Client, client *coordinator.Client, o options, cluster *clusterView) *hub {
	ctx, cancel := context.WithCancel(context.Background())
	h := &hub{cli: cli, client: client, keys: o.keys, log: o.logger, now: o.now, stuckAfter: o.stuckAfter, idleAfter: o.idleAfter, cluster: cluster, cancel: cancel, done: make(chan struct{}), wake: make(chan struct{}, 1)}
	h.mu.subs = make(map[*subscriber]struct{})
	h.mu.view = newView()
	h.mu.stats = stats{since: o.now().Unix()}
	h.mu.pending = make(map[string]TxSummary)
	// Subscribed before New returns: every begin after it is counted.
	changes, stop := client.Changes()
	go h.supervise(ctx, changes, stop)
	return h
}

// close stops the watch and ends every page's stream.
func (h *hub) close() {
	h.cancel()
	<-h.done
}

// demand says a page is being looked at: it starts the watch if it is
// not running. The returned channel is closed once the records are loaded.
func (h *hub) demand() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.demandLocked()
}

func (h *hub) demandLocked() <-chan struct{} {
	h.mu.lastDemand = h.now()
	if h.mu.closed {
		closed := make(chan struct{})
		close(closed)
		return closed // nothing will load: do not wait
	}
	if !h.mu.active {
		h.mu.active = true
		h.mu.ready = make(chan struct{})
		select {
		case h.wake <- struct{}{}:
		default:
		}
	}
	return h.mu.ready
}

// supervise runs a session (the watch and the ticks) each time a page
// asks for one, and the chart's count all along, until the hub is closed.
func (h *hub) supervise(ctx context.Context, changes <-chan clientv3.WatchResponse, stop func()) {
	defer close(h.done)
	defer h.closeSubscribers()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		h.count(ctx, changes, stop)
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.wake:
		}
		h.session(ctx)
	}
}

// session loads the unfinished transactions afresh, follows the records
// until no page has been open for idleAfter, then stops the watch.
func (h *hub) session(ctx context.Context) {
	h.mu.Lock()
	h.mu.view = newView()
	clear(h.mu.pending)
	ready := h.mu.ready
	h.mu.Unlock()
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.run(sctx, ready)
	}()
	h.tick(sctx)
	cancel()
	<-done
}

func (h *hub) closeSubscribers() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.mu.closed = true
	h.dropSubscribersLocked()
}

// dropSubscribersLocked ends every page's stream.
func (h *hub) dropSubscribersLocked() {
	for s := range h.mu.subs {
		close(s.ch)
	}
	clear(h.mu.subs)
	clear(h.mu.pending)
	h.mu.overflow = false
}

// subscribe opens a page's stream; the first frames it gets bring an
// overview page up to date.
func (h *hub) subscribe(overview bool) (*subscriber, error) {
	s := &subscriber{ch: make(chan []byte, subscriberBuffer), overview: overview}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.mu.closed {
		return nil, ErrClosed
	}
	s.ready = h.demandLocked()
	if overview {
		now := h.now()
		s.ch <- frame("series", h.mu.stats.series(now, window))
		s.ch <- frame("stats", h.statsLocked(now))
	}
	h.mu.subs[s] = struct{}{}
	return s, nil
}

func (h *hub) unsubscribe(s *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.mu.lastDemand = h.now() // the idle time counts from the last page closed
	if _, ok := h.mu.subs[s]; ok {
		delete(h.mu.subs, s)
		close(s.ch)
	}
}

// broadcastLocked hands a frame to every page (or every overview page)
// without waiting: a page whose buffer is full is dropped. A page whose
// stream waits for the load gets none: it reads itself again once the
// stream opens, so they would only fill its buffer, and a slow load would
// have it dropped before it opened.
func (h *hub) broadcastLocked(b []byte, overviewOnly bool) {
	for s := range h.mu.subs {
		if overviewOnly && !s.overview {
			continue
		}
		select {
		case <-s.ready:
		default:
			continue
		}
		select {
		case s.ch <- b:
		default:
			delete(h.mu.subs, s)
			close(s.ch)
		}
	}
}

// frame encodes one server-sent event.
func frame(event string, v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		data = []byte(`null`)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "event: %s\ndata: %s\n\n", event, data)
	return b.Bytes()
}

// Live is the overview's numbers, sent every second.
type Live struct {
	Buckets []Bucket `json:"buckets"` // the last seconds, to redraw
	Rates   Rates    `json:"rates"`
	Summary
	OldestAge time.Duration `json:"oldest_age"`
}

func (h *hub) statsLocked(now time.Time) Live {
	l := Live{Buckets: h.mu.stats.series(now, 5), Rates: h.mu.stats.rates(now), Summary: h.mu.view.summary(now, h.stuckAfter)}
	if !l.Oldest.IsZero() {
		l.OldestAge = now.Sub(l.Oldest)
	}
	return l
}

// overview returns the overview's numbers now, with the view's details.
func (h *hub) overview() Live {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.statsLocked(h.now())
}

// tick flushes changed transactions to pages, the numbers to overview
// pages every second, and the participants panel every refresh interval
// while an overview page is open. It returns when ctx ends, or when no
// page has been open for idleAfter.
func (h *hub) tick(ctx context.Context) {
	t := time.NewTicker(flushEvery)
	defer t.Stop()
	var lastStats, lastCluster time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := h.now()
		h.mu.Lock()
		if len(h.mu.subs) == 0 && now.Sub(h.mu.lastDemand) >= h.idleAfter {
			h.mu.active = false // the next demand starts a new session
			h.mu.Unlock()
			return
		}
		if len(h.mu.pending) > 0 {
			txs := make([]TxSummary, 0, len(h.mu.pending))
			for _, s := range h.mu.pending {
				txs = append(txs, s)
			}
			h.broadcastLocked(frame("txs", struct {
				Txs  []TxSummary `json:"txs"`
				More bool        `json:"more,omitempty"`
			}{txs, h.mu.overflow}), false)
			clear(h.mu.pending)
			h.mu.overflow = false
		}
		overviews := 0
		for s := range h.mu.subs {
			if s.overview {
				overviews++
			}
		}
		if overviews > 0 && now.Sub(lastStats) >= statsEvery {
			lastStats = now
			h.broadcastLocked(frame("stats", h.statsLocked(now)), true)
		}
		h.mu.Unlock()
		if overviews > 0 && now.Sub(lastCluster) >= h.cluster.refresh {
			lastCluster = now
			c := h.cluster.get(ctx, h.summary())
			h.mu.Lock()
			h.broadcastLocked(frame("cluster", c), true)
			h.mu.Unlock()
		}
	}
}

// summary returns the view's summary now, for a page being rendered.
func (h *hub) summary() Summary {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.mu.view.summary(h.now(), h.stuckAfter)
}

// run loads the unfinished transactions, then follows the records with
// one watch, resuming where it got to; after a compaction it loads them
// again and drops the pages, which missed changes (their browsers
// reconnect and reload). ready is closed after the first load (or when
// run ends without one).
func (h *hub) run(ctx context.Context, ready chan struct{}) {
	start, end := h.keys.Records()
	var rev int64
	first := true
	defer func() {
		if first {
			close(ready) // nothing will load: let the pages waiting go
		}
	}()
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		if rev == 0 {
			r, err := h.load(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return // the session ended
				}
				h.log.Warn("console: read records", zap.Error(err))
				select {
				case <-ctx.Done():
				case <-time.After(backoff):
				}
				backoff = min(2*backoff, 5*time.Second)
				continue
			}
			if first {
				close(ready)
			} else {
				h.mu.Lock()
				h.dropSubscribersLocked()
				h.mu.Unlock()
			}
			rev, first, backoff = r, false, 50*time.Millisecond
		}
		h.watches.Add(1)
		wch, stop := watch.Open(ctx, h.cli, h.log, start, clientv3.WithRange(end), clientv3.WithRev(rev+1))
		for resp := range wch {
			if resp.CompactRevision != 0 {
				rev = 0 // history is gone: read the records again
				break
			}
			if err := resp.Err(); err != nil {
				h.log.Debug("console: record watch ended", zap.Error(err), zap.Int64("rev", rev))
				break
			}
			h.apply(resp.Events)
			if n := len(resp.Events); n > 0 {
				rev = resp.Events[n-1].Kv.ModRevision
			} else if resp.IsProgressNotify() {
				// Every change up to the header's revision was sent: a
				// quiet range resumes from there, not from before a
				// compaction.
				rev = max(rev, resp.Header.Revision)
			}
		}
		stop()
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// load reads the transactions not yet terminal into a new view, and
// returns the revision read at. They are found from the inbox keys (see
// coordinator.ListOptions), so this reads the work in flight, not every
// record kept for the retention window. The client bounds and retries
// each request; a backlog of stuck work takes many, so the whole has no
// deadline but the session's.
func (h *hub) load(ctx context.Context) (int64, error) {
	page, err := h.client.List(ctx, coordinator.ListOptions{Unfinished: true, Limit: maxOpen})
	if err != nil {
		return 0, err
	}
	v := newView()
	for _, tx := range page.Transactions {
		v.apply(tx.Record)
	}
	v.full = page.Next != ""
	h.mu.Lock()
	defer h.mu.Unlock()
	h.mu.view = v
	return page.Revision, nil
}

// apply folds watch events into the view, and marks the transactions
// changed for the pages.
func (h *hub) apply(events []*clientv3.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	listening := len(h.mu.subs) > 0
	for _, ev := range events {
		k := h.keys.Parse(string(ev.Kv.Key))
		switch {
		case k.Kind == protocol.KindRecord && ev.Type == mvccpb.DELETE:
			h.mu.view.remove(k.ID)
		case k.Kind == protocol.KindRecord:
			rec, err := protocol.DecodeRecord(ev.Kv.Value)
			if err != nil {
				h.log.Warn("console: undecodable record", zap.ByteString("key", ev.Kv.Key), zap.Error(err))
				continue
			}
			h.mu.view.apply(rec)
			if listening {
				h.markLocked(summarize(rec))
			}
		case k.Kind == protocol.KindVote && listening:
			s := TxSummary{ID: k.ID}
			if rec, ok := h.mu.view.record(k.ID); ok {
				s = summarize(rec)
			}
			if _, seen := h.mu.pending[k.ID]; !seen {
				h.markLocked(s)
			}
		}
	}
}

// markLocked queues a changed transaction for the next flush.
func (h *hub) markLocked(s TxSummary) {
	if _, ok := h.mu.pending[s.ID]; !ok && len(h.mu.pending) >= maxPending {
		h.mu.overflow = true
		return
	}
	h.mu.pending[s.ID] = s
}

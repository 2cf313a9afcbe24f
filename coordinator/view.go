package coordinator

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/concord-tx/concord/internal/watch"
	"github.com/concord-tx/concord/protocol"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// leadership is the leader's view of every transaction that is not
// terminal, rebuilt from a scan and kept current by one watch. It lives in
// one goroutine (run); actions run on a pool and report back.
type leadership struct {
	r     *Replica
	fence clientv3.Cmp

	ready      bool // the unfinished are read (scanUnfinished): changes may trigger actions
	active     map[string]*tracked
	terminal   map[string]int64 // id → ModRevision of its terminal record
	registered map[string]bool
	regRev     map[string]int64 // participant → revision of the last change seen
	timers     deadlineHeap
	gcQueue    []gcEntry // in the order the records finished
	gcMaxOps   int       // operations a cleanup Txn may hold: etcd's default, or less once refused
	results    chan actionResult
	actions    chan func(context.Context) actionResult

	// While the background scan runs (see scanFinished; gone is nil
	// otherwise): the revision at which each record deleted meanwhile
	// went, so that a page read before the delete does not bring it
	// back, and the terminal records the scan found.
	gone    map[string]int64
	backlog []gcEntry
}

type tracked struct {
	rec     protocol.Record
	rev     int64 // ModRevision of the record
	voted   map[string]bool
	pending bool // an action is in flight
	recheck bool // a review came while it was: review again when it ends
}

func newLeadership(r *Replica, fence clientv3.Cmp) *leadership {
	return &leadership{
		r:          r,
		fence:      fence,
		active:     make(map[string]*tracked),
		terminal:   make(map[string]int64),
		registered: make(map[string]bool),
		regRev:     make(map[string]int64),
		gcMaxOps:   128,
		results:    make(chan actionResult, actionWorkers),
		actions:    make(chan func(context.Context) actionResult),
	}
}

func (l *leadership) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	// The watch starts before the scans, from the revision just read, and
	// they read at recent revisions: a compaction during a long scan
	// cannot then invalidate it. The view keeps, for each key, the newest
	// revision it has seen, so reads and the watch's buffered events
	// converge whatever order they come in.
	rev, err := currentRevision(ctx, l.r.cli, l.r.opts) // the watch has passed on everything up to here
	if err != nil {
		return fmt.Errorf("read revision: %w", err)
	}
	wch, stop := l.follow(ctx, rev)
	defer func() { stop() }()
	if err := l.scanUnfinished(ctx); err != nil {
		return err
	}
	l.startWorkers(ctx, &wg)
	l.ready = true
	for id := range l.active {
		l.review(ctx, id)
	}
	pages := make(chan scanPage)
	l.gone = make(map[string]int64)
	wg.Add(1)
	go func() {
		defer wg.Done()
		l.scanFinished(ctx, pages)
	}()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	gcTick := time.NewTicker(l.gcInterval())
	defer gcTick.Stop()
	unfinishedTick := time.NewTicker(time.Second)
	defer unfinishedTick.Stop()
	l.reportUnfinished()
	for {
		l.r.opts.observer.Active(len(l.active))
		timer.Reset(l.nextTimer())
		select {
		case <-ctx.Done():
			return ctx.Err()
		case resp, ok := <-wch:
			if !ok {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				// Its member fell behind, or the Client followed was
				// closed: go on from here.
				stop()
				wch, stop = l.follow(ctx, rev)
				continue
			}
			if err := resp.Err(); err != nil {
				return fmt.Errorf("watch: %w", err)
			}
			for _, ev := range resp.Events {
				// A Client's watch may still deliver changes older than
				// the revision this view started from.
				rev = max(rev, ev.Kv.ModRevision)
				l.apply(ctx, ev.Type == clientv3.EventTypeDelete, ev.Kv.Key, ev.Kv.Value, ev.Kv.ModRevision, false)
			}
		case p, ok := <-pages:
			if !ok {
				pages = nil
				l.scanDone()
			} else if err := l.scanned(ctx, p); err != nil {
				return err
			}
		case res := <-l.results:
			l.done(res)
		case <-timer.C:
			l.expire(ctx)
		case <-gcTick.C:
			l.collect(ctx)
		case <-unfinishedTick.C:
			l.reportUnfinished()
		}
	}
}

// follow returns the changes to every key under the prefix after rev: the
// Client's watch (WithClient) while that Client runs, or else a watch of
// the view's own from rev+1. The Client's watch may deliver changes from
// before rev, or begin after it; the scan that follows the subscription
// reads what came before, and the view keeps the newest revision of each
// key whatever the order.
func (l *leadership) follow(ctx context.Context, rev int64) (<-chan clientv3.WatchResponse, func()) {
	if c := l.r.opts.client; c != nil && c.hub.wide() {
		if s, ok := c.hub.subscribe(); ok {
			return s.out, s.stop
		}
	}
	start, end := l.r.keys.All()
	wch, stop := watch.Open(ctx, l.r.cli, l.r.log, start, clientv3.WithRange(end), clientv3.WithRev(rev+1))
	return wch, stop
}

// reportUnfinished tells the observer the age of the oldest transaction
// decided and not yet terminal. It walks the view: once a second, the cost
// of a map walk is small next to the events the view handles.
func (l *leadership) reportUnfinished() {
	var oldest time.Time
	for _, t := range l.active {
		if t.rec.State.Decided() && (oldest.IsZero() || t.rec.Decided.Before(oldest)) {
			oldest = t.rec.Decided
		}
	}
	age := time.Duration(0)
	if !oldest.IsZero() {
		age = max(l.r.opts.now().Sub(oldest), 0)
	}
	l.r.opts.observer.Unfinished(age)
}

// apply folds one key's change into the view: seen live, or found by a
// scan. Until the view of unfinished transactions is built it only
// records; reviews start once it is.
func (l *leadership) apply(ctx context.Context, deleted bool, key, value []byte, rev int64, found bool) {
	k := l.r.keys.Parse(string(key))
	switch k.Kind {
	case protocol.KindRecord:
		if deleted {
			if l.gone != nil {
				l.gone[k.ID] = max(l.gone[k.ID], rev)
			}
			if t := l.active[k.ID]; t != nil && t.rev < rev {
				delete(l.active, k.ID)
			}
			if r, ok := l.terminal[k.ID]; ok && r < rev {
				delete(l.terminal, k.ID)
			}
			return
		}
		rec, err := protocol.DecodeRecord(value)
		if err != nil {
			l.r.log.Warn("undecodable record", zap.String("txid", k.ID), zap.Error(err))
			return
		}
		l.record(ctx, rec, rev, found)
	case protocol.KindVote:
		if t := l.active[k.ID]; t != nil && !deleted {
			t.voted[k.Participant] = true
		}
	case protocol.KindParticipant:
		if rev <= l.regRev[k.Participant] {
			return // older than what the view holds
		}
		l.regRev[k.Participant] = rev
		l.registered[k.Participant] = !deleted
		if deleted && l.ready {
			for id, t := range l.active {
				if t.rec.State != protocol.StateCommitting && t.rec.Has(k.Participant) && !t.voted[k.Participant] {
					l.review(ctx, id)
				}
			}
		}
	case protocol.KindInbox:
		// An acknowledgement may leave only abandoned participants.
		if t := l.active[k.ID]; deleted && l.ready && t != nil && t.rec.State == protocol.StateAborting {
			l.review(ctx, k.ID)
		}
	}
}

func (l *leadership) record(ctx context.Context, rec protocol.Record, rev int64, found bool) {
	t := l.active[rec.ID]
	if r, ok := l.terminal[rec.ID]; ok && r >= rev || t != nil && t.rev >= rev || l.gone[rec.ID] >= rev {
		return // older than what the view holds, or than its deletion
	}
	if rec.State.Terminal() {
		delete(l.active, rec.ID)
		l.terminal[rec.ID] = rev
		// Retention runs on this leader's clock, not on the clock of the
		// participant that wrote Finished: seen live, the record finished
		// now; found by a scan, it finished when it says, but not in the
		// future.
		finished := l.r.opts.now()
		if found && rec.Finished.Before(finished) {
			finished = rec.Finished
		}
		e := gcEntry{id: rec.ID, rev: rev, finished: finished, inboxesLeft: inboxesLeft(rec), trace: storedTrace(rec)}
		if found && l.gone != nil {
			l.backlog = append(l.backlog, e) // out of order: queued when the scan ends
		} else {
			l.gcQueue = append(l.gcQueue, e)
		}
		return
	}
	if t == nil {
		t = &tracked{voted: make(map[string]bool)}
		l.active[rec.ID] = t
	}
	wasUndecided := t.rec.State == protocol.StatePreparing
	t.rec, t.rev = rec, rev
	if rec.State == protocol.StatePreparing {
		l.timers.push(rec.Deadline, rec.ID)
		if l.ready {
			l.review(ctx, rec.ID)
		}
		return
	}
	if wasUndecided && l.ready {
		l.r.opts.observer.Decided(rec.ID, rec.State.Outcome(), rec.Cause, rec.Decided.Sub(rec.Created))
	}
	if rec.State == protocol.StateAborting {
		l.timers.push(rec.Decided.Add(l.r.opts.leaseTTL), rec.ID)
	}
}

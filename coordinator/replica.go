package coordinator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/concord-tx/concord/internal/session"
	"github.com/concord-tx/concord/internal/watch"
	"github.com/concord-tx/concord/protocol"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Replica is one coordinator replica's recovery loop. Replicas elect a
// leader among themselves; the leader watches every transaction and aborts
// those past their deadline or whose unvoted participant is gone, and
// deletes terminal records after the retention window. When the leader's
// lease expires another replica takes over within one lease TTL.
//
// Safety does not rest on the election: every action is a Txn guarded by
// the record's revision, and also by the leader's own election key, so a
// replica that was paused past its lease cannot act on what it believed
// before.
type Replica struct {
	cli    *clientv3.Client
	opts   options
	keys   protocol.Keys
	log    *zap.Logger
	cancel context.CancelFunc
	done   chan struct{}
	leader atomic.Bool
}

// NewReplica starts a replica that campaigns for leadership until Close.
// cli is not closed by the replica.
func NewReplica(cli *clientv3.Client, opts ...Option) (*Replica, error) {
	o, err := newOptions(forReplica, opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Replica{cli: cli, opts: o, keys: o.keys, log: o.logger, cancel: cancel, done: make(chan struct{})}
	go r.run(ctx)
	return r, nil
}

// IsLeader reports whether this replica is currently leading.
func (r *Replica) IsLeader() bool { return r.leader.Load() }

// Done is closed when the replica has stopped.
func (r *Replica) Done() <-chan struct{} { return r.done }

// Close stops the replica, resigns leadership, revokes its lease so another
// replica takes over at once, and waits for its goroutines.
func (r *Replica) Close() error {
	r.cancel()
	<-r.done
	return nil
}

func (r *Replica) run(ctx context.Context) {
	defer close(r.done)
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		start := time.Now()
		err := r.term(ctx)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > r.opts.leaseTTL {
			// The term ran: this loss is not one of a series of failures.
			backoff = 100 * time.Millisecond
		}
		r.log.Warn("replica lost its session, starting again", zap.Error(err), zap.Duration("backoff", backoff))
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// term is one lease of this replica: campaign, then lead until the lease is
// lost or ctx ends. The session (and its lease) is revoked on the way out.
func (r *Replica) term(ctx context.Context) error {
	sess, err := session.New(ctx, r.cli, session.Config{TTL: r.opts.leaseTTL, RequestTimeout: r.opts.requestTimeout, Logger: r.log})
	if err != nil {
		return fmt.Errorf("session: %w", err)
	}
	defer func() {
		// Revoke so a standby takes over now rather than after the TTL.
		if err := session.Revoke(r.cli, sess.Lease(), r.opts.requestTimeout); err != nil {
			r.log.Debug("revoke replica lease", zap.Error(err))
		}
		sess.Orphan()
	}()
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-sess.Done():
			cancel()
		case <-cctx.Done():
		}
	}()
	c, err := r.campaign(cctx, sess.Lease())
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("campaign: %w", err)
	}
	r.leader.Store(true)
	defer r.leader.Store(false)
	fence := c.fence()
	r.log.Info("leading", zap.Int64("lease", int64(sess.Lease())), zap.Int64("rev", c.rev))
	for cctx.Err() == nil {
		l := newLeadership(r, fence)
		err := l.run(cctx)
		if cctx.Err() == nil {
			r.log.Info("rebuilding view", zap.Error(err))
			select {
			case <-cctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	select {
	case <-sess.Done():
		return errors.New("lease expired")
	default:
		return ctx.Err()
	}
}

// actionWorkers bounds the aborts and deletions a leader runs at once.
const actionWorkers = 8

// leadership is the leader's view of every transaction that is not
// terminal, rebuilt from a scan and kept current by one watch. It lives in
// one goroutine (run); actions run on a pool and report back.
type leadership struct {
	r     *Replica
	fence clientv3.Cmp

	ready      bool // the scan is complete: changes may trigger actions
	active     map[string]*tracked
	terminal   map[string]int64 // id → ModRevision of its terminal record
	registered map[string]bool
	regRev     map[string]int64 // participant → revision of the last change seen
	timers     deadlineHeap
	gcQueue    []gcEntry
	results    chan actionResult
	actions    chan func(context.Context) actionResult
}

type tracked struct {
	rec     protocol.Record
	rev     int64 // ModRevision of the record
	voted   map[string]bool
	pending bool // an action is in flight
	recheck bool // a review came while it was: review again when it ends
}

type gcEntry struct {
	id           string
	rev          int64
	finished     time.Time // on the leader's clock
	participants []string  // whose inbox keys may be left (abandoned ones)
}

type actionResult struct {
	id    string
	err   error
	retry time.Time
}

func newLeadership(r *Replica, fence clientv3.Cmp) *leadership {
	return &leadership{
		r:          r,
		fence:      fence,
		active:     make(map[string]*tracked),
		terminal:   make(map[string]int64),
		registered: make(map[string]bool),
		regRev:     make(map[string]int64),
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
	// The watch starts before the scan, from the revision just read, and
	// the scan reads every page at the latest revision: a compaction during
	// a long scan cannot then invalidate it. The view keeps, for each key,
	// the newest revision it has seen, so page reads and the watch's
	// buffered events converge whatever order they come in.
	rev, err := currentRevision(ctx, l.r.cli, l.r.opts) // the watch has passed on everything up to here
	if err != nil {
		return fmt.Errorf("read revision: %w", err)
	}
	start, end := l.r.keys.All()
	wch, stop := watch.Open(ctx, l.r.cli, l.r.log, start, clientv3.WithRange(end), clientv3.WithRev(rev+1))
	defer func() { stop() }()
	if err := l.scan(ctx); err != nil {
		return err
	}
	for range actionWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case act := <-l.actions:
					res := act(ctx)
					select {
					case l.results <- res:
					case <-ctx.Done():
						return
					}
				}
			}
		}()
	}
	l.ready = true
	for id := range l.active {
		l.review(ctx, id)
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	gcTick := time.NewTicker(l.gcInterval())
	defer gcTick.Stop()
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
				// Its member fell behind: go on from here through another.
				stop()
				wch, stop = watch.Open(ctx, l.r.cli, l.r.log, start, clientv3.WithRange(end), clientv3.WithRev(rev+1))
				continue
			}
			if err := resp.Err(); err != nil {
				return fmt.Errorf("watch: %w", err)
			}
			for _, ev := range resp.Events {
				rev = ev.Kv.ModRevision
				l.apply(ctx, ev.Type == clientv3.EventTypeDelete, ev.Kv.Key, ev.Kv.Value, ev.Kv.ModRevision)
			}
		case res := <-l.results:
			l.done(res)
		case <-timer.C:
			l.expire(ctx)
		case <-gcTick.C:
			l.collect(ctx)
		}
	}
}

// scan reads every registration, record and vote, page by page, each page
// at the latest revision.
func (l *leadership) scan(ctx context.Context) error {
	cli, keys := l.r.cli, l.r.keys
	get := func(key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
		return retry(ctx, l.r.opts, "get", func(ctx context.Context) (*clientv3.GetResponse, error) {
			return cli.Get(ctx, key, opts...)
		})
	}
	regs, err := get(keys.Participants(), clientv3.WithPrefix())
	if err != nil {
		return fmt.Errorf("scan registrations: %w", err)
	}
	for _, kv := range regs.Kvs {
		l.apply(ctx, false, kv.Key, kv.Value, kv.ModRevision)
	}
	start, end := keys.Records()
	for {
		resp, err := get(start, clientv3.WithRange(end), clientv3.WithLimit(1000))
		if err != nil {
			return fmt.Errorf("scan records: %w", err)
		}
		for _, kv := range resp.Kvs {
			l.apply(ctx, false, kv.Key, kv.Value, kv.ModRevision)
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		start = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	slices.SortFunc(l.gcQueue, func(a, b gcEntry) int { return a.finished.Compare(b.finished) })
	l.r.log.Info("view built", zap.Int("active", len(l.active)), zap.Int("terminal", len(l.gcQueue)), zap.Int("participants", len(l.registered)))
	return nil
}

// apply folds one key's change into the view. Until the scan is complete it
// only records; reviews start once the view is whole.
func (l *leadership) apply(ctx context.Context, deleted bool, key, value []byte, rev int64) {
	k := l.r.keys.Parse(string(key))
	switch k.Kind {
	case protocol.KindRecord:
		if deleted {
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
		l.record(ctx, rec, rev)
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

func (l *leadership) record(ctx context.Context, rec protocol.Record, rev int64) {
	t := l.active[rec.ID]
	if r, ok := l.terminal[rec.ID]; ok && r >= rev || t != nil && t.rev >= rev {
		return // older than what the view holds
	}
	if rec.State.Terminal() {
		delete(l.active, rec.ID)
		l.terminal[rec.ID] = rev
		// Retention runs on this leader's clock, not on the clock of the
		// participant that wrote Finished: seen live, the record finished
		// now; found by the scan, it finished when it says, but not in the
		// future.
		finished := l.r.opts.now()
		if !l.ready && rec.Finished.Before(finished) {
			finished = rec.Finished
		}
		l.gcQueue = append(l.gcQueue, gcEntry{id: rec.ID, rev: rev, finished: finished, participants: rec.Participants})
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

// review aborts transaction id if it is undecided and past its deadline, or
// if a participant that has not voted is not registered; and finishes an
// aborting one that waits only for participants that are gone.
func (l *leadership) review(ctx context.Context, id string) {
	t := l.active[id]
	if t == nil {
		return
	}
	if t.pending {
		// The action may fail its compares without changing the record
		// (a participant registered again), and the timer that brought us
		// here is spent: review once more when it ends.
		t.recheck = true
		return
	}
	o := l.r.opts
	rec, rev := t.rec, t.rev
	if rec.State == protocol.StateAborting {
		if grace := rec.Decided.Add(o.leaseTTL); o.now().Before(grace) {
			l.timers.push(grace, id)
			return
		}
		l.act(ctx, t, func(ctx context.Context) actionResult { return l.finishAbandoned(ctx, rec, rev) })
		return
	}
	if rec.State != protocol.StatePreparing {
		return
	}
	if !o.now().Before(rec.Deadline) {
		reason := fmt.Sprintf("deadline exceeded: not every participant voted within %v", rec.Deadline.Sub(rec.Created).Round(time.Millisecond))
		l.act(ctx, t, func(ctx context.Context) actionResult {
			return l.abort(ctx, rec, rev, nil, protocol.CauseDeadline, reason, "abort_deadline")
		})
		return
	}
	for _, p := range rec.Participants {
		if l.registered[p] || t.voted[p] {
			continue
		}
		keys := o.keys
		extra := []clientv3.Cmp{
			clientv3.Compare(clientv3.CreateRevision(keys.Vote(rec.ID, p)), "=", 0),
			clientv3.Compare(clientv3.CreateRevision(keys.Participant(p)), "=", 0),
		}
		reason := fmt.Sprintf("participant %s is not registered and had not voted", p)
		l.act(ctx, t, func(ctx context.Context) actionResult {
			return l.abort(ctx, rec, rev, extra, protocol.CauseParticipantLost, reason, "abort_participant_lost")
		})
		return
	}
}

func (l *leadership) abort(ctx context.Context, rec protocol.Record, rev int64, extra []clientv3.Cmp, cause protocol.Cause, reason, action string) actionResult {
	_, ok, err := decideAbort(ctx, l.r.cli, l.r.opts, rec, rev, append(extra, l.fence), cause, reason)
	if err != nil {
		l.r.log.Warn("abort failed", zap.String("txid", rec.ID), zap.String("cause", string(cause)), zap.Error(err))
		return actionResult{id: rec.ID, err: err, retry: l.r.opts.now().Add(time.Second)}
	}
	if ok {
		l.r.opts.observer.Recovery(action, 1)
		l.r.log.Info("aborted", zap.String("txid", rec.ID), zap.String("cause", string(cause)), zap.String("reason", reason))
	}
	return actionResult{id: rec.ID}
}

// finishAbandoned makes an aborting transaction aborted when every
// participant that has not acknowledged it neither voted nor is registered.
// Such a participant holds nothing the outcome depends on: it never voted
// yes. Its inbox key is left in place, so that if it did call Prepare
// before it went away, it still finds the abort when it returns. Without
// this, a transaction naming a participant that never runs would stay
// aborting for ever.
//
// Both Txns stay within etcd's 128 operations for any number of branches
// up to protocol.DefaultMaxBranches: the read takes one operation per
// branch and two ranges, the finish one compare per participant gone and
// two more.
func (l *leadership) finishAbandoned(ctx context.Context, rec protocol.Record, rev int64) actionResult {
	keys, o := l.r.keys, l.r.opts
	reads := make([]clientv3.Op, 0, len(rec.Participants)+2)
	for _, p := range rec.Participants {
		reads = append(reads, clientv3.OpGet(keys.Inbox(p, rec.ID), clientv3.WithCountOnly()))
	}
	reads = append(reads,
		clientv3.OpGet(keys.TxPrefix(rec.ID), clientv3.WithPrefix(), clientv3.WithKeysOnly()),
		clientv3.OpGet(keys.Participants(), clientv3.WithPrefix(), clientv3.WithKeysOnly()))
	resp, err := retry(ctx, o, "txn", func(ctx context.Context) (*clientv3.TxnResponse, error) {
		return l.r.cli.Txn(ctx).Then(reads...).Commit()
	})
	later := actionResult{id: rec.ID, err: errors.New("waiting for participants"), retry: o.now().Add(5 * o.leaseTTL)}
	if err != nil {
		l.r.log.Warn("reading an aborting transaction's participants failed", zap.String("txid", rec.ID), zap.Error(err))
		return later
	}
	n := len(rec.Participants)
	present := make(map[string]bool) // voted, or registered
	for _, res := range resp.Responses[n:] {
		for _, kv := range res.GetResponseRange().Kvs {
			if k := keys.Parse(string(kv.Key)); k.Kind == protocol.KindVote || k.Kind == protocol.KindParticipant {
				present[k.Participant] = true
			}
		}
	}
	// The record's compare also keeps what was read true: inbox keys are
	// written only with the record (by the begin and the decision) and
	// after that only deleted, and a vote lands only on the undecided
	// record. Only registrations can change.
	cmps := []clientv3.Cmp{l.fence, clientv3.Compare(clientv3.ModRevision(keys.Record(rec.ID)), "=", rev)}
	var gone []string
	for i, p := range rec.Participants {
		if resp.Responses[i].GetResponseRange().Count == 0 {
			continue // acknowledged
		}
		if present[p] {
			return later // it voted or it is running: it acknowledges itself
		}
		gone = append(gone, p)
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(keys.Participant(p)), "=", 0))
	}
	if len(gone) == 0 {
		return actionResult{id: rec.ID} // the last acknowledgement finishes it
	}
	_, fin, err := keys.FinishWrite(rec, o.now())
	if err != nil {
		return actionResult{id: rec.ID, err: err, retry: o.now().Add(o.leaseTTL)}
	}
	done, err := retry(ctx, o, "txn", func(ctx context.Context) (*clientv3.TxnResponse, error) {
		return l.r.cli.Txn(ctx).If(cmps...).Then(clientv3.OpPut(fin.Key, fin.Value)).Commit()
	})
	if err != nil {
		l.r.log.Warn("finishing an aborting transaction failed", zap.String("txid", rec.ID), zap.Error(err))
		return later
	}
	if !done.Succeeded {
		return later
	}
	o.observer.Recovery("finish_abandoned", 1)
	l.r.log.Info("aborted without acknowledgements from participants that are gone", zap.String("txid", rec.ID), zap.Strings("participants", gone))
	return actionResult{id: rec.ID}
}

// act hands f to the worker pool, or drops it if the pool is busy; the
// transaction is reviewed again when a result comes back or a timer fires.
func (l *leadership) act(ctx context.Context, t *tracked, f func(context.Context) actionResult) {
	t.pending = true
	select {
	case l.actions <- f:
	case <-ctx.Done():
	default:
		// All workers busy: run it inline rather than lose it. The view
		// waits, which is the back-pressure we want.
		res := f(ctx)
		l.done(res)
	}
}

func (l *leadership) done(res actionResult) {
	t := l.active[res.id]
	if t == nil {
		return
	}
	t.pending = false
	switch {
	case t.recheck:
		t.recheck = false
		l.timers.push(l.r.opts.now(), res.id)
	case res.err != nil:
		l.timers.push(res.retry, res.id)
	}
}

// nextTimer is how long until the earliest deadline.
func (l *leadership) nextTimer() time.Duration {
	at, ok := l.timers.peek()
	if !ok {
		return time.Hour
	}
	return max(at.Sub(l.r.opts.now()), time.Millisecond)
}

// expire reviews every transaction whose timer has passed.
func (l *leadership) expire(ctx context.Context) {
	now := l.r.opts.now()
	for {
		at, ok := l.timers.peek()
		if !ok || at.After(now) {
			return
		}
		id := l.timers.pop()
		l.review(ctx, id)
	}
}

func (l *leadership) gcInterval() time.Duration {
	return min(max(l.r.opts.retention/10, 100*time.Millisecond), 10*time.Second)
}

// collect deletes terminal records older than the retention window, with
// their votes, many per Txn.
func (l *leadership) collect(ctx context.Context) {
	cutoff := l.r.opts.now().Add(-l.r.opts.retention)
	n := 0
	for n < len(l.gcQueue) && l.gcQueue[n].finished.Before(cutoff) {
		n++
	}
	if n == 0 {
		return
	}
	batch := l.gcQueue[:n]
	l.gcQueue = l.gcQueue[n:]
	deleted := 0
	for len(batch) > 0 {
		// Within etcd's default 128 operations a Txn: each record costs
		// its own delete, its votes' and one per participant's inbox key.
		n, ops := 0, 0
		for n < len(batch) && (n == 0 || ops+gcOps(batch[n]) <= 128) {
			ops += gcOps(batch[n])
			n++
		}
		deleted += l.delete(ctx, batch[:n])
		batch = batch[n:]
	}
	if deleted > 0 {
		l.r.opts.observer.Recovery("gc", deleted)
		l.r.log.Debug("deleted terminal records", zap.Int("n", deleted))
	}
}

func gcOps(e gcEntry) int { return 2 + len(e.participants) }

// delete removes a chunk of terminal records in one Txn, with their votes
// and the inbox keys that participants which never acknowledged left
// behind; if any of them changed meanwhile, it falls back to one Txn each
// so the rest still go.
func (l *leadership) delete(ctx context.Context, chunk []gcEntry) int {
	keys := l.r.keys
	txn := func(entries []gcEntry) (bool, error) {
		cmps := []clientv3.Cmp{l.fence}
		var ops []clientv3.Op
		for _, e := range entries {
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(keys.Record(e.id)), "=", e.rev))
			ops = append(ops, clientv3.OpDelete(keys.Record(e.id)), clientv3.OpDelete(keys.TxPrefix(e.id), clientv3.WithPrefix()))
			for _, p := range e.participants {
				ops = append(ops, clientv3.OpDelete(keys.Inbox(p, e.id)))
			}
		}
		resp, err := retry(ctx, l.r.opts, "txn", func(ctx context.Context) (*clientv3.TxnResponse, error) {
			return l.r.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
		})
		if err != nil {
			return false, err
		}
		return resp.Succeeded, nil
	}
	ok, err := txn(chunk)
	if err != nil {
		l.r.log.Warn("gc failed; will retry at the next view", zap.Error(err))
		return 0
	}
	if ok {
		return len(chunk)
	}
	n := 0
	for _, e := range chunk {
		if ok, err := txn([]gcEntry{e}); err == nil && ok {
			n++
		}
	}
	return n
}

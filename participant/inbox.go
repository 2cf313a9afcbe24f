package participant

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/concord-tx/concord/internal/batch"
	"github.com/concord-tx/concord/internal/retry"
	"github.com/concord-tx/concord/internal/spare"
	"github.com/concord-tx/concord/internal/tracing"
	"github.com/concord-tx/concord/internal/watch"
	"github.com/concord-tx/concord/protocol"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
)

// inbox serves one instance's inbox for one term (one lease): it lists the
// inbox, watches it from the revision listed, and hands each message to the
// transaction's runner: a goroutine that runs while the transaction has a
// message to handle and handles them in order, so calls for one transaction
// never overlap while different transactions never wait for each other
// (the goroutines are kept for the next runner, see internal/spare). A
// semaphore bounds the handler calls in flight.
type inbox struct {
	p      *Participant
	lease  clientv3.LeaseID
	fence  *pb.Compare    // LeaseValue(registration) == lease
	writer *batch.Writer  // votes and acknowledgements, group-committed under the fence
	slots  chan struct{}  // one per handler call in flight
	wg     sync.WaitGroup // runners
	spare  *spare.Pool    // runs the runners

	mu struct {
		sync.Mutex
		// latest is the ModRevision of the newest message handed to a
		// worker, per transaction: a message is handled once per term even
		// when a re-list shows it again, and an older message still queued
		// is skipped once a newer one (the decision) is known.
		latest map[string]int64
		// preparing cancels the Prepare call in flight per transaction, for
		// when its decision arrives first: the vote would be refused anyway.
		preparing map[string]context.CancelFunc
		// runners holds, per transaction with a runner, the message it is
		// to handle next (nil once taken).
		runners map[string]*message
		// acknowledged holds the messages acknowledged (their
		// ModRevision, by transaction) that a listing or the watch may
		// still show: those acknowledged while a listing ran, which it
		// may have read before the acknowledgement landed, and those
		// newer than what the watch has delivered, whose event may still
		// be on its way (after a listing handed them out first). An entry
		// goes once no listing runs and the watch has passed it.
		acknowledged map[string]int64
		listing      bool
		watched      int64 // the revision of the last event the watch delivered
	}
}

// message is one inbox key as read from etcd.
type message struct {
	protocol.Message
	id      string
	mod     int64 // ModRevision: the begin's revision R for prepare, the decision's otherwise
	begun   int64 // R: the begin's revision; 0 if a decision does not say
	catchUp bool  // found by listing, not by the watch: maybe seen by a previous term
}

func newInbox(p *Participant, lease clientv3.LeaseID) *inbox {
	in := &inbox{
		p:     p,
		lease: lease,
		fence: batch.LeaseIs(p.keys.Participant(p.name), lease),
		slots: make(chan struct{}, p.opts.workers),
	}
	in.mu.latest = make(map[string]int64)
	in.mu.acknowledged = make(map[string]int64)
	in.mu.preparing = make(map[string]context.CancelFunc)
	in.mu.runners = make(map[string]*message)
	return in
}

func (in *inbox) serve(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	in.writer = batch.New(in.p.cli, batch.Config{Guard: []*pb.Compare{in.fence}, Retry: in.p.policy(), LazyDelay: in.p.opts.ackDelay})
	in.spare = spare.New(in.p.opts.workers)
	defer func() {
		cancel()
		// First the writer: a runner may be sending a batch, which retries
		// until the writer closes; those that submit later get ErrClosed.
		in.writer.Close()
		in.wg.Wait()
		in.spare.Close()
	}()
	rev, err := in.list(ctx)
	if err != nil {
		return err
	}
	in.p.setActive(true)
	resync := time.NewTicker(in.p.opts.resync)
	defer resync.Stop()
	prefix := in.p.keys.InboxPrefix(in.p.name)
	for ctx.Err() == nil {
		// Without deletions: they are this instance's acknowledgements,
		// forgotten when their answer comes (see acknowledged), and etcd
		// sends no response whose events are all filtered out.
		in.watchedTo(rev) // nothing older comes from a watch that starts after rev
		wch, stop := watch.Open(ctx, in.p.cli, in.p.log, prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1), clientv3.WithFilterDelete())
		rev, err = in.follow(ctx, wch, resync.C, rev)
		stop()
		if err != nil {
			return err
		}
	}
	return ctx.Err()
}

// follow consumes one watch until it ends, returning the revision to resume
// from.
func (in *inbox) follow(ctx context.Context, wch clientv3.WatchChan, resync <-chan time.Time, rev int64) (int64, error) {
	for {
		select {
		case <-ctx.Done():
			return rev, nil
		case <-resync:
			// Safety net: anything the watch missed is in the inbox.
			if _, err := in.list(ctx); err != nil && ctx.Err() == nil {
				in.p.log.Warn("inbox resync failed", zap.Error(err))
			}
		case resp, ok := <-wch:
			if !ok {
				return rev, nil
			}
			if resp.CompactRevision != 0 {
				in.p.log.Info("inbox watch compacted, listing again", zap.Int64("rev", rev), zap.Int64("compacted", resp.CompactRevision))
				return in.list(ctx)
			}
			if err := resp.Err(); err != nil {
				in.p.log.Debug("inbox watch ended", zap.Error(err), zap.Int64("rev", rev))
				select {
				case <-ctx.Done():
				case <-time.After(in.p.opts.minBackoff):
				}
				return rev, nil
			}
			for _, ev := range resp.Events {
				rev = ev.Kv.ModRevision
				in.dispatch(ctx, ev.Kv, false)
			}
			in.watchedTo(rev)
		}
	}
}

// list reads the whole inbox and dispatches what is new; it returns the
// revision it read at.
func (in *inbox) list(ctx context.Context) (int64, error) {
	in.setListing(true)
	defer in.setListing(false)
	resp, err := retry.Do(ctx, in.p.policy(), func(ctx context.Context) (*clientv3.GetResponse, error) {
		return in.p.cli.Get(ctx, in.p.keys.InboxPrefix(in.p.name), clientv3.WithPrefix())
	})
	if err != nil {
		return 0, fmt.Errorf("list inbox: %w", err)
	}
	present := make(map[string]bool, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		present[in.p.keys.Parse(string(kv.Key)).ID] = true
		in.dispatch(ctx, kv, true)
	}
	// Forget transactions acknowledged while the watch was not looking.
	in.mu.Lock()
	for id, mod := range in.mu.latest {
		if !present[id] && mod <= resp.Header.Revision {
			delete(in.mu.latest, id)
		}
	}
	in.mu.Unlock()
	return resp.Header.Revision, nil
}

// forget forgets message m, acknowledged: its key is gone.
func (in *inbox) forget(m message) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.mu.latest[m.id] <= m.mod {
		delete(in.mu.latest, m.id)
	}
	if in.mu.listing || m.mod > in.mu.watched {
		in.mu.acknowledged[m.id] = max(in.mu.acknowledged[m.id], m.mod)
	}
}

// watchedTo records that the watch has delivered every event up to rev.
func (in *inbox) watchedTo(rev int64) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.mu.watched = max(in.mu.watched, rev)
	in.pruneLocked()
}

// setListing records whether a listing runs.
func (in *inbox) setListing(on bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.mu.listing = on
	in.pruneLocked()
}

// pruneLocked drops what acknowledged need not hold any longer: with no
// listing running, the messages the watch has passed.
func (in *inbox) pruneLocked() {
	if in.mu.listing {
		return
	}
	for id, mod := range in.mu.acknowledged {
		if mod <= in.mu.watched {
			delete(in.mu.acknowledged, id)
		}
	}
}

// dispatch queues a message unless it, or a newer one, was queued already.
func (in *inbox) dispatch(ctx context.Context, kv *mvccpb.KeyValue, catchUp bool) {
	k := in.p.keys.Parse(string(kv.Key))
	if k.Kind != protocol.KindInbox {
		return
	}
	msg, err := protocol.DecodeMessage(kv.Value)
	if err != nil {
		in.p.log.Error("undecodable inbox message, skipped", zap.String("txid", k.ID), zap.Error(err))
		return
	}
	in.mu.Lock()
	if in.mu.latest[k.ID] >= kv.ModRevision || in.mu.acknowledged[k.ID] >= kv.ModRevision {
		in.mu.Unlock()
		return
	}
	in.mu.latest[k.ID] = kv.ModRevision
	if cancel := in.mu.preparing[k.ID]; cancel != nil && msg.Op != protocol.OpPrepare {
		cancel()
	}
	// A decision written before messages carried R leaves it 0, unknown:
	// the key's CreateRevision is R only if the begin created the key, not
	// if it overwrote one left over from an earlier transaction.
	m := &message{Message: msg, id: k.ID, mod: kv.ModRevision, begun: msg.Begun, catchUp: catchUp}
	if msg.Op == protocol.OpPrepare {
		m.begun = kv.ModRevision
	}
	if _, running := in.mu.runners[k.ID]; running {
		in.mu.runners[k.ID] = m // supersedes anything not yet taken
		in.mu.Unlock()
		return
	}
	in.mu.runners[k.ID] = m
	in.wg.Add(1)
	in.mu.Unlock()
	in.spare.Go(func() { in.run(ctx, k.ID) })
}

// run handles transaction id's messages, in order, until none is left.
func (in *inbox) run(ctx context.Context, id string) {
	defer in.wg.Done()
	for {
		in.mu.Lock()
		m := in.mu.runners[id]
		if m == nil || ctx.Err() != nil {
			delete(in.mu.runners, id)
			in.mu.Unlock()
			return
		}
		in.mu.runners[id] = nil
		in.mu.Unlock()
		in.handle(ctx, *m)
	}
}

// call runs a handler in one of the slots.
func (in *inbox) call(ctx context.Context, f func() error) error {
	select {
	case in.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-in.slots }()
	return f()
}

// stale reports whether a newer message for the transaction was queued.
func (in *inbox) stale(m message) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.mu.latest[m.id] > m.mod
}

func (in *inbox) handle(ctx context.Context, m message) {
	if in.stale(m) {
		return
	}
	log := in.p.log.With(zap.String("txid", m.id), zap.String("op", string(m.Op)))
	ctx, span, log := in.startMessage(ctx, m, log)
	var err error
	switch m.Op {
	case protocol.OpPrepare:
		err = in.prepare(ctx, m, log)
	default:
		err = in.apply(ctx, m, log)
	}
	tracing.End(span, err)
	if err != nil && ctx.Err() == nil {
		log.Warn("message not handled; it stays in the inbox", zap.Error(err))
	}
}

func (in *inbox) prepare(ctx context.Context, m message, log *zap.Logger) error {
	rec := m.Record
	span := trace.SpanFromContext(ctx)
	if !time.Now().Before(rec.Deadline) {
		log.Debug("prepare after the deadline: waiting for the abort")
		span.AddEvent("not prepared: past the deadline")
		return nil
	}
	if m.catchUp {
		// A previous term may have voted already.
		resp, err := retry.Do(ctx, in.p.policy(), func(ctx context.Context) (*clientv3.GetResponse, error) {
			return in.p.cli.Get(ctx, in.p.keys.Vote(m.id, in.p.name), clientv3.WithCountOnly())
		})
		if err != nil {
			return err
		}
		if resp.Count > 0 {
			span.AddEvent("not prepared: voted before")
			return nil
		}
	}
	herr := in.callPrepare(ctx, m)
	for backoff := in.p.opts.minBackoff; errors.Is(herr, ErrRetry) && ctx.Err() == nil && !in.stale(m) &&
		time.Now().Add(backoff).Before(rec.Deadline); backoff = min(2*backoff, in.p.opts.maxBackoff) {
		log.Warn("prepare asked to be retried", zap.Error(herr), zap.Duration("backoff", backoff))
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		herr = in.callPrepare(ctx, m)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if herr != nil {
		span.RecordError(herr)
		span.SetStatus(codes.Error, herr.Error())
	}
	if in.stale(m) {
		log.Debug("decided while preparing: not voting")
		span.AddEvent("not voting: decided while preparing")
		return nil
	}
	if errors.Is(herr, ErrRetry) {
		log.Warn("prepare still asks to be retried at the deadline: not voting", zap.Error(herr))
		return nil
	}
	if herr != nil && !time.Now().Before(m.Record.Deadline) {
		// Too late to vote: the coordinator aborts at the deadline.
		log.Info("prepare did not finish before the deadline: not voting", zap.Error(herr))
		span.AddEvent("not voting: past the deadline")
		return nil
	}
	v := protocol.Vote{Yes: herr == nil}
	if herr != nil {
		v.Reason = herr.Error()
	}
	if span.IsRecording() {
		span.SetAttributes(tracing.AttrVote.String(voteName(v)))
		if !v.Yes {
			span.SetAttributes(tracing.AttrVoteReason.String(v.Reason))
		}
	}
	return in.vote(ctx, m, v, log)
}

// callPrepare calls the Prepare handler with a ctx that ends at the
// transaction's deadline or when its decision arrives.
func (in *inbox) callPrepare(ctx context.Context, m message) error {
	pctx, cancel := context.WithDeadline(ctx, m.Record.Deadline)
	defer cancel()
	in.mu.Lock()
	in.mu.preparing[m.id] = cancel
	in.mu.Unlock()
	defer func() {
		in.mu.Lock()
		delete(in.mu.preparing, m.id)
		in.mu.Unlock()
	}()
	if in.stale(m) {
		return context.Canceled
	}
	rec := m.Record
	return in.call(pctx, func() error {
		return in.p.h.Prepare(pctx, Tx{ID: m.id, Revision: m.begun, Participants: rec.Participants, Deadline: rec.Deadline, Payload: m.Payload})
	})
}

func (in *inbox) apply(ctx context.Context, m message, log *zap.Logger) error {
	rec := m.Record
	tx := Tx{ID: m.id, Revision: m.begun, Participants: rec.Participants, Deadline: rec.Deadline, Reason: rec.Reason}
	f := in.p.h.Commit
	if m.Op == protocol.OpAbort {
		f = in.p.h.Abort
	}
	backoff := in.p.opts.minBackoff
	var fail failureReport
	for {
		err := in.call(ctx, func() error { return f(ctx, tx) })
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		in.reportFailure(ctx, m, &fail, err, log)
		log.Warn("handler failed, retrying", zap.Error(err), zap.Duration("backoff", backoff), zap.Int("attempts", fail.attempts))
		trace.SpanFromContext(ctx).AddEvent("handler failed, retrying", trace.WithAttributes(attribute.String("exception.message", err.Error())))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, in.p.opts.maxBackoff)
	}
	// A report may be in etcd if this term failed, or if a previous term
	// did (the message was found by listing): the acknowledgement clears
	// it.
	return in.ack(ctx, m, fail.attempts > 0 || m.catchUp, log)
}

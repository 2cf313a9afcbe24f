package batch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/concord-tx/concord/internal/retry"
	"github.com/concord-tx/concord/internal/spare"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Errors returned by Do.
var (
	ErrClosed      = errors.New("batch: writer closed")
	ErrGuardFailed = errors.New("batch: guard compare failed")
)

// Config configures a Writer.
type Config struct {
	// Guard is compared before any operation of a batch runs (for example
	// a participant's fencing compare). If it fails, every operation of the
	// batch fails with ErrGuardFailed.
	Guard []*pb.Compare
	// MaxOps is etcd's --max-txn-ops (default 128), and MaxBytes bounds a
	// batch's keys and values, below etcd's --max-request-bytes (default
	// 1 MiB). Against an etcd with lower limits, a batch refused as too
	// large goes one operation a Txn, and later batches hold half as
	// much: the writer finds etcd's limits within a few refusals.
	MaxOps   int
	MaxBytes int
	// MaxInFlight bounds the batches outstanding at once (default 2).
	MaxInFlight int
	// ExtraBatchAt lets one batch more than MaxInFlight go once this many
	// operations wait (default 16; negative: never). Under load the
	// pipeline gets deeper while each batch stays large; a light load,
	// whose batches would only split, never reaches it.
	ExtraBatchAt int
	// LazyDelay is how long a lazy operation may wait (default 10ms).
	LazyDelay time.Duration
	// Retry is how a batch is retried after a transient error.
	Retry retry.Policy
}

// Op is one guarded operation: If(Cmps).Then(Then).Else(Else), built
// with this package's ModRevisionIs, Put, Txn and the rest.
type Op struct {
	Cmps       []*pb.Compare
	Then, Else []*pb.RequestOp
	Lazy       bool // may wait up to LazyDelay for company
	// Key names what the operation writes (a transaction id). Operations
	// with the same Key never share a batch, since etcd refuses a Txn that
	// writes one key twice; the later one goes in the next batch.
	Key string
}

type item struct {
	ctx   context.Context // the submitter's: an operation still queued when it ends is not sent
	key   string
	op    *pb.TxnRequest
	need  int // operations etcd counts for it, nested levels included
	bytes int
	lazy  bool
	done  Done
}

// Done receives an operation's own response (the nested Txn's), the
// revision of the etcd Txn that carried it, or the error that stopped it.
// It runs on the goroutine that sent the batch, which may be another
// submitter's, and must not block.
type Done func(resp *pb.TxnResponse, rev int64, err error)

// Writer batches operations. An operation that finds a batch slot free is
// sent at once, on the goroutine that submits it, so that at low load an
// operation costs no hand-over between goroutines; operations that find
// every slot taken wait, and the batch that frees a slot takes them along.
// Close stops every batch in flight.
type Writer struct {
	cli    *clientv3.Client
	kv     pb.KVClient // the client's connection's; nil: through cli.KV (see sendTxn)
	cfg    Config
	ctx    context.Context // ends at Close: batches in flight stop retrying
	cancel context.CancelFunc
	wg     sync.WaitGroup // batches in flight
	// senders runs the batches sent on the writer's behalf, on goroutines
	// that keep the stack a send grows.
	senders *spare.Pool

	mu struct {
		sync.Mutex
		maxOps   int // what a batch may hold: the Config's, or less once
		maxBytes int // etcd refused a batch as too large (see refused)
		pending  []*item
		inflight int
		closed   bool
		lazyDue  bool        // a lazy operation has waited LazyDelay
		timer    *time.Timer // set while a lazy operation waits
		timerSeq uint64      // which timer is the current one
	}
}

// New returns a Writer on cli.
func New(cli *clientv3.Client, cfg Config) *Writer {
	if cfg.MaxOps <= 0 {
		cfg.MaxOps = 128
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 1 << 20
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 2
	}
	if cfg.ExtraBatchAt == 0 {
		cfg.ExtraBatchAt = 16
	}
	if cfg.LazyDelay <= 0 {
		cfg.LazyDelay = 10 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &Writer{cli: cli, kv: directKV(cli), cfg: cfg, ctx: ctx, cancel: cancel, senders: spare.New(cfg.MaxInFlight + 1)}
	w.mu.maxOps, w.mu.maxBytes = cfg.MaxOps, cfg.MaxBytes
	return w
}

// Close fails the operations not yet sent with ErrClosed, stops the
// batches in flight and waits for them.
func (w *Writer) Close() {
	w.mu.Lock()
	pending := w.mu.pending
	w.mu.pending, w.mu.closed = nil, true
	if w.mu.timer != nil {
		w.mu.timer.Stop()
	}
	w.mu.Unlock()
	for _, it := range pending {
		it.done(nil, 0, ErrClosed)
	}
	w.cancel()
	w.wg.Wait()
	w.senders.Close()
}

type result struct {
	resp *pb.TxnResponse
	rev  int64
	err  error
}

// Do submits op and waits for its own response (the nested Txn's) and the
// revision of the etcd Txn that carried it. If ctx ends first the operation
// may have been sent: its outcome is unknown. (One still queued then is
// dropped.)
func (w *Writer) Do(ctx context.Context, op Op) (*pb.TxnResponse, int64, error) {
	ch := make(chan result, 1)
	w.Submit(ctx, op, func(resp *pb.TxnResponse, rev int64, err error) { ch <- result{resp, rev, err} })
	select {
	case r := <-ch:
		return r.resp, r.rev, r.err
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	}
}

// Submit queues op; done is called exactly once with the outcome (ctx.Err()
// if ctx has ended already, in which case op is not sent). When a batch
// slot is free and op goes alone, Submit sends it itself, gives up when ctx
// ends (the outcome is then unknown), and returns once done has been
// called; otherwise it returns at once.
func (w *Writer) Submit(ctx context.Context, op Op, done Done) {
	it := &item{ctx: ctx, key: op.Key, op: &pb.TxnRequest{Compare: op.Cmps, Success: op.Then, Failure: op.Else}, lazy: op.Lazy, done: done}
	it.need = need(it.op)
	it.bytes = size(it.op)
	if 1+it.need > w.cfg.MaxOps || it.bytes > w.cfg.MaxBytes {
		done(nil, 0, fmt.Errorf("batch: operation needs %d etcd operations and %d bytes, over the limits %d and %d", 1+it.need, it.bytes, w.cfg.MaxOps, w.cfg.MaxBytes))
		return
	}
	if err := ctx.Err(); err != nil {
		done(nil, 0, err)
		return
	}
	w.mu.Lock()
	if w.mu.closed {
		w.mu.Unlock()
		done(nil, 0, ErrClosed)
		return
	}
	w.mu.pending = append(w.mu.pending, it)
	if it.lazy && w.mu.timer == nil {
		w.mu.timerSeq++
		seq := w.mu.timerSeq
		w.mu.timer = time.AfterFunc(w.cfg.LazyDelay, func() { w.lazyDue(seq) })
	}
	batch := w.takeDueLocked()
	w.mu.Unlock()
	if batch == nil {
		return
	}
	if len(batch) > 1 || batch[0] != it {
		// Others' operations are in it: it is sent on a goroutine of its
		// own, for as long as any of its submitters waits, not by this
		// ctx alone.
		w.senders.Go(func() { w.sendAll(batch) })
		return
	}
	// Only this operation: sent here, and given up when ctx ends.
	sctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(w.ctx, cancel)
	w.send(sctx, batch)
	stop()
	cancel()
	// What is due meanwhile goes on a goroutine of its own: the submitter
	// waits for its own operation only.
	if next := w.finished(); next != nil {
		w.senders.Go(func() { w.sendAll(next) })
	}
}

// lazyDue lets lazy operations go without company, when timer seq fires
// and is still the current one: a timer stopped too late to keep it from
// firing must not let a later lazy operation go early.
func (w *Writer) lazyDue(seq uint64) {
	w.mu.Lock()
	if w.mu.timer == nil || seq != w.mu.timerSeq {
		w.mu.Unlock()
		return
	}
	w.mu.timer = nil
	w.mu.lazyDue = true
	batch := w.takeDueLocked()
	w.mu.Unlock()
	w.sendAll(batch)
}

// takeDueLocked takes the batches that are due and have a free slot,
// counting them in flight. It returns the first for the caller to send and
// starts goroutines for the others.
func (w *Writer) takeDueLocked() []*item {
	first := w.takeLocked()
	if first != nil {
		for more := w.takeLocked(); more != nil; more = w.takeLocked() {
			w.senders.Go(func() { w.sendAll(more) })
		}
	}
	return first
}

// takeLocked takes the next batch if a slot is free and an operation is
// due; nil otherwise.
func (w *Writer) takeLocked() []*item {
	if w.mu.closed || len(w.mu.pending) == 0 || !w.mu.lazyDue && !anyUrgent(w.mu.pending) {
		return nil
	}
	if w.mu.inflight >= w.cfg.MaxInFlight && (w.mu.inflight > w.cfg.MaxInFlight || w.cfg.ExtraBatchAt < 0 || len(w.mu.pending) < w.cfg.ExtraBatchAt) {
		return nil
	}
	var batch []*item
	batch, w.mu.pending = w.take(w.mu.pending)
	w.mu.inflight++
	w.wg.Add(1)
	if len(w.mu.pending) == 0 {
		w.mu.lazyDue = false
		if w.mu.timer != nil {
			w.mu.timer.Stop()
			w.mu.timer = nil
		}
	}
	return batch
}

// finished frees the slot of a batch that has been sent and returns the
// next batch due, for the caller to send.
func (w *Writer) finished() []*item {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.mu.inflight--
	w.wg.Done()
	return w.takeDueLocked()
}

// sendAll sends batch, if any, and then every batch due when the one
// before it comes back.
func (w *Writer) sendAll(batch []*item) {
	for batch != nil {
		ctx, release := w.whileWaitedFor(batch)
		w.send(ctx, batch)
		release()
		batch = w.finished()
	}
}

// whileWaitedFor returns the context a batch sent on the writer's behalf is
// retried under: it ends when the writer closes or when every operation's
// submitter has given up. Nobody then waits for the outcome, and retrying on
// through a long etcd outage would hold the slot while new operations queue
// up behind it. release must be called once the batch is done.
func (w *Writer) whileWaitedFor(batch []*item) (ctx context.Context, release func()) {
	ctx, cancel := context.WithCancel(w.ctx)
	var waiting atomic.Int64
	waiting.Store(int64(len(batch)))
	stops := make([]func() bool, len(batch))
	for i, it := range batch {
		stops[i] = context.AfterFunc(it.ctx, func() {
			if waiting.Add(-1) == 0 {
				cancel()
			}
		})
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}

// ops is what etcd's --max-txn-ops counts for a batch of n operations
// whose most demanding one needs need: the outer Txn counts its
// operations and the guard's compares; each nested level gets what is
// left.
func (w *Writer) ops(n, need int) int { return max(n, len(w.cfg.Guard)) + need }

// refused lowers the writer's limits after etcd refused batch as too
// large for its own: later batches hold at most half as much.
func (w *Writer) refused(batch []*item, err error) {
	need, bytes := 0, 0
	for _, it := range batch {
		need, bytes = max(need, it.need), bytes+it.bytes
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case retry.TooManyOps(err):
		w.mu.maxOps = min(w.mu.maxOps, max(w.ops(len(batch), need)/2, 1))
	case retry.TooLarge(err):
		w.mu.maxBytes = min(w.mu.maxBytes, max(bytes/2, 1))
	}
}

// take picks, in order, the pending operations that fit in one Txn,
// leaving behind any whose key is already taken (and everything after a
// full batch).
func (w *Writer) take(pending []*item) (batch, rest []*item) {
	maxNeed, bytes := 0, 0
	keys := make(map[string]bool)
	for i, it := range pending {
		if it.key != "" && keys[it.key] {
			// Its sibling goes now; it goes in the next batch, lazy or not.
			it.lazy = false
			rest = append(rest, it)
			continue
		}
		nn := max(maxNeed, it.need)
		if len(batch) > 0 && (w.ops(len(batch)+1, nn) > w.mu.maxOps || bytes+it.bytes > w.mu.maxBytes) {
			return batch, append(rest, pending[i:]...)
		}
		maxNeed, bytes = nn, bytes+it.bytes
		keys[it.key] = it.key != ""
		batch = append(batch, it)
	}
	return batch, rest
}

// send sends batch until it is answered, fails for good, or ctx ends, and
// calls each operation's done. Operations whose submitter gave up while
// they waited in the queue are not sent: they fail with their ctx's error,
// and their outcome is certain.
func (w *Writer) send(ctx context.Context, batch []*item) {
	live := batch[:0:0]
	for _, it := range batch {
		if err := it.ctx.Err(); err != nil {
			it.done(nil, 0, err)
		} else {
			live = append(live, it)
		}
	}
	if batch = live; len(batch) == 0 {
		return
	}
	resp, err := w.commit(ctx, batch)
	if err != nil && len(batch) > 1 && !retry.Transient(err) && ctx.Err() == nil {
		// One operation the server refuses must not sink the others. (A
		// full quota is transient, and refuses every one of them alike.)
		w.refused(batch, err)
		for _, it := range batch {
			w.send(ctx, []*item{it})
		}
		return
	}
	switch {
	case err != nil:
		for _, it := range batch {
			it.done(nil, 0, err)
		}
	case !resp.Succeeded:
		for _, it := range batch {
			it.done(nil, 0, ErrGuardFailed)
		}
	default:
		for i, it := range batch {
			it.done(resp.Responses[i].GetResponseTxn(), resp.Header.Revision, nil)
		}
	}
}

func (w *Writer) commit(ctx context.Context, batch []*item) (*pb.TxnResponse, error) {
	ops := make([]*pb.RequestOp, len(batch))
	for i, it := range batch {
		ops[i] = &pb.RequestOp{Request: &pb.RequestOp_RequestTxn{RequestTxn: it.op}}
	}
	req := &pb.TxnRequest{Compare: w.cfg.Guard, Success: ops}
	return retry.Do(ctx, w.cfg.Retry, func(ctx context.Context) (*pb.TxnResponse, error) {
		return w.sendTxn(ctx, req)
	})
}

func anyUrgent(pending []*item) bool {
	for _, it := range pending {
		if !it.lazy {
			return true
		}
	}
	return false
}

// need is how many operations etcd's limit counts for txn: its own
// widest list plus the most any nested Txn needs.
func need(txn *pb.TxnRequest) int {
	n := max(len(txn.Compare), len(txn.Success), len(txn.Failure))
	deepest := 0
	for _, ops := range [][]*pb.RequestOp{txn.Success, txn.Failure} {
		for _, o := range ops {
			if t := o.GetRequestTxn(); t != nil {
				deepest = max(deepest, need(t))
			}
		}
	}
	return n + deepest
}

// size approximates the bytes txn adds to a request.
func size(txn *pb.TxnRequest) int {
	n := 0
	for _, c := range txn.Compare {
		n += len(c.Key) + len(c.GetValue()) + 16
	}
	for _, ops := range [][]*pb.RequestOp{txn.Success, txn.Failure} {
		for _, o := range ops {
			switch r := o.Request.(type) {
			case *pb.RequestOp_RequestTxn:
				n += size(r.RequestTxn)
			case *pb.RequestOp_RequestPut:
				n += len(r.RequestPut.Key) + len(r.RequestPut.Value) + 16
			case *pb.RequestOp_RequestDeleteRange:
				n += len(r.RequestDeleteRange.Key) + len(r.RequestDeleteRange.RangeEnd) + 16
			case *pb.RequestOp_RequestRange:
				n += len(r.RequestRange.Key) + len(r.RequestRange.RangeEnd) + 16
			}
		}
	}
	return n
}

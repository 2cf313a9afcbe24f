// Package batch is group commit for guarded etcd writes. Callers submit
// operations, each a nested Txn with its own compares; a Writer packs those
// waiting into one etcd Txn (If guard Then op1 op2 ...), so that under load
// many transactions' begins, votes or acknowledgements cost one request and
// one raft entry. Each operation still succeeds or fails on its own
// compares, exactly as if sent alone, so batching changes nothing about
// safety, and re-sending a batch after an unknown outcome is as harmless as
// re-sending each operation.
//
// Batching is natural: an urgent operation is sent at once if fewer than
// MaxInFlight batches are outstanding, and otherwise waits for one to come
// back, taking along everything queued meanwhile. Lazy operations (such as
// acknowledgements, which nobody waits for) wait up to LazyDelay for an
// urgent one to ride with.
package batch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/concord-tx/concord/internal/retry"
	"github.com/concord-tx/concord/protocol"
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
	Guard []clientv3.Cmp
	// MaxOps is etcd's --max-txn-ops (default 128).
	MaxOps int
	// MaxBytes bounds a batch's keys and values, below etcd's
	// --max-request-bytes (default 1 MiB).
	MaxBytes int
	// MaxInFlight bounds the batches outstanding at once (default 2).
	MaxInFlight int
	// LazyDelay is how long a lazy operation may wait (default 10ms).
	LazyDelay time.Duration
	// Retry is how a batch is retried after a transient error.
	Retry retry.Policy
}

// Op is one guarded operation: If(Cmps).Then(Then).Else(Else).
type Op struct {
	Cmps       []clientv3.Cmp
	Then, Else []clientv3.Op
	Lazy       bool // may wait up to LazyDelay for company
	// Key names what the operation writes (a transaction id). Operations
	// with the same Key never share a batch, since etcd refuses a Txn that
	// writes one key twice; the later one goes in the next batch.
	Key string
}

type item struct {
	key   string
	op    clientv3.Op
	need  int // operations etcd counts for it, nested levels included
	bytes int
	lazy  bool
	done  Done
}

// Done receives an operation's own response (the nested Txn's), the
// revision of the etcd Txn that carried it, or the error that stopped it.
// It runs on the Writer's goroutines and must not block.
type Done func(resp *pb.TxnResponse, rev int64, err error)

// Writer batches operations. It owns one goroutine plus one per batch in
// flight; Close stops them all.
type Writer struct {
	cli     *clientv3.Client
	cfg     Config
	in      chan *item
	stopped chan struct{} // closed when run has returned
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// New starts a Writer on cli.
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
	if cfg.LazyDelay <= 0 {
		cfg.LazyDelay = 10 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &Writer{cli: cli, cfg: cfg, in: make(chan *item), stopped: make(chan struct{}), cancel: cancel}
	w.wg.Add(1)
	go w.run(ctx)
	return w
}

// Close stops the writer and waits for batches in flight. Operations not
// yet sent fail with ErrClosed.
func (w *Writer) Close() {
	w.cancel()
	w.wg.Wait()
}

type result struct {
	resp *pb.TxnResponse
	rev  int64
	err  error
}

// Do submits op and waits for its own response (the nested Txn's) and the
// revision of the etcd Txn that carried it. If ctx ends first the operation
// may still be sent: its outcome is unknown.
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

// Submit queues op without waiting for it; done is called exactly once with
// the outcome (ctx.Err() if ctx ends before the writer takes it, in which
// case it is not sent).
func (w *Writer) Submit(ctx context.Context, op Op, done Done) {
	it := &item{key: op.Key, op: clientv3.OpTxn(op.Cmps, op.Then, op.Else), lazy: op.Lazy, done: done}
	it.need = need(it.op)
	it.bytes = size(it.op)
	if 1+it.need > w.cfg.MaxOps || it.bytes > w.cfg.MaxBytes {
		done(nil, 0, fmt.Errorf("batch: operation needs %d etcd operations and %d bytes, over the limits %d and %d", 1+it.need, it.bytes, w.cfg.MaxOps, w.cfg.MaxBytes))
		return
	}
	select {
	case w.in <- it:
	case <-ctx.Done():
		done(nil, 0, ctx.Err())
	case <-w.stopped:
		done(nil, 0, ErrClosed)
	}
}

func (w *Writer) run(ctx context.Context) {
	defer w.wg.Done()
	defer close(w.stopped)
	var (
		pending  []*item
		inflight int
		lazyDue  bool
		timer    *time.Timer
		timerC   <-chan time.Time
		finished = make(chan struct{})
	)
	for {
		select {
		case <-ctx.Done():
			for _, it := range pending {
				it.done(nil, 0, ErrClosed)
			}
			for ; inflight > 0; inflight-- {
				<-finished
			}
			if timer != nil {
				timer.Stop()
			}
			return
		case it := <-w.in:
			pending = append(pending, it)
			if it.lazy && timerC == nil {
				timer = time.NewTimer(w.cfg.LazyDelay)
				timerC = timer.C
			}
		case <-finished:
			inflight--
		case <-timerC:
			timerC = nil
			lazyDue = true
		}
		for inflight < w.cfg.MaxInFlight && len(pending) > 0 && (lazyDue || anyUrgent(pending)) {
			var batch []*item
			batch, pending = w.take(pending)
			inflight++
			w.wg.Add(1)
			go func() {
				defer w.wg.Done()
				w.send(ctx, batch)
				finished <- struct{}{}
			}()
		}
		if len(pending) == 0 {
			lazyDue = false
			if timer != nil {
				timer.Stop()
			}
			timerC = nil
		}
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
		// The outer Txn counts its operations and the guard's compares;
		// each nested level gets what is left.
		if len(batch) > 0 && (max(len(batch)+1, len(w.cfg.Guard))+nn > w.cfg.MaxOps || bytes+it.bytes > w.cfg.MaxBytes) {
			return batch, append(rest, pending[i:]...)
		}
		maxNeed, bytes = nn, bytes+it.bytes
		keys[it.key] = it.key != ""
		batch = append(batch, it)
	}
	return batch, rest
}

func (w *Writer) send(ctx context.Context, batch []*item) {
	resp, err := w.commit(ctx, batch)
	if err != nil && len(batch) > 1 && !retry.Transient(err) {
		// One operation the server refuses must not sink the others.
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

func (w *Writer) commit(ctx context.Context, batch []*item) (*clientv3.TxnResponse, error) {
	ops := make([]clientv3.Op, len(batch))
	for i, it := range batch {
		ops[i] = it.op
	}
	return retry.Do(ctx, w.cfg.Retry, func(ctx context.Context) (*clientv3.TxnResponse, error) {
		return w.cli.Txn(ctx).If(w.cfg.Guard...).Then(ops...).Commit()
	})
}

// Puts turns protocol writes into etcd operations.
func Puts(kvs []protocol.KeyValue) []clientv3.Op {
	ops := make([]clientv3.Op, len(kvs))
	for i, kv := range kvs {
		ops[i] = clientv3.OpPut(kv.Key, kv.Value)
	}
	return ops
}

func anyUrgent(pending []*item) bool {
	for _, it := range pending {
		if !it.lazy {
			return true
		}
	}
	return false
}

// need is how many operations etcd's limit counts for op: its own widest
// list plus the most any nested Txn needs.
func need(op clientv3.Op) int {
	if !op.IsTxn() {
		return 0
	}
	cmps, thenOps, elseOps := op.Txn()
	n := max(len(cmps), len(thenOps), len(elseOps))
	deepest := 0
	for _, ops := range [][]clientv3.Op{thenOps, elseOps} {
		for _, o := range ops {
			deepest = max(deepest, need(o))
		}
	}
	return n + deepest
}

// size approximates the bytes op adds to a request.
func size(op clientv3.Op) int {
	if !op.IsTxn() {
		return len(op.KeyBytes()) + len(op.ValueBytes()) + len(op.RangeBytes()) + 16
	}
	cmps, thenOps, elseOps := op.Txn()
	n := 0
	for i := range cmps {
		n += len(cmps[i].KeyBytes()) + len(cmps[i].ValueBytes()) + 16
	}
	for _, ops := range [][]clientv3.Op{thenOps, elseOps} {
		for _, o := range ops {
			n += size(o)
		}
	}
	return n
}

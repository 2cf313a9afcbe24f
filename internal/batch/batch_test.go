package batch

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/concord-tx/concord/internal/retry"
	"github.com/concord-tx/concord/internal/testkit/etcdtest"
	"github.com/concord-tx/concord/internal/testkit/leaktest"
	"github.com/concord-tx/concord/internal/testkit/poll"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"google.golang.org/grpc"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

var policy = retry.Policy{Timeout: 5 * time.Second, MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}

func create(key string) Op {
	return Op{
		Cmps: []*pb.Compare{CreateRevisionIs(key, 0)},
		Then: []*pb.RequestOp{Put(key, []byte("v"))},
		Else: []*pb.RequestOp{Get(key)},
		Key:  key,
	}
}

// Concurrent operations share Txns, and each still gets its own answer.
func TestBatches(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	w := New(cli, Config{Retry: policy, MaxInFlight: 1})
	defer w.Close()
	ctx := context.Background()
	before, err := cli.Get(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	var wg sync.WaitGroup
	revs := make([]int64, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, rev, err := w.Do(ctx, create(fmt.Sprintf("k%03d", i)))
			if err != nil || !resp.Succeeded {
				t.Errorf("k%03d: %v %v", i, resp, err)
			}
			revs[i] = rev
		}()
	}
	wg.Wait()
	distinct := map[int64]bool{}
	for _, r := range revs {
		distinct[r] = true
	}
	after, err := cli.Get(ctx, "k", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || after.Count != n {
		t.Fatalf("%d keys, %v", after.Count, err)
	}
	if txns := after.Header.Revision - before.Header.Revision; int(txns) != len(distinct) || txns >= n {
		t.Errorf("%d operations took %d Txns (%d distinct revisions): no batching", n, txns, len(distinct))
	}
	t.Logf("%d operations in %d Txns", n, len(distinct))
	// Run again: each one fails its own compare and reads what is there.
	resp, _, err := w.Do(ctx, create("k007"))
	if err != nil || resp.Succeeded || len(resp.Responses[0].GetResponseRange().Kvs) != 1 {
		t.Fatalf("repeat: %v %v", resp, err)
	}
}

// Operations with one key never share a Txn (etcd would refuse it); one
// refused operation does not sink its batch; a failed guard fails all.
func TestConflictsAndFailures(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	ctx := context.Background()
	w := New(cli, Config{Retry: policy, MaxInFlight: 1, LazyDelay: time.Hour})
	defer w.Close()
	type answer struct {
		resp *pb.TxnResponse
		rev  int64
		err  error
	}
	answers := make(chan answer, 3)
	submit := func(op Op) {
		w.Submit(ctx, op, func(resp *pb.TxnResponse, rev int64, err error) { answers <- answer{resp, rev, err} })
	}
	same := Op{Then: []*pb.RequestOp{Put("shared", []byte("1"))}, Key: "t1", Lazy: true}
	other := Op{Then: []*pb.RequestOp{Put("shared", []byte("2"))}, Key: "t1", Lazy: true}
	submit(same)
	submit(other)
	submit(create("urgent")) // flushes the lazy ones with it
	revs := map[int64]int{}
	for range 3 {
		a := <-answers
		if a.err != nil {
			t.Fatalf("conflicting operations: %v", a.err)
		}
		revs[a.rev]++
	}
	if len(revs) != 2 {
		t.Errorf("revisions %v: the two operations on t1 shared a Txn or nothing was batched", revs)
	}
	got, err := cli.Get(ctx, "shared")
	if err != nil || string(got.Kvs[0].Value) != "2" {
		t.Errorf("order of operations on one key not kept: %v %v", got, err)
	}

	// A bad operation (two puts of one key) next to a good one.
	bad := Op{Then: []*pb.RequestOp{Put("dup", []byte("1")), Put("dup", []byte("2"))}, Lazy: true}
	submit(bad)
	submit(create("good"))
	for range 2 {
		a := <-answers
		if a.err == nil && (a.resp == nil || !a.resp.Succeeded) {
			t.Errorf("good operation: %+v", a)
		}
	}
	if resp, err := cli.Get(ctx, "good"); err != nil || len(resp.Kvs) != 1 {
		t.Errorf("the good operation was sunk by the bad one: %v %v", resp, err)
	}

	guarded := New(cli, Config{Retry: policy, Guard: []*pb.Compare{ValueIs("fence", "mine")}})
	defer guarded.Close()
	if _, _, err := guarded.Do(ctx, create("fenced")); !errors.Is(err, ErrGuardFailed) {
		t.Fatalf("guard: %v", err)
	}
	if resp, _ := cli.Get(ctx, "fenced"); len(resp.Kvs) != 0 {
		t.Error("write went through a failed guard")
	}
	big := Op{Then: make([]*pb.RequestOp, 200)}
	for i := range big.Then {
		big.Then[i] = Put(fmt.Sprint("big", i), []byte("v"))
	}
	if _, _, err := w.Do(ctx, big); err == nil {
		t.Error("operation over etcd's limit accepted")
	}
	w.Close()
	if _, _, err := w.Do(ctx, create("late")); !errors.Is(err, ErrClosed) {
		t.Errorf("after close: %v", err)
	}
}

// An operation that finds a slot free is sent by its submitter, so its
// answer has come when Submit returns; a lazy operation alone goes after
// LazyDelay.
func TestSubmitterSends(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	ctx := context.Background()
	const delay = 50 * time.Millisecond
	w := New(cli, Config{Retry: policy, LazyDelay: delay})
	defer w.Close()
	answered := false
	w.Submit(ctx, create("now"), func(resp *pb.TxnResponse, _ int64, err error) {
		answered = err == nil && resp.Succeeded
	})
	if !answered {
		t.Fatal("Submit returned before its operation was answered")
	}
	sent := make(chan time.Duration, 1)
	start := time.Now()
	w.Submit(ctx, Op{Then: []*pb.RequestOp{Put("later", []byte("v"))}, Lazy: true}, func(_ *pb.TxnResponse, _ int64, err error) {
		if err != nil {
			t.Error(err)
		}
		sent <- time.Since(start)
	})
	if took := within(t, sent, "a lazy operation alone sent"); took < delay {
		t.Errorf("a lazy operation alone went after %v, before its delay of %v", took, delay)
	}
	if resp, err := cli.Get(ctx, "later"); err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("lazy operation not written: %v %v", resp, err)
	}
}

// A caller's ctx bounds the operation it sends itself: with etcd gone, Do
// returns when ctx ends rather than retrying for the writer's life.
func TestDoEndsWithItsContext(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	w := New(cli, Config{Retry: policy})
	defer w.Close()
	srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err := w.Do(ctx, create("gone"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Do with etcd gone: %v, want the context's deadline", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Do returned %v after its context ended", took)
	}
}

// An operation queued behind a busy slot whose submitter gives up is not
// sent when the slot frees: it fails with its ctx's error, and is not
// written.
func TestQueuedOperationOfAGoneSubmitter(t *testing.T) {
	srv := etcdtest.Start(t)
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	// The first Txn waits until released: it holds the slot.
	cli := clientSeeingTxns(t, srv, func() { once.Do(func() { close(entered); <-release }) })
	w := New(cli, Config{Retry: policy, MaxInFlight: 1})
	defer w.Close()

	first := make(chan error, 1)
	go func() {
		_, _, err := w.Do(context.Background(), create("first"))
		first <- err
	}()
	<-entered
	ctx, cancel := context.WithCancel(context.Background())
	queued := make(chan error, 1)
	w.Submit(ctx, create("queued"), func(_ *pb.TxnResponse, _ int64, err error) { queued <- err })
	cancel()
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := within(t, queued, "the queued operation answered"); !errors.Is(err, context.Canceled) {
		t.Fatalf("queued operation: %v, want context.Canceled", err)
	}
	if resp, err := cli.Get(context.Background(), "queued"); err != nil || len(resp.Kvs) != 0 {
		t.Fatalf("queued operation written after its submitter gave up: %v %v", resp, err)
	}
}

// A batch sent on the writer's behalf, through an etcd outage, is retried
// only while one of its submitters waits: once all have given up, it stops
// and frees its slot, rather than holding it until etcd returns while new
// operations queue behind it.
func TestSharedBatchEndsWhenNobodyWaits(t *testing.T) {
	srv := etcdtest.Start(t)
	txns := make(chan struct{}, 100) // a Txn attempt has left
	cli := clientSeeingTxns(t, srv, func() { txns <- struct{}{} })
	w := New(cli, Config{Retry: policy, MaxInFlight: 1})
	defer w.Close()
	srv.Close()

	// The first operation takes the slot, sent by its submitter until its
	// ctx ends; the two queued meanwhile then go together, on the writer's
	// behalf. (The client waits for a connection, so each attempt lasts
	// the policy's 5s unless cancelled.)
	firstCtx, cancelFirst := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, _, err := w.Do(firstCtx, create("first"))
		first <- err
	}()
	within(t, txns, "a Txn sent for the first operation")
	var cancels []context.CancelFunc
	answers := make(chan error, 2)
	for _, key := range []string{"second", "third"} {
		ctx, cancel := context.WithCancel(context.Background())
		cancels = append(cancels, cancel)
		w.Submit(ctx, create(key), func(_ *pb.TxnResponse, _ int64, err error) { answers <- err })
	}
	cancelFirst()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("first operation: %v, want context.Canceled", err)
	}
	within(t, txns, "a Txn sent for the queued pair")
	w.mu.Lock()
	inflight, pending := w.mu.inflight, len(w.mu.pending)
	w.mu.Unlock()
	if inflight != 1 || pending != 0 {
		t.Fatalf("%d batches in flight and %d operations pending, want the pair as one batch", inflight, pending)
	}

	// One submitter giving up is not enough: the other still waits.
	cancels[0]()
	select {
	case err := <-answers:
		t.Fatalf("batch ended while a submitter still waited: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	cancels[1]()
	for range 2 {
		if err := within(t, answers, "the abandoned batch's operations answered"); !errors.Is(err, context.Canceled) {
			t.Fatalf("operation of the abandoned batch: %v, want context.Canceled", err)
		}
	}
	poll.Until(t, 10*time.Second, "the slot freed", func() (bool, string) {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.mu.inflight == 0, fmt.Sprintf("%d in flight", w.mu.inflight)
	})
}

// clientSeeingTxns returns a client of srv that calls onTxn as each Txn
// attempt leaves, before it is sent; it is closed at cleanup.
func clientSeeingTxns(t *testing.T, srv *etcdtest.Server, onTxn func()) *clientv3.Client {
	t.Helper()
	return srv.Client(t, grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if method == "/etcdserverpb.KV/Txn" {
			onTxn()
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}))
}

// within returns the next value from ch, and fails the test if none comes
// within 10s; what names the awaited event.
func within[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: not within 10s", what)
		panic("unreachable")
	}
}

// With every slot taken, one more batch goes once ExtraBatchAt operations
// wait, and no more than one; below that, or with it off, they wait.
func TestExtraBatchUnderLoad(t *testing.T) {
	srv := etcdtest.Start(t)
	for _, tt := range []struct {
		name       string
		extraAt    int
		concurrent int // Txns held at once when the last operation is queued
	}{
		{"extra batch", 4, 2},
		{"off", -1, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var (
				mu      sync.Mutex
				held    int
				release = make(chan struct{})
				arrived = make(chan int, 16)
			)
			cli := clientSeeingTxns(t, srv, func() {
				mu.Lock()
				held++
				n := held
				mu.Unlock()
				arrived <- n
				<-release
				mu.Lock()
				held--
				mu.Unlock()
			})
			w := New(cli, Config{Retry: policy, MaxInFlight: 1, ExtraBatchAt: tt.extraAt})
			defer w.Close()
			var releasing sync.Once
			free := func() { releasing.Do(func() { close(release) }) }
			defer free() // before Close, which waits for the held batches
			ctx := context.Background()
			results := make(chan error, 8)
			do := func(key string) {
				go func() {
					resp, _, err := w.Do(ctx, create(tt.name+key))
					if err == nil && !resp.Succeeded {
						err = fmt.Errorf("%s: compare failed", key)
					}
					results <- err
				}()
			}
			do("/first")
			if n := within(t, arrived, "the first batch sent"); n != 1 {
				t.Fatalf("%d Txns held, want 1", n)
			}
			// Three wait: below ExtraBatchAt, nothing more goes.
			for i := range 3 {
				do(fmt.Sprintf("/wait-%d", i))
			}
			waitPending(t, w, 3)
			select {
			case n := <-arrived:
				t.Fatalf("a batch went with 3 operations waiting (%d held)", n)
			default:
			}
			// The fourth makes four waiting: one more batch, if allowed.
			do("/fourth")
			if tt.concurrent == 2 {
				if n := within(t, arrived, "the extra batch sent"); n != 2 {
					t.Fatalf("%d Txns held, want 2", n)
				}
				// Four more wait again, but two batches are out: no third.
				for i := range 4 {
					do(fmt.Sprintf("/more-%d", i))
				}
				waitPending(t, w, 4)
			} else {
				waitPending(t, w, 4)
			}
			select {
			case n := <-arrived:
				t.Fatalf("a batch beyond the allowed went (%d held)", n)
			default:
			}
			free()
			want := 5
			if tt.concurrent == 2 {
				want = 9
			}
			for range want {
				if err := within(t, results, "an answer"); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// waitPending waits until n operations are queued in w.
func waitPending(t *testing.T, w *Writer, n int) {
	t.Helper()
	poll.Until(t, 10*time.Second, fmt.Sprintf("%d operations queued", n), func() (bool, string) {
		w.mu.Lock()
		defer w.mu.Unlock()
		return len(w.mu.pending) == n, fmt.Sprintf("%d queued", len(w.mu.pending))
	})
}

// Against an etcd whose limits are below the writer's, a batch etcd
// refuses as too large goes one operation a Txn, and later batches are
// held to half its size: the writer finds etcd's limit within a few
// refusals and then batches under it, instead of being refused every time.
func TestLimitsLearnedFromRefusals(t *testing.T) {
	for _, tt := range []struct {
		name      string
		configure func(*embed.Config)
		value     string
		most      int // refusals allowed in the first 200 operations
	}{
		{"operations", func(c *embed.Config) { c.MaxTxnOps = 16 }, "v", 4},
		{"bytes", func(c *embed.Config) { c.MaxRequestBytes = 16 << 10 }, strings.Repeat("v", 1000), 4},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := etcdtest.Start(t, tt.configure)
			var mu sync.Mutex
			refusals := 0
			cli := srv.Client(t, grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
				err := invoker(ctx, method, req, reply, cc, opts...)
				if retry.TooManyOps(err) || retry.TooLarge(err) {
					mu.Lock()
					refusals++
					mu.Unlock()
				}
				return err
			}))
			w := New(cli, Config{Retry: policy, MaxInFlight: 1})
			defer w.Close()
			ctx := context.Background()
			wave := func(name string) (refused, txns int) {
				mu.Lock()
				before := refusals
				mu.Unlock()
				start, err := cli.Get(ctx, "x")
				if err != nil {
					t.Fatal(err)
				}
				const n = 200
				var wg sync.WaitGroup
				for i := range n {
					wg.Go(func() {
						key := fmt.Sprintf("%s/%03d", name, i)
						op := create(key)
						op.Then = []*pb.RequestOp{Put(key, []byte(tt.value))}
						if resp, _, err := w.Do(ctx, op); err != nil || !resp.Succeeded {
							t.Errorf("%s: %v %v", key, resp, err)
						}
					})
				}
				wg.Wait()
				end, err := cli.Get(ctx, name+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
				if err != nil || end.Count != n {
					t.Fatalf("%s: %d keys, %v", name, end.Count, err)
				}
				mu.Lock()
				defer mu.Unlock()
				refused, txns = refusals-before, int(end.Header.Revision-start.Header.Revision)
				t.Logf("%s: %d operations in %d Txns, %d refused", name, n, txns, refused)
				return refused, txns
			}
			// 126 operations (or 1 MiB) a batch at first; halved at each
			// refusal, the limit is found in a few.
			if refused, txns := wave("first"); refused == 0 || refused > tt.most {
				t.Errorf("first 200 operations: %d refusals in %d Txns, want 1 to %d", refused, txns, tt.most)
			}
			if refused, txns := wave("second"); refused != 0 || txns >= 100 {
				t.Errorf("next 200 operations: %d refusals, %d Txns; want none refused, and batches", refused, txns)
			}
		})
	}
}

// A batch above etcd's gRPC bound (--max-request-bytes plus 512 KiB) is
// refused by gRPC before etcd sees it, in other words: that is final too,
// and teaches the writer its limit like etcd's own refusal.
func TestLimitLearnedFromGRPCRefusal(t *testing.T) {
	srv := etcdtest.Start(t, func(c *embed.Config) { c.MaxRequestBytes = 64 << 10 })
	var (
		mu       sync.Mutex
		txns     int
		grpcSaid int
		release  = make(chan struct{})
		held     = make(chan struct{})
	)
	cli := srv.Client(t, grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if method != "/etcdserverpb.KV/Txn" {
			return invoker(ctx, method, req, reply, cc, opts...)
		}
		mu.Lock()
		txns++
		first := txns == 1
		mu.Unlock()
		if first {
			close(held)
			<-release
		}
		err := invoker(ctx, method, req, reply, cc, opts...)
		if retry.TooLarge(err) {
			mu.Lock()
			grpcSaid++
			mu.Unlock()
		}
		return err
	}))
	w := New(cli, Config{Retry: policy, MaxInFlight: 1, ExtraBatchAt: -1})
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	value := strings.Repeat("v", 5000)
	results := make(chan error, 200)
	do := func(key string) {
		go func() {
			op := create(key)
			op.Then = []*pb.RequestOp{Put(key, []byte(value))}
			resp, _, err := w.Do(ctx, op)
			if err == nil && !resp.Succeeded {
				err = fmt.Errorf("%s: compare failed", key)
			}
			results <- err
		}()
	}
	do("k/first")
	within(t, held, "the first batch sent")
	// 126 operations of 5 kB wait: one batch of them is about 630 kB,
	// above gRPC's 576 KiB.
	const n = 126
	for i := range n {
		do(fmt.Sprintf("k/%03d", i))
	}
	waitPending(t, w, n)
	close(release)
	for range n + 1 {
		if err := within(t, results, "an answer"); err != nil {
			t.Error(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	if grpcSaid != 1 || w.mu.maxBytes >= 576<<10 {
		t.Errorf("gRPC refused %d batches; batches now of at most %d bytes: want one refusal, and a limit below 576 KiB", grpcSaid, w.mu.maxBytes)
	}
}

package spare

import (
	"runtime"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/concord-tx/concord/internal/testkit/leaktest"
	"github.com/concord-tx/concord/internal/testkit/poll"
)

// The pool's goroutines must all have ended once Close returns.
func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

// idle reports whether a goroutine the pool keeps is parked, waiting for
// a function: the next Go hands its function to it.
func idle() (bool, string) {
	buf := make([]byte, 1<<20)
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(g, "spare.(*Pool).keep") {
			first, _, _ := strings.Cut(g, "\n")
			return strings.Contains(first, "[select"), first
		}
	}
	return false, "no goroutine in keep"
}

func goroutinesCreated() uint64 {
	s := []metrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestIdleGoroutineRunsTheNext: functions run one after another reuse the
// one goroutine the pool keeps, and Close ends it.
func TestIdleGoroutineRunsTheNext(t *testing.T) {
	p := New(1)
	const n = 200
	ran := make(chan int)
	before := goroutinesCreated()
	for i := range n {
		p.Go(func() { ran <- i })
		if got := <-ran; got != i {
			t.Fatalf("ran %d, want %d", got, i)
		}
		poll.Until(t, 10*time.Second, "the kept goroutine waiting for the next function", idle)
	}
	// One for the pool; the runtime and the test's polling may start a
	// few of their own meanwhile, but not one per function.
	if created := goroutinesCreated() - before; created > 10 {
		t.Fatalf("%d goroutines started for %d functions run one after another, want 1", created, n)
	}
	p.Close()
}

// TestNoFunctionWaits: with every kept goroutine busy, Go starts another
// goroutine at once rather than waiting, and Close waits for them all.
func TestNoFunctionWaits(t *testing.T) {
	p := New(2)
	release := make(chan struct{})
	started := make(chan struct{}, 5)
	var done atomic.Int32
	for range 5 {
		p.Go(func() {
			started <- struct{}{}
			<-release
			done.Add(1)
		})
	}
	// All five run at once, though the pool keeps two.
	for i := range 5 {
		select {
		case <-started:
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of 5 functions started: the others wait for a busy goroutine", i)
		}
	}
	close(release)
	p.Close()
	if n := done.Load(); n != 5 {
		t.Fatalf("Close returned with %d of 5 functions finished", n)
	}
}

package bench

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// steady measures a window of exactly quota transactions, opened only
// after the warm-up, and runs none past it but those in flight; it goes on
// past a failed transaction, and stops when its context ends.
func TestSteadyWindow(t *testing.T) {
	var (
		mu      sync.Mutex
		started int
		running atomic.Int64
		peak    atomic.Int64
	)
	do := func(ctx context.Context) (bool, string, error) {
		mu.Lock()
		started++
		n := started
		mu.Unlock()
		if r := running.Add(1); r > peak.Load() {
			peak.Store(r)
		}
		defer running.Add(-1)
		time.Sleep(time.Millisecond)
		if n == 3 {
			return false, "t3", errors.New("refused")
		}
		return true, "", nil
	}
	var marks []bool
	var opened time.Time
	const warm = 50 * time.Millisecond
	begin := time.Now()
	w, err := steady(context.Background(), do, 4, warm, 100, 0, io.Discard, func(open bool) {
		marks = append(marks, open)
		if open {
			opened = time.Now()
		}
	})
	if err == nil || err.Error() != "transaction t3: refused" {
		t.Errorf("error %v, want the failed transaction's", err)
	}
	if len(w.lat.ok) != 100 || w.elapsed <= 0 {
		t.Errorf("window: %d committed, %d failed in %v; want 100 committed", len(w.lat.ok), w.lat.failed, w.elapsed)
	}
	if len(marks) != 2 || !marks[0] || marks[1] || opened.Sub(begin) < warm {
		t.Errorf("marks %v, opened after %v; want open once after %v, then shut", marks, opened.Sub(begin), warm)
	}
	// Those that ended outside the window: the warm-up's (the failed one
	// among them), and those still in flight as it shut. None started
	// after.
	if w.unmeasured < 1 || w.failedOutside != 1 || w.lat.failed != 0 || started != 100+w.unmeasured+w.failedOutside {
		t.Errorf("%d started: %d unmeasured, %d failed outside the window, %d in it", started, w.unmeasured, w.failedOutside, w.lat.failed)
	}
	if m := peak.Load(); m > 4 {
		t.Errorf("%d ran at once, want at most 4", m)
	}

	// For a duration instead.
	w, err = steady(context.Background(), do, 2, warm, 0, 100*time.Millisecond, io.Discard, func(bool) {})
	if err != nil || w.elapsed < 100*time.Millisecond || len(w.lat.ok) == 0 {
		t.Errorf("for 100ms: %v, %d committed in %v", err, len(w.lat.ok), w.elapsed)
	}

	// Stopped during the warm-up: nothing measured, and the context's error.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	w, err = steady(ctx, do, 2, time.Hour, 10, 0, io.Discard, func(bool) { t.Error("a window opened") })
	if !errors.Is(err, context.DeadlineExceeded) || w.elapsed != 0 {
		t.Errorf("stopped: %v, window of %v", err, w.elapsed)
	}
}

package bench

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/concord-tx/concord/coordinator"
	"github.com/concord-tx/concord/protocol"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// rounds is how many times, at a concurrency above 1, the load and the
// floors take turns.
const rounds = 4

// inRounds measures at a concurrency above 1 in rounds, as alternate does
// at 1 and for the same reason: the machine's speed drifts by tens of
// percent over seconds, and a load measured for ten seconds against a
// floor measured in the ten after it compares two machines. Each round
// runs the load until it is steady and measures a stretch of it (see
// steady), waits until the load's work is done, then runs each floor at
// the same concurrency for half that stretch: the compare-and-swap Txns,
// the bare commit path, the protocol's floor, the design's. One Txn at a time is
// measured after the last round.
func inRounds(ctx context.Context, coord *coordinator.Client, branches []protocol.Branch, cli *clientv3.Client, fp floorPaths, floors string, keys protocol.Keys, cfg Config, progress io.Writer) (measured, error) {
	var (
		m       measured
		casLats int
		casTime time.Duration
	)
	m.rounds = rounds
	if cfg.Transactions > 0 {
		m.rounds = min(rounds, cfg.Transactions) // a window of at least one
	}
	workers, err := casWorkers(ctx, cli, floors, cfg.Concurrency)
	if err != nil {
		return m, fmt.Errorf("floor: %w", err)
	}
	for r := range m.rounds {
		quota, d := cfg.Transactions/m.rounds, cfg.Duration/time.Duration(m.rounds)
		if cfg.Transactions > 0 && r == m.rounds-1 {
			quota = cfg.Transactions - quota*(m.rounds-1)
		}
		fmt.Fprintf(progress, "round %d of %d: Concord at concurrency %d\n", r+1, m.rounds, cfg.Concurrency)
		var start usage
		w, err := steady(ctx, concordDo(coord, branches), cfg.Concurrency, warmFor(cfg.Retention), quota, d, progress, func(open bool) {
			if open {
				start = processUsage()
			} else {
				m.used.add(start)
			}
		})
		m.load.ok = append(m.load.ok, w.lat.ok...)
		m.load.failed += w.lat.failed
		m.elapsed += w.elapsed
		m.unmeasured, m.failedOutside = m.unmeasured+w.unmeasured, m.failedOutside+w.failedOutside
		if err != nil && len(m.load.ok) == 0 {
			return m, err
		}
		// The load's acknowledgements, finalisation and cleanup would
		// otherwise run during the floors and be charged to them. A
		// cleanup further off than steadyCleanup is waited for once, at
		// the end of the run: a run longer than the retention then has
		// some of it in later rounds.
		if err := waitFor(ctx, cli, keys, cfg.Retention, cfg.Retention <= steadyCleanup); err != nil {
			return m, err
		}
		floorFor := min(max(w.elapsed/2, 500*time.Millisecond), 5*time.Second)
		fmt.Fprintf(progress, "round %d of %d: the floors at concurrency %d, %v each\n", r+1, m.rounds, cfg.Concurrency, floorFor.Round(time.Millisecond))
		lats, took, err := casFloor(ctx, workers, floorFor)
		if err != nil {
			return m, fmt.Errorf("floor: %w", err)
		}
		casLats, casTime = casLats+len(lats), casTime+took
		if err := fp.run(ctx, &m, cfg.Concurrency, 0, floorFor); err != nil {
			return m, err
		}
	}
	m.txnRate = float64(casLats) / casTime.Seconds()
	if m.single, _, err = casFloor(ctx, workers[:1], 2*time.Second); err != nil {
		return m, fmt.Errorf("floor: %w", err)
	}
	return m, nil
}

// steadyCleanup is the longest retention whose cleanup a measured window
// waits to run beside it, and a round waits for before its floors. With a
// longer one the run waits for it once, at its end; a round's cleanup
// then falls wherever retention after it is, in a later round if the run
// is longer than the retention.
const steadyCleanup = 10 * time.Second

// warmFor is how long a load runs before it is measured: until the cleanup
// of its first transactions, which the replica deletes retention after they
// finish, in rounds a tenth of that apart (at least 100ms; its gcInterval),
// runs beside the load as it does in a steady state. Past steadyCleanup,
// long enough to fill the pipeline.
func warmFor(retention time.Duration) time.Duration {
	if retention > steadyCleanup {
		return time.Second
	}
	return retention + max(retention/10, 100*time.Millisecond) + 200*time.Millisecond
}

// window is what steady measured.
type window struct {
	lat     latencies     // of the transactions that ended in the window
	elapsed time.Duration // the window's length
	// unmeasured and failedOutside: transactions that committed, and that
	// failed, outside it.
	unmeasured, failedOutside int
}

// steady runs do with c workers for warm, then measures a window: until
// quota transactions have ended in it, or for d with quota 0. Then it
// starts no more and waits for those in flight. Throughput, latency and
// CPU are of the window alone, so a pipeline filling or draining is not
// counted, and the work a steady load does for transactions that ended
// earlier (their acknowledgements and cleanup) is. mark is called as the
// window opens (true) and shuts (false), to read what the processes have
// used. As runLoad, it goes on past failed transactions and returns the
// first one's error.
func steady(ctx context.Context, do doFunc, c int, warm time.Duration, quota int, d time.Duration, progress io.Writer, mark func(open bool)) (window, error) {
	var (
		mu        sync.Mutex
		w         window
		measuring bool
		stopped   bool
		t0        time.Time
		firstErr  error
		wg        sync.WaitGroup
	)
	full := make(chan struct{})
	// open and shut start and end the window, with mu held.
	open := func() {
		measuring, t0 = true, time.Now()
		mark(true)
	}
	shut := func() {
		if measuring {
			measuring = false
			w.elapsed = time.Since(t0)
			mark(false)
			close(full)
		}
		stopped = true
	}
	for range c {
		wg.Go(func() {
			for {
				mu.Lock()
				stop := stopped
				mu.Unlock()
				if stop || ctx.Err() != nil {
					return
				}
				s := time.Now()
				committed, id, err := do(ctx)
				took := time.Since(s)
				mu.Lock()
				switch {
				case measuring && committed:
					w.lat.ok = append(w.lat.ok, took)
				case measuring:
					w.lat.failed++
				case committed:
					w.unmeasured++
				default:
					w.failedOutside++
				}
				if !committed && firstErr == nil {
					firstErr = fmt.Errorf("transaction %s: %w", id, err)
				}
				if measuring && quota > 0 && len(w.lat.ok)+w.lat.failed >= quota {
					shut()
				}
				mu.Unlock()
			}
		})
	}
	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	timer := time.NewTimer(warm)
	defer timer.Stop()
	for opened, done := false, false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-full:
			done = true
		case <-timer.C:
			if opened { // d has passed
				done = true
				break
			}
			opened = true
			mu.Lock()
			open()
			mu.Unlock()
			if quota == 0 {
				timer.Reset(d)
			}
		case <-ticker.C:
			mu.Lock()
			if measuring {
				n := len(w.lat.ok)
				fmt.Fprintf(progress, "%6.1fs  %8d committed  %8.0f tx/s (measured once steady)\n", time.Since(t0).Seconds(), n, float64(n)/time.Since(t0).Seconds())
			}
			mu.Unlock()
		}
	}
	mu.Lock()
	shut()
	mu.Unlock()
	wg.Wait()
	if err := ctx.Err(); err != nil && w.elapsed == 0 {
		return w, err
	}
	return w, firstErr
}

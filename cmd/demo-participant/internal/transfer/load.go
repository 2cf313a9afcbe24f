package transfer

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/concord-tx/concord/httpapi"
	"github.com/concord-tx/concord/protocol"
)

// Load describes a run of random transfers.
type Load struct {
	N           int        // transfers to run
	Concurrency int        // transfers in flight at once
	Accounts    []Endpoint // transfers go between two of these, chosen at random
	MaxAmount   int64      // amounts are uniform in [1, MaxAmount]
	Timeout     time.Duration
	Seed        uint64
	// Progress, if not nil, gets a line every ProgressEvery.
	Progress      io.Writer
	ProgressEvery time.Duration
	// Settle bounds the wait, after the last decision, for the banks to
	// apply every decision (nothing prepared, nothing held) before the
	// final read.
	Settle time.Duration
	// RequestTimeout bounds the wait for each transfer's decision,
	// resending included (0: no bound but ctx's); a transfer that has none
	// by then is counted as an error, its outcome unknown.
	RequestTimeout time.Duration
}

// finalRead bounds the last read of the banks, which is made even after
// ctx ended (Ctrl-C) so that what was done is reported.
const finalRead = 3 * time.Second

// Validate checks the load before anything is sent.
func (l Load) Validate(banks *Banks) error {
	switch {
	case l.N <= 0:
		return fmt.Errorf("%w: --load %d, expected more than 0", ErrInvalidArgument, l.N)
	case l.Concurrency <= 0:
		return fmt.Errorf("%w: --concurrency %d, expected more than 0", ErrInvalidArgument, l.Concurrency)
	case len(l.Accounts) < 2:
		return fmt.Errorf("%w: --accounts lists %d accounts, expected at least 2 (e.g. bank-a:alice,bank-b:bob)", ErrInvalidArgument, len(l.Accounts))
	case l.MaxAmount <= 0:
		return fmt.Errorf("%w: --max-amount %d, expected more than 0", ErrInvalidArgument, l.MaxAmount)
	}
	for _, e := range l.Accounts {
		if !banks.Has(e.Bank) {
			return fmt.Errorf("%w: account %s: bank %s has no address in --banks", ErrInvalidArgument, e, e.Bank)
		}
	}
	return nil
}

// Report is the result of a load run.
type Report struct {
	Committed int
	Aborted   map[string]int // by reason, with the details cut off
	Errors    map[string]int // requests that got no decision, by error
	Elapsed   time.Duration  // from the first request to the last decision
	Before    Snapshot
	After     Snapshot
	Settled   bool // every decision was applied at the final read
	// Interrupted: ctx ended (Ctrl-C) during the run, which gave up the
	// transfers in flight, sent no more and read the banks as they were.
	Interrupted bool
}

// Decided is the number of transfers that got a decision.
func (r Report) Decided() int {
	n := r.Committed
	for _, c := range r.Aborted {
		n += c
	}
	return n
}

// Conserved reports whether the sum of all balances is the same after as
// before.
func (r Report) Conserved() bool {
	before, _ := r.Before.Sum()
	after, _ := r.After.Sum()
	return before == after
}

// RunLoad runs l.N random transfers, l.Concurrency at a time, and reads the
// banks before and after. It returns an error only when it cannot read the
// banks; failed transfers are counted in the report.
func RunLoad(ctx context.Context, coord *httpapi.Client, banks *Banks, l Load) (Report, error) {
	if err := l.Validate(banks); err != nil {
		return Report{}, err
	}
	before, err := banks.Read(ctx)
	if err != nil {
		return Report{}, err
	}
	for _, e := range l.Accounts {
		if _, ok := before.Account(e); !ok {
			return Report{}, fmt.Errorf("%w: account %s: bank %s has no such account", ErrInvalidArgument, e, e.Bank)
		}
	}
	rng := rand.New(rand.NewPCG(l.Seed, l.Seed^0x9e3779b97f4a7c15))
	jobs := make([]Transfer, l.N)
	for i := range jobs {
		from := rng.IntN(len(l.Accounts))
		to := rng.IntN(len(l.Accounts) - 1)
		if to >= from {
			to++
		}
		jobs[i] = Transfer{From: l.Accounts[from], To: l.Accounts[to], Amount: 1 + rng.Int64N(l.MaxAmount)}
	}

	t := newTally()
	start := time.Now()
	stopProgress := t.progress(l, start)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(l.Concurrency, l.N) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(len(jobs)) || ctx.Err() != nil {
					return
				}
				req, err := jobs[i].Request("", l.Timeout)
				if err != nil {
					t.add(httpapi.Outcome{}, err)
					continue
				}
				dctx, cancel := ctx, context.CancelFunc(func() {})
				if l.RequestTimeout > 0 {
					dctx, cancel = context.WithTimeout(ctx, l.RequestTimeout)
				}
				out, err := coord.Do(dctx, req)
				cancel()
				t.add(out, err)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	stopProgress()

	after, settled, err := settle(ctx, banks, l.Settle)
	if err != nil {
		return Report{}, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return Report{
		Committed: t.mu.committed,
		Aborted:   t.mu.aborted,
		Errors:    t.mu.errors,
		Elapsed:   elapsed,
		Before:    before,
		After:     after,
		Settled:   settled,

		Interrupted: ctx.Err() != nil,
	}, nil
}

// settle waits until the banks have applied every decision, or the wait is
// over, and then reads them. Every transfer of the run is decided by now,
// so a commit not yet applied is a transaction some bank still has
// prepared, and an abort not yet applied is a hold: when neither is left,
// nothing changes any more. If ctx ends the wait ends, but the banks are
// still read, within finalRead.
func settle(ctx context.Context, banks *Banks, wait time.Duration) (Snapshot, bool, error) {
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		prepared, err := banks.Prepared(wctx)
		if err == nil && len(prepared) == 0 {
			s, err := banks.Read(wctx)
			if err == nil {
				if _, held := s.Sum(); held == 0 {
					return s, true, nil
				}
			}
		}
		select {
		case <-wctx.Done():
			// Out of time, or interrupted: report the banks as they are.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalRead)
			defer cancel()
			s, err := banks.Read(rctx)
			return s, false, err
		case <-tick.C:
		}
	}
}

// tally counts outcomes as they come in.
type tally struct {
	mu struct {
		sync.Mutex
		committed int
		aborted   map[string]int // by ReasonKind
		errors    map[string]int // by error text
	}
}

func newTally() *tally {
	t := &tally{}
	t.mu.aborted = make(map[string]int)
	t.mu.errors = make(map[string]int)
	return t
}

func (t *tally) add(out httpapi.Outcome, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case err != nil:
		t.mu.errors[err.Error()]++
	case out.State == protocol.StateCommitted:
		t.mu.committed++
	default:
		t.mu.aborted[ReasonKind(out.Reason)]++
	}
}

func (t *tally) counts() (committed, aborted, errors int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, n := range t.mu.aborted {
		aborted += n
	}
	for _, n := range t.mu.errors {
		errors += n
	}
	return t.mu.committed, aborted, errors
}

// progress prints a line every l.ProgressEvery until the returned function
// is called; that call prints a last line and waits for the printer to
// stop.
func (t *tally) progress(l Load, start time.Time) func() {
	if l.Progress == nil || l.ProgressEvery <= 0 {
		return func() {}
	}
	line := func() {
		c, a, e := t.counts()
		n := c + a + e
		rate := float64(n) / time.Since(start).Seconds()
		fmt.Fprintf(l.Progress, "progress: %d/%d done, %d committed, %d aborted, %d errors, %.1f tx/s\n", n, l.N, c, a, e, rate)
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(l.ProgressEvery)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				line()
				return
			case <-tick.C:
				line()
			}
		}
	}()
	return func() {
		close(stop)
		<-done
	}
}

// ReasonKind shortens an abort reason to its kind, for counting: the
// participant and the first clause, "bank-a: insufficient funds" of
// "bank-a: insufficient funds: alice has 5 available ...". The
// coordinator's own reasons ("deadline exceeded: ...") keep their first
// clause.
func ReasonKind(reason string) string {
	parts := strings.SplitN(reason, ": ", 3)
	if len(parts) >= 2 && !strings.Contains(parts[0], " ") {
		return parts[0] + ": " + parts[1]
	}
	return parts[0]
}

package coordinator

import (
	"context"
	"sync"
	"time"
)

// actionWorkers bounds the aborts and deletions a leader runs at once.
const actionWorkers = 8

type actionResult struct {
	id    string
	err   error
	retry time.Time
}

// startWorkers starts the pool that runs actions, stopped by ctx; wg
// waits for it.
func (l *leadership) startWorkers(ctx context.Context, wg *sync.WaitGroup) {
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
}

// act hands f to the worker pool, or runs it inline if every worker is
// busy; the transaction is reviewed again when a result comes back or a
// timer fires.
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

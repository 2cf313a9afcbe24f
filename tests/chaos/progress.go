package chaos

import "time"

// progressEvery is how often a run says how far its fault phase has got. A
// long run (CHAOS_DURATION=30m) would otherwise print nothing between
// "system up" and its summary.
const progressEvery = time.Minute

// reportProgress logs, every progressEvery until the returned stop is
// called, the transfers answered so far and the faults injected since
// start. stop returns once the reporter has.
func reportProgress(logf func(string, ...any), scenario string, start time.Time, hist *History, nem *Nemesis) (stop func()) {
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(progressEvery)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				t := hist.Tally()
				logf("%s: %v into the faults; %d transfers answered since the start (%d committed, %d aborted, %d unknown); faults so far %v",
					scenario, time.Since(start).Round(time.Second), t[Committed]+t[Aborted]+t[Unknown],
					t[Committed], t[Aborted], t[Unknown], nem.Counts())
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
	}
}

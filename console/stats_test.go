package console

import (
	"testing"
	"time"

	"github.com/concord-tx/concord/protocol"
)

func TestStatsRatesAndPercentiles(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	var s stats
	rec := func(ago, latency time.Duration, state protocol.State, cause protocol.Cause) protocol.Record {
		decided := now.Add(-ago)
		return protocol.Record{State: state, Cause: cause, Created: decided.Add(-latency), Decided: decided}
	}
	for i := range 98 {
		s.decided(rec(time.Duration(i%50)*time.Second, 2*time.Millisecond, protocol.StateCommitting, ""), now)
	}
	s.decided(rec(time.Second, time.Second, protocol.StateAborting, protocol.CauseDeadline), now)
	s.decided(rec(time.Second, 3*time.Millisecond, protocol.StateAborting, protocol.CauseVoteNo), now)
	s.decided(rec(2*time.Minute, time.Millisecond, protocol.StateCommitting, ""), now)  // older than the minute
	s.decided(rec(10*time.Minute, time.Millisecond, protocol.StateCommitting, ""), now) // out of the window
	r := s.rates(now)
	if r.Committed != 98 || r.Aborted[protocol.CauseDeadline] != 1 || r.Aborted[protocol.CauseVoteNo] != 1 {
		t.Errorf("rates: %d committed, aborted %v; want 98, deadline 1, vote_no 1", r.Committed, r.Aborted)
	}
	if r.PerSecond < 1.66 || r.PerSecond > 1.67 {
		t.Errorf("per second %v, want 100/60", r.PerSecond)
	}
	// Bucket bounds grow by 1.25: p50 is the bound at or above 2ms, p99 at
	// or above 3ms (the 99th of 100), and the 1s abort is the slowest.
	if r.P50 < 2*time.Millisecond || r.P50 > 2500*time.Microsecond {
		t.Errorf("p50 %v, want 2ms to 2.5ms", r.P50)
	}
	if r.P99 < 3*time.Millisecond || r.P99 > 3750*time.Microsecond {
		t.Errorf("p99 %v, want 3ms to 3.75ms", r.P99)
	}
	series := s.series(now, window)
	if len(series) != window || series[window-1].Second != now.Unix() || series[0].Second != now.Unix()-window+1 {
		t.Fatalf("series: %d buckets from %d to %d", len(series), series[0].Second, series[len(series)-1].Second)
	}
	total := 0
	for _, b := range series {
		total += b.Committed
	}
	if total != 99 {
		t.Errorf("the window holds %d commits, want 99 (one is older than five minutes)", total)
	}
	if p := percentile([latencyBuckets]int{}, 0, 0.5); p != 0 {
		t.Errorf("percentile of nothing: %v, want 0", p)
	}
}

// TestStatsStartWhenCountingDid: seconds before counting began are not
// shown as idle, and the rate is over the seconds counted.
func TestStatsStartWhenCountingDid(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	s := stats{since: now.Unix() - 9}
	for i := range 20 {
		s.decided(protocol.Record{State: protocol.StateCommitting, Created: now.Add(-time.Second), Decided: now.Add(-time.Duration(i%10) * time.Second)}, now)
	}
	series := s.series(now, window)
	if len(series) != 10 || series[0].Second != s.since || series[9].Second != now.Unix() {
		t.Fatalf("series: %d buckets from %d to %d, want 10 from %d", len(series), series[0].Second, series[len(series)-1].Second, s.since)
	}
	if r := s.rates(now); r.Committed != 20 || r.PerSecond != 2 {
		t.Errorf("rates: %d committed, %v a second; want 20, 2", r.Committed, r.PerSecond)
	}
	later := now.Add(time.Hour)
	if n := len(s.series(later, window)); n != window {
		t.Errorf("an hour later the series has %d buckets, want %d", n, window)
	}
}

func TestSessionsExpireAndStayBounded(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	s := newSessions(time.Hour, 3, func() time.Time { return now })
	first, sess := s.create("token-1")
	if got, ok := s.lookup(first); !ok || got != sess || got.token != "token-1" {
		t.Fatal("a new session is not found")
	}
	if sess.checkCSRF("") || sess.checkCSRF(sess.csrf+"x") || !sess.checkCSRF(sess.csrf) {
		t.Error("CSRF check: accepts a wrong token or refuses the right one")
	}
	now = now.Add(time.Minute)
	var ids []string
	for range 3 {
		id, _ := s.create("t")
		ids = append(ids, id)
	}
	if _, ok := s.lookup(first); ok {
		t.Error("the oldest session survived a fourth; want at most 3")
	}
	for _, id := range ids {
		if _, ok := s.lookup(id); !ok {
			t.Error("a newer session was dropped")
		}
	}
	now = now.Add(time.Hour)
	if _, ok := s.lookup(ids[0]); ok {
		t.Error("a session outlived its TTL")
	}
	s.end(ids[1])
	if _, ok := s.lookup(ids[1]); ok {
		t.Error("an ended session is still found")
	}
}

// TestWaitingPageIsNotDropped: a page whose stream waits for the hub's
// load is sent no frame meanwhile, so a load longer than its buffer's
// worth of frames does not drop it; once ready, it gets them.
func TestWaitingPageIsNotDropped(t *testing.T) {
	h := &hub{}
	h.mu.subs = make(map[*subscriber]struct{})
	ready := make(chan struct{})
	s := &subscriber{ch: make(chan []byte, subscriberBuffer), ready: ready, overview: true}
	h.mu.subs[s] = struct{}{}
	for range 4 * subscriberBuffer {
		h.broadcastLocked([]byte("frame"), false)
	}
	if _, ok := h.mu.subs[s]; !ok || len(s.ch) != 0 {
		t.Fatalf("waiting page: subscribed %v, %d frames queued; want subscribed, none", ok, len(s.ch))
	}
	close(ready)
	h.broadcastLocked([]byte("frame"), true)
	if len(s.ch) != 1 {
		t.Errorf("ready page: %d frames queued, want 1", len(s.ch))
	}
}

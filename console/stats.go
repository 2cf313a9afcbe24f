package console

import (
	"math"
	"time"

	"github.com/concord-tx/concord/protocol"
)

// window is how many seconds of history the overview's chart shows.
const window = 300

// latencyBuckets: bucket i holds latencies up to latencyBase·latencyGrowth^i
// (0.1ms to about three minutes); percentiles are read as that bound.
const (
	latencyBuckets = 64
	latencyBase    = 100 * time.Microsecond
	latencyGrowth  = 1.25
)

// Bucket is one second of outcomes, as the chart draws it.
type Bucket struct {
	Second    int64                  `json:"t"` // Unix time
	Begun     int                    `json:"begun"`
	Committed int                    `json:"committed"`
	Aborted   map[protocol.Cause]int `json:"aborted,omitempty"` // by cause
	latency   [latencyBuckets]int
}

// stats is the rolling record of the last window seconds: begins by when
// they were seen, decisions and their latency by the decision's time. Not
// safe for concurrent use; the hub guards it.
type stats struct {
	ring [window]Bucket
	// since is the first second counted (Unix time): the series starts
	// there rather than showing the seconds before it as idle.
	since int64
}

// bucket returns the bucket of second sec, reset if it held an older one;
// nil if sec is out of the window ending at now.
func (s *stats) bucket(sec, now int64) *Bucket {
	if sec <= now-window || sec > now+1 {
		return nil
	}
	b := &s.ring[sec%window]
	if b.Second != sec {
		*b = Bucket{Second: sec}
	}
	return b
}

// begun counts a transaction created at t.
func (s *stats) begun(t, now time.Time) {
	if b := s.bucket(t.Unix(), now.Unix()); b != nil {
		b.Begun++
	}
}

// decided counts a decision.
func (s *stats) decided(rec protocol.Record, now time.Time) {
	b := s.bucket(rec.Decided.Unix(), now.Unix())
	if b == nil {
		return
	}
	if rec.State.Committed() {
		b.Committed++
	} else {
		if b.Aborted == nil {
			b.Aborted = make(map[protocol.Cause]int)
		}
		b.Aborted[rec.Cause]++
	}
	b.latency[latencyIndex(rec.Decided.Sub(rec.Created))]++
}

// series returns the last n seconds before now, oldest first, with empty
// seconds filled in.
func (s *stats) series(now time.Time, n int) []Bucket {
	end := now.Unix()
	first := max(end-int64(n)+1, min(s.since, end))
	out := make([]Bucket, 0, end-first+1)
	for sec := first; sec <= end; sec++ {
		b := s.ring[sec%window]
		if b.Second != sec {
			b = Bucket{Second: sec}
		}
		out = append(out, b)
	}
	return out
}

// Rates is what the overview shows of the last minute.
type Rates struct {
	PerSecond float64                `json:"per_second"` // decisions per second
	Committed int                    `json:"committed"`
	Aborted   map[protocol.Cause]int `json:"aborted"`
	P50       time.Duration          `json:"p50"`
	P99       time.Duration          `json:"p99"`
}

// rates sums the last minute, or the seconds since counting began if
// fewer.
func (s *stats) rates(now time.Time) Rates {
	r := Rates{Aborted: make(map[protocol.Cause]int)}
	var lat [latencyBuckets]int
	total := 0
	seconds := s.series(now, 60)
	for _, b := range seconds {
		r.Committed += b.Committed
		total += b.Committed
		for c, n := range b.Aborted {
			r.Aborted[c] += n
			total += n
		}
		for i, n := range b.latency {
			lat[i] += n
		}
	}
	r.PerSecond = float64(total) / float64(len(seconds))
	r.P50, r.P99 = percentile(lat, total, 0.50), percentile(lat, total, 0.99)
	return r
}

func latencyIndex(d time.Duration) int {
	if d <= latencyBase {
		return 0
	}
	i := int(math.Ceil(math.Log(float64(d)/float64(latencyBase)) / math.Log(latencyGrowth)))
	return min(i, latencyBuckets-1)
}

// percentile returns the upper bound of the bucket holding quantile q of
// total samples; 0 without samples.
func percentile(lat [latencyBuckets]int, total int, q float64) time.Duration {
	if total == 0 {
		return 0
	}
	rank := int(math.Ceil(q * float64(total)))
	seen := 0
	for i, n := range lat {
		seen += n
		if seen >= rank {
			return time.Duration(float64(latencyBase) * math.Pow(latencyGrowth, float64(i)))
		}
	}
	return time.Duration(float64(latencyBase) * math.Pow(latencyGrowth, latencyBuckets-1))
}

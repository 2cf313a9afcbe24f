package console

import (
	"slices"
	"time"

	"github.com/concord-tx/concord/protocol"
)

// maxOpen bounds the records the view keeps. Past it the overview says
// its counts are lower bounds.
const maxOpen = 200_000

// view is what the overview needs of the records not yet terminal:
// undecided ones, and decided ones whose participants have not all
// applied the decision. Terminal records are dropped as they finish, so
// its size is the work in flight, not the retention window. Not safe for
// concurrent use; the hub guards it.
type view struct {
	open map[string]protocol.Record
	full bool // maxOpen was reached: counts are lower bounds
}

func newView() view { return view{open: make(map[string]protocol.Record)} }

// apply records rec's latest state.
func (v *view) apply(rec protocol.Record) {
	if rec.State.Terminal() {
		delete(v.open, rec.ID)
		return
	}
	if _, ok := v.open[rec.ID]; !ok && len(v.open) >= maxOpen {
		v.full = true
		return
	}
	v.open[rec.ID] = rec
}

// remove forgets a deleted record.
func (v *view) remove(id string) { delete(v.open, id) }

// record returns the open record of id, if any.
func (v *view) record(id string) (protocol.Record, bool) {
	r, ok := v.open[id]
	return r, ok
}

// Summary is the overview's count of work in flight.
type Summary struct {
	Undecided int       `json:"undecided"`
	Oldest    time.Time `json:"oldest,omitzero"` // creation of the oldest undecided
	// Unapplied counts decided transactions waiting longer than the stuck
	// threshold for their participants to apply the decision.
	Unapplied  int  `json:"unapplied"`
	LowerBound bool `json:"lower_bound,omitempty"`
	// named: how many undecided transactions name each participant.
	named map[string]int
	// stuck: the longest-waiting unapplied records, oldest decision first.
	stuck []protocol.Record
}

// maxStuckShown bounds the stuck transactions the overview details.
const maxStuckShown = 20

func (v *view) summary(now time.Time, stuckAfter time.Duration) Summary {
	s := Summary{LowerBound: v.full, named: make(map[string]int)}
	for _, r := range v.open {
		if !r.State.Decided() {
			s.Undecided++
			if s.Oldest.IsZero() || r.Created.Before(s.Oldest) {
				s.Oldest = r.Created
			}
			for _, p := range r.Participants {
				s.named[p]++
			}
			continue
		}
		if now.Sub(r.Decided) >= stuckAfter {
			s.Unapplied++
			s.stuck = append(s.stuck, r)
		}
	}
	slices.SortFunc(s.stuck, func(a, b protocol.Record) int { return a.Decided.Compare(b.Decided) })
	if len(s.stuck) > maxStuckShown {
		s.stuck = s.stuck[:maxStuckShown]
	}
	return s
}

package console

import (
	"fmt"
	"testing"
)

// TestRecentCoversWhatItHolds: past its capacity the ring forgets the
// oldest half, and its coverage starts after the last begin forgotten, so
// the begins it keeps of that revision are left to the sorted read rather
// than listed twice. A look at n begins ends with a whole revision and
// says where it stopped; a revision past the last one seen, or anything
// after a gap in the watch, is not covered.
func TestRecentCoversWhatItHolds(t *testing.T) {
	var r recent
	if _, ok := r.before(100, 10, ""); ok {
		t.Fatal("an empty ring covers something")
	}
	rev := func(i int) int64 { return int64(10 + i/3) } // three begins a revision
	r.seen(10, 10)
	for i := range 2 * recentCap {
		r.add(begin{rev: rev(i), id: fmt.Sprintf("t%d", i)})
	}
	last := rev(2 * recentCap)
	r.add(begin{rev: last, id: "last"})
	r.seen(last, last)
	// Forgotten: begins 0 .. recentCap-1. The next begin shares the last
	// one's revision, which is no longer covered.
	from := rev(recentCap-1) + 1
	if rev(recentCap) != from-1 {
		t.Fatalf("the test's begins do not share a revision across the cut")
	}
	s, ok := r.before(last, 3*recentCap, "")
	held := 1 // "last"
	for i := recentCap; i < 2*recentCap; i++ {
		if rev(i) >= from {
			held++
		}
	}
	if !ok || !s.whole || s.low != from || len(s.begins) != held || s.begins[0].id != "last" || s.begins[held-1].rev != from {
		t.Fatalf("whole look: ok %v, whole %v, low %d (want %d), %d begins (want %d)", ok, s.whole, s.low, from, len(s.begins), held)
	}
	for i := 1; i < len(s.begins); i++ {
		if s.begins[i].rev > s.begins[i-1].rev {
			t.Fatalf("begins are not newest first at %d", i)
		}
	}
	// Revision last holds three begins ("last" and two of the loop's), as
	// every other: a look at 5 takes the whole of revision last-1 too.
	if s, _ := r.before(last, 5, ""); s.whole || s.low != last-1 || len(s.begins) != 6 {
		t.Errorf("a look at 5: whole %v, low %d (want %d), %d begins (want 6, no revision cut)", s.whole, s.low, last-1, len(s.begins))
	}
	// A prefix filters what is returned, not what is looked at.
	if s, _ := r.before(last, 5, "last"); len(s.begins) != 1 || s.low != last-1 {
		t.Errorf("a look at 5 for prefix last: %d begins, low %d", len(s.begins), s.low)
	}
	if _, ok := r.before(from-1, 10, ""); ok {
		t.Error("a revision before the coverage is covered")
	}
	if _, ok := r.before(last+1, 10, ""); ok {
		t.Error("a revision past the last one seen is covered")
	}
	r.gap()
	if _, ok := r.before(last, 10, ""); ok {
		t.Error("covered after a gap")
	}
}

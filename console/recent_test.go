package console

import (
	"slices"
	"testing"
)

// TestRecentCoversWhatItHolds: past its capacity the ring forgets the
// oldest half, and its coverage starts after the last begin forgotten, so
// the begins it keeps of that revision are left to the sorted read rather
// than listed twice; a gap in the watch forgets everything.
func TestRecentCoversWhatItHolds(t *testing.T) {
	var r recent
	if _, _, ok := r.before(100, 10); ok {
		t.Fatal("an empty ring covers something")
	}
	r.seen(10, 10)
	rev := func(i int) int64 { return int64(10 + i/3) } // three begins a revision
	for i := range 2 * recentCap {
		r.add(begin{rev: rev(i), id: "t"})
	}
	r.seen(10, rev(2*recentCap))
	r.add(begin{rev: rev(2 * recentCap), id: "last"})
	// Forgotten: begins 0 .. recentCap-1. The next begin shares the last
	// one's revision, which is no longer covered.
	want := rev(recentCap-1) + 1
	if rev(recentCap) != want-1 {
		t.Fatalf("the test's begins do not share a revision across the cut")
	}
	bs, from, ok := r.before(rev(2*recentCap), 3*recentCap)
	if !ok || from != want {
		t.Fatalf("covered from %d (%v), want %d", from, ok, want)
	}
	held := 1 // "last"
	for i := recentCap; i < 2*recentCap; i++ {
		if rev(i) >= from {
			held++
		}
	}
	if len(bs) != held || bs[0].id != "last" || bs[len(bs)-1].rev != from {
		t.Fatalf("%d begins, want %d; newest %v, oldest %v", len(bs), held, bs[0], bs[len(bs)-1])
	}
	if !slices.IsSortedFunc(bs, func(a, b begin) int { return int(b.rev - a.rev) }) {
		t.Error("begins are not newest first")
	}
	if _, _, ok := r.before(from-1, 10); ok {
		t.Error("a revision before the coverage is covered")
	}
	if bs, _, _ := r.before(from+1, 10); len(bs) != 6 || bs[0].rev != from+1 || bs[5].rev != from {
		t.Errorf("below %d: %v", from+1, bs)
	}
	r.gap()
	if _, _, ok := r.before(10+recentCap, 10); ok {
		t.Error("covered after a gap")
	}
}

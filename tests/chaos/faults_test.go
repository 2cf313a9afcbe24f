package chaos

import (
	"slices"
	"testing"
)

// A fault tried often enough and never injected fails the faults check; one
// tried too few times, or injected at least once, does not.
func TestNeverInjected(t *testing.T) {
	attempts := map[string]int{"kill-bank-voted": 3, "pause-bank": 2, "kill-coord": 5}
	counts := map[string]int{"kill-coord": 1, "compaction": 40}
	got := neverInjected(attempts, counts, 3)
	want := []string{"kill-bank-voted: tried 3 times, never injected (see faults.log)"}
	if !slices.Equal(got, want) {
		t.Fatalf("never injected: %q, want %q", got, want)
	}
}

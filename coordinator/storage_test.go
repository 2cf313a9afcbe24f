package coordinator

import (
	"fmt"
	"testing"
)

// BenchmarkStorageCheck is what the storage limits add to a Begin: one
// check of in-memory counts (the counts come from a watch, not from a
// request per Begin).
func BenchmarkStorageCheck(b *testing.B) {
	p := &pending{}
	p.mu.msgs = map[string]inboxEntry{}
	p.mu.per = map[string]*participantUse{}
	p.mu.undecided = map[string]int{}
	for i := range 10_000 {
		p.putLocked(fmt.Sprintf("/tx/~inbox/p%d/t%d", i%100, i), inboxEntry{participant: fmt.Sprintf("p%d", i%100), id: fmt.Sprintf("t%d", i), bytes: 300, prepare: true})
	}
	l := StorageLimits{}.withDefaults()
	names := []string{"p1", "p2"}
	b.ReportAllocs()
	for b.Loop() {
		if err := p.check(l, names); err != nil {
			b.Fatal(err)
		}
	}
}

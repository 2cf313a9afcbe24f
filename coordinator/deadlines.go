package coordinator

import (
	"container/heap"
	"context"
	"time"
)

// deadlineHeap orders transaction ids by the time they must be reviewed.
// Entries are never removed early: a review of a transaction that was
// decided meanwhile does nothing.
type deadlineHeap struct{ items timerItems }

type timerItem struct {
	at time.Time
	id string
}

type timerItems []timerItem

func (h timerItems) Len() int           { return len(h) }
func (h timerItems) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h timerItems) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerItems) Push(x any)        { *h = append(*h, x.(timerItem)) }
func (h *timerItems) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

func (d *deadlineHeap) push(at time.Time, id string) { heap.Push(&d.items, timerItem{at: at, id: id}) }

func (d *deadlineHeap) peek() (time.Time, bool) {
	if len(d.items) == 0 {
		return time.Time{}, false
	}
	return d.items[0].at, true
}

func (d *deadlineHeap) pop() string { return heap.Pop(&d.items).(timerItem).id }

// nextTimer is how long until the earliest deadline.
func (l *leadership) nextTimer() time.Duration {
	at, ok := l.timers.peek()
	if !ok {
		return time.Hour
	}
	return max(at.Sub(l.r.opts.now()), time.Millisecond)
}

// expire reviews every transaction whose timer has passed.
func (l *leadership) expire(ctx context.Context) {
	now := l.r.opts.now()
	for {
		at, ok := l.timers.peek()
		if !ok || at.After(now) {
			return
		}
		id := l.timers.pop()
		l.review(ctx, id)
	}
}

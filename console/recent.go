package console

import "strings"

// recentCap is how many of the newest begins the Console remembers at
// least (up to twice as many): the first pages of the list, at any rate,
// at a few dozen bytes each.
const recentCap = 4096

// begin is one record's creation: its revision (the begin revision) and id.
type begin struct {
	rev int64
	id  string
}

// recent is the newest begins the Console has seen through the coordinator
// Client's watch, oldest first. It holds every record created at a
// revision from `from` to upTo, so the newest transactions can be listed
// by reading their records by id, where etcd would read and sort every
// record kept for the retention window to find them. Not safe for
// concurrent use; the hub guards it.
type recent struct {
	begins []begin
	// from is the lowest revision covered: 0 until the first event is
	// seen, and again after a gap in the watch (a compaction).
	from int64
	upTo int64 // the last revision seen
}

// seen folds in one watch response's revisions: first is its first
// event's, last its last one's.
func (r *recent) seen(first, last int64) {
	if r.from == 0 {
		r.from = first
	}
	r.upTo = max(r.upTo, last)
}

// add remembers a begin; the oldest is forgotten past recentCap, and with
// it the coverage of its revision.
func (r *recent) add(b begin) {
	if len(r.begins) == 2*recentCap {
		// Drop the older half at once: a copy every recentCap begins.
		r.from = r.begins[recentCap-1].rev + 1
		r.begins = append(r.begins[:0], r.begins[recentCap:]...)
	}
	r.begins = append(r.begins, b)
}

// gap forgets everything: changes were missed.
func (r *recent) gap() {
	r.begins, r.from, r.upTo = r.begins[:0], 0, 0
}

// span is what before found: the begins of the ids asked for, newest
// first, of every revision from top down to low; whole when low is where
// the memory starts, so that older records are found only in etcd.
type span struct {
	begins []begin
	low    int64
	whole  bool
}

// before looks at the begins from revision top down, at least n of them
// but never ending inside a revision, and returns those whose ids start
// with prefix. ok is false when top is not covered: before from, past
// upTo, or nothing seen yet.
func (r *recent) before(top int64, n int, prefix string) (s span, ok bool) {
	if r.from == 0 || top < r.from || top > r.upTo {
		return span{}, false
	}
	s.low, s.whole = r.from, true
	looked := 0
	for i := len(r.begins) - 1; i >= 0 && r.begins[i].rev >= r.from; i-- {
		b := r.begins[i]
		if b.rev > top {
			continue
		}
		// begins[i+1] is the last one looked at, when any was.
		if looked > 0 && looked >= n && b.rev != r.begins[i+1].rev {
			s.low, s.whole = r.begins[i+1].rev, false
			break
		}
		looked++
		if strings.HasPrefix(b.id, prefix) {
			s.begins = append(s.begins, b)
		}
	}
	return s, true
}

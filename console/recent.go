package console

// recentCap is how many of the newest begins the Console remembers: the
// first pages of the list, at any rate, and a few hundred bytes each.
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

// before returns up to n begins below revision top (inclusive), newest
// first, and the coverage: every record created from `from` to top is
// among them unless n cut them short. ok is false if top is not covered.
func (r *recent) before(top int64, n int) (bs []begin, from int64, ok bool) {
	if r.from == 0 || top < r.from {
		return nil, 0, false
	}
	for i := len(r.begins) - 1; i >= 0 && len(bs) < n && r.begins[i].rev >= r.from; i-- {
		if r.begins[i].rev <= top {
			bs = append(bs, r.begins[i])
		}
	}
	return bs, r.from, true
}

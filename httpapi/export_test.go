package httpapi

// Undecided is how many transactions begun through h it counts as
// undecided, for the tests: every slot taken is given back.
func (h *Handler) Undecided() int {
	u := h.a.pending
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.totalLocked()
}

package coordinator

// Action is a recovery action of the leading replica, as reported to
// Observer.Recovery. The set is closed: Actions lists every value the
// replica reports, so that a metrics exporter can create every series at
// start and a test can tell when the two drift apart.
type Action string

// The recovery actions.
const (
	// ActionAbortDeadline: an undecided transaction was aborted at its
	// deadline.
	ActionAbortDeadline Action = "abort_deadline"
	// ActionAbortParticipantLost: an undecided transaction was aborted
	// because a participant that had not voted is not registered.
	ActionAbortParticipantLost Action = "abort_participant_lost"
	// ActionFinishAbandoned: an aborting transaction was made aborted
	// without the acknowledgements of participants that are gone.
	ActionFinishAbandoned Action = "finish_abandoned"
	// ActionGC: terminal records were deleted after the retention window
	// (n counts records).
	ActionGC Action = "gc"
)

// Actions returns every recovery action, in a fixed order. The slice is
// the caller's.
func Actions() []Action {
	return []Action{ActionAbortDeadline, ActionAbortParticipantLost, ActionFinishAbandoned, ActionGC}
}

// String returns the action's name, as used in metric labels.
func (a Action) String() string { return string(a) }

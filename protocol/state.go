package protocol

import (
	"fmt"
	"strings"
)

// State is the state of a transaction record. The zero value is invalid so
// that a record that was never set is caught.
type State uint8

const (
	StateInvalid State = iota
	// StatePreparing: begun, waiting for votes. Undecided.
	StatePreparing
	// StateCommitting: decided commit; participants are applying it.
	StateCommitting
	// StateAborting: decided abort; participants are applying it.
	StateAborting
	// StateCommitted: every participant applied the commit. Terminal.
	StateCommitted
	// StateAborted: every participant applied the abort. Terminal.
	StateAborted
)

var stateNames = [...]string{
	StateInvalid:    "invalid",
	StatePreparing:  "preparing",
	StateCommitting: "committing",
	StateAborting:   "aborting",
	StateCommitted:  "committed",
	StateAborted:    "aborted",
}

// States returns every valid state in lifecycle order. The slice is the
// caller's.
func States() []State {
	return []State{StatePreparing, StateCommitting, StateAborting, StateCommitted, StateAborted}
}

// String returns the lower-case name used in records and in the HTTP API.
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// Valid reports whether s is one of the five states.
func (s State) Valid() bool { return s >= StatePreparing && s <= StateAborted }

// Decided reports whether the commit point has passed: the outcome is fixed.
func (s State) Decided() bool { return s >= StateCommitting && s <= StateAborted }

// Terminal reports whether every participant has applied the outcome.
func (s State) Terminal() bool { return s == StateCommitted || s == StateAborted }

// Committed reports whether the outcome is commit (decided or terminal).
func (s State) Committed() bool { return s == StateCommitting || s == StateCommitted }

// Outcome returns the terminal state that s leads to: committed for
// committing, aborted for aborting, s itself when terminal, and
// StateInvalid while undecided.
func (s State) Outcome() State {
	switch s {
	case StateCommitting, StateCommitted:
		return StateCommitted
	case StateAborting, StateAborted:
		return StateAborted
	}
	return StateInvalid
}

// ParseState parses a state name, case-insensitively.
func ParseState(name string) (State, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	for _, s := range States() {
		if stateNames[s] == n {
			return s, nil
		}
	}
	return StateInvalid, fmt.Errorf("%w: %q (expected one of preparing, committing, aborting, committed, aborted)", ErrInvalidState, name)
}

// MarshalText encodes the state by name.
func (s State) MarshalText() ([]byte, error) {
	if !s.Valid() {
		return nil, fmt.Errorf("%w: %d", ErrInvalidState, uint8(s))
	}
	return []byte(s.String()), nil
}

// UnmarshalText decodes a state name.
func (s *State) UnmarshalText(b []byte) error {
	v, err := ParseState(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// transitions is the state machine: transitions[from] lists the states a
// record may move to in one write.
var transitions = map[State][]State{
	StatePreparing:  {StateCommitting, StateAborting},
	StateCommitting: {StateCommitted},
	StateAborting:   {StateAborted},
}

// CanTransition reports whether a record in state from may be rewritten in
// state to.
func CanTransition(from, to State) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Cause says why a transaction aborted.
type Cause string

const (
	CauseNone            Cause = ""
	CauseVoteNo          Cause = "vote_no"          // a participant voted no
	CauseDeadline        Cause = "deadline"         // not every vote arrived before the deadline
	CauseParticipantLost Cause = "participant_lost" // a participant that had not voted was not registered
	CauseOperator        Cause = "operator"         // aborted on request
)

// Causes returns every abort cause, for metrics labels. The slice is the
// caller's.
func Causes() []Cause {
	return []Cause{CauseVoteNo, CauseDeadline, CauseParticipantLost, CauseOperator}
}

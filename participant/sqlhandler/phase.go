package sqlhandler

import "fmt"

// Phase is what the handler has recorded for one transaction. The zero
// value is invalid, so that a row never set is caught.
type Phase uint8

const (
	PhaseInvalid Phase = iota
	// PhasePrepared: the user's Prepare succeeded and was committed with
	// the row; the vote is yes.
	PhasePrepared
	// PhaseCommitted: the user's Commit ran and was committed with the row.
	PhaseCommitted
	// PhaseAborted: the user's Abort ran (after a Prepare), or the abort
	// came first and was recorded so that a late Prepare is refused.
	PhaseAborted
	// PhaseRefused: the user's Prepare failed; its writes were rolled back
	// and only the row, with the reason, was recorded.
	PhaseRefused
)

var phaseNames = [...]string{
	PhaseInvalid:   "invalid",
	PhasePrepared:  "prepared",
	PhaseCommitted: "committed",
	PhaseAborted:   "aborted",
	PhaseRefused:   "refused",
}

// String returns the name stored in the table.
func (p Phase) String() string {
	if int(p) < len(phaseNames) {
		return phaseNames[p]
	}
	return fmt.Sprintf("phase(%d)", uint8(p))
}

// Valid reports whether p is one of the four phases.
func (p Phase) Valid() bool { return p >= PhasePrepared && p <= PhaseRefused }

// Final reports whether nothing changes p any more: only such rows are
// removed by Cleanup.
func (p Phase) Final() bool { return p >= PhaseCommitted && p <= PhaseRefused }

// MarshalText encodes p by name; the invalid phase is an error.
func (p Phase) MarshalText() ([]byte, error) {
	if !p.Valid() {
		return nil, fmt.Errorf("sqlhandler: invalid phase %d", uint8(p))
	}
	return []byte(p.String()), nil
}

// UnmarshalText decodes a phase name (see ParsePhase).
func (p *Phase) UnmarshalText(b []byte) error {
	q, err := ParsePhase(string(b))
	if err != nil {
		return err
	}
	*p = q
	return nil
}

// ParsePhase reads a phase name as stored in the table.
func ParsePhase(s string) (Phase, error) {
	for p := PhasePrepared; p <= PhaseRefused; p++ {
		if phaseNames[p] == s {
			return p, nil
		}
	}
	return PhaseInvalid, fmt.Errorf("sqlhandler: unknown phase %q (expected prepared, committed, aborted or refused)", s)
}

package bank

import "fmt"

// Phase is what this bank has durably recorded for one transaction. The
// zero value is invalid so that a record that was never set is caught.
type Phase uint8

const (
	PhaseInvalid Phase = iota
	// PhasePrepared: Prepare succeeded and voted yes; the debits are held.
	// The bank must now apply whatever the coordinator decides.
	PhasePrepared
	// PhaseCommitted: Commit applied the moves. Final.
	PhaseCommitted
	// PhaseAborted: Abort released the holds, or arrived first and fenced
	// off a late Prepare. Final.
	PhaseAborted
	// PhaseRefused: Prepare voted no (insufficient funds, unknown account,
	// malformed payload); nothing was held. Final: the only decision this
	// bank agrees with is abort, and a repeated Prepare is refused again.
	PhaseRefused
)

var phaseNames = [...]string{
	PhaseInvalid:   "invalid",
	PhasePrepared:  "prepared",
	PhaseCommitted: "committed",
	PhaseAborted:   "aborted",
	PhaseRefused:   "refused",
}

// String returns the lower-case name used in the store and in GET /applied.
func (p Phase) String() string {
	if int(p) < len(phaseNames) {
		return phaseNames[p]
	}
	return fmt.Sprintf("phase(%d)", uint8(p))
}

// Valid reports whether p is one of the four phases.
func (p Phase) Valid() bool { return p >= PhasePrepared && p <= PhaseRefused }

// Final reports whether nothing will change p any more.
func (p Phase) Final() bool { return p >= PhaseCommitted && p <= PhaseRefused }

// MarshalText encodes the phase by name.
func (p Phase) MarshalText() ([]byte, error) {
	if !p.Valid() {
		return nil, fmt.Errorf("bank: invalid phase %d", uint8(p))
	}
	return []byte(p.String()), nil
}

// UnmarshalText decodes a phase name.
func (p *Phase) UnmarshalText(b []byte) error {
	for q := PhasePrepared; q <= PhaseRefused; q++ {
		if phaseNames[q] == string(b) {
			*p = q
			return nil
		}
	}
	return fmt.Errorf("bank: unknown phase %q (expected prepared, committed, aborted or refused)", b)
}

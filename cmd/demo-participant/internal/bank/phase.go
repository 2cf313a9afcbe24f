package bank

import "github.com/concord-tx/concord/participant/sqlhandler"

// Phase is what this bank has durably recorded for one transaction: the
// phases of package sqlhandler, which the SQL store's bookkeeping records
// and the bbolt store keeps by hand, with the same names in the store and
// in GET /applied. The zero value is invalid so that a record that was
// never set is caught.
type Phase = sqlhandler.Phase

const (
	PhaseInvalid = sqlhandler.PhaseInvalid
	// PhasePrepared: Prepare succeeded and voted yes; the moves are
	// reserved. The bank must now apply whatever the coordinator decides.
	PhasePrepared = sqlhandler.PhasePrepared
	// PhaseCommitted: Commit applied the moves. Final.
	PhaseCommitted = sqlhandler.PhaseCommitted
	// PhaseAborted: Abort released the reservations, or arrived first and
	// fenced off a late Prepare. Final.
	PhaseAborted = sqlhandler.PhaseAborted
	// PhaseRefused: Prepare voted no (insufficient funds, unknown account,
	// malformed payload); nothing was reserved. Final: the only decision
	// this bank agrees with is abort, and a repeated Prepare is refused
	// again.
	PhaseRefused = sqlhandler.PhaseRefused
)

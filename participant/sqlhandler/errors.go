package sqlhandler

import "errors"

// Errors returned by the handler. Test them with errors.Is.
var (
	// ErrInvalidConfig: New was given a bad database, name or option.
	ErrInvalidConfig = errors.New("sqlhandler: invalid configuration")
	// ErrSchema: the bookkeeping table is missing and could not be
	// created, or is of another version. The message says what to run.
	ErrSchema = errors.New("sqlhandler: bookkeeping table")
	// ErrAlreadyAborted: Prepare came after the handler recorded the
	// transaction's abort; it votes no without calling the user's Prepare.
	// A refusal: Prepare returns it inside a *RefusedError.
	ErrAlreadyAborted = errors.New("transaction already aborted")
	// ErrNotPrepared: Commit came for a transaction this participant did
	// not prepare. The protocol never does that; it means lost or foreign
	// data, or bookkeeping rows removed while the transaction still ran.
	ErrNotPrepared = errors.New("sqlhandler: commit of a transaction not prepared here")
	// ErrAlreadyCommitted: Abort came for a transaction committed here.
	// The protocol never does that either.
	ErrAlreadyCommitted = errors.New("sqlhandler: abort of a transaction committed here")
)

// RefusedError is Prepare's no vote. Its text is the vote's reason: the
// user's Prepare error text the first time, the same text from the
// bookkeeping row on every repeat. Unwrap gives the user's error on the
// first call and ErrAlreadyAborted when the abort came first.
type RefusedError struct {
	Reason string
	err    error
}

func (e *RefusedError) Error() string { return e.Reason }
func (e *RefusedError) Unwrap() error { return e.err }

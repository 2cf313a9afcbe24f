package participant

import "errors"

// Errors returned by the participant. Test them with errors.Is.
var (
	// ErrInvalidConfig: New was given a bad name, handler or option.
	ErrInvalidConfig = errors.New("participant: invalid configuration")
	// ErrClosed: the participant was closed.
	ErrClosed = errors.New("participant: closed")
	// ErrFenced: this instance is no longer the registered one (its lease
	// expired and another instance took over); it stops acting.
	ErrFenced = errors.New("participant: registration lost")
	// ErrRetry: a handler's error that wraps it is not an answer: Prepare
	// is called again after a backoff, until the transaction's deadline,
	// instead of voting no (see Handler). For a failure that decided
	// nothing, such as a database that is down.
	ErrRetry = errors.New("participant: retry later")
)

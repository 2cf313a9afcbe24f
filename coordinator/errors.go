package coordinator

import "errors"

// Errors returned by the coordinator. They are wrapped with the transaction
// id; test them with errors.Is. Validation errors wrap the protocol package's
// errors (protocol.ErrNoBranches, ...) as well as ErrInvalidRequest.
var (
	// ErrInvalidRequest: the request was refused before anything was written.
	ErrInvalidRequest = errors.New("coordinator: invalid request")
	// ErrInvalidConfig: an option is out of range; nothing was started.
	ErrInvalidConfig = errors.New("coordinator: invalid configuration")
	// ErrNotFound: no record with that id (never begun, or deleted after
	// the retention window).
	ErrNotFound = errors.New("coordinator: transaction not found")
	// ErrConflict: a transaction with that id exists with other branches.
	ErrConflict = errors.New("coordinator: transaction id already used by another request")
	// ErrAlreadyCommitted: abort was asked of a committed transaction.
	ErrAlreadyCommitted = errors.New("coordinator: transaction already committed")
	// ErrClosed: the Client or Replica was closed.
	ErrClosed = errors.New("coordinator: closed")
	// ErrLimit: Begin was refused because a storage limit is reached (see
	// StorageLimits); nothing was written. The error is a *LimitError that
	// names the limit, the participant, the value and the maximum. Retry
	// later, once the participant has caught up.
	ErrLimit = errors.New("coordinator: storage limit reached")
	// ErrNoSpace: etcd refused a write because its space quota is full
	// (its NOSPACE alarm is raised). Nothing was written; no write will
	// succeed until an operator compacts, defragments and disarms the
	// alarm (see README, "When etcd is full"). Reads still work.
	ErrNoSpace = errors.New("coordinator: etcd is out of space (NOSPACE alarm)")
)

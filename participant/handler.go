package participant

import (
	"context"
	"time"
)

// Tx is what a handler is told about a transaction.
type Tx struct {
	ID string
	// Revision is the etcd revision that began the transaction. An id is
	// unique only within the coordinator's retention window, after which
	// it may name a new transaction; ID and Revision together name one for
	// good. 0 in a Commit or Abort decided by an earlier version of
	// Concord, which did not record it: match such a call by ID alone.
	Revision     int64
	Participants []string  // every participant of the transaction, this one included
	Deadline     time.Time // votes after this are too late; Prepare's ctx ends then
	Payload      []byte    // this participant's branch payload; Prepare only
	Reason       string    // why it aborted; Abort only
}

// Handler is what a service implements to take part in transactions.
//
// Contract:
//   - Every method may be called more than once for the same transaction
//     (the process crashed before its vote or acknowledgement was written,
//     or a standby took over) and must be idempotent by Tx.ID. Record the
//     transaction id and the phase in the same local transaction as the
//     business change, and make a repeated call return what the first did.
//     Record Tx.Revision too if callers may reuse an id after the
//     coordinator's retention window: a Prepare with a known id but a new
//     revision is a new transaction, not a repeat.
//   - Prepare must make the branch durable before returning nil: reserve,
//     do not apply. Returning an error votes no, with the error text as the
//     reason, and aborts the transaction. Returning nil votes yes: from then
//     on the participant must be able to commit, even after a restart.
//     An error that wraps ErrRetry is no answer: nothing is voted, and
//     Prepare is called again after a backoff until the deadline, when the
//     coordinator aborts (a database that is down must not vote no).
//   - Abort may come without any Prepare before it (the transaction aborted
//     before this participant saw it), and for a transaction whose Prepare
//     failed. It must then record the abort, so that a late Prepare for the
//     same id is refused.
//   - Commit and Abort are retried with backoff until they return nil; an
//     error there is never final. The outcome is decided by then.
//   - Calls for one transaction never overlap; calls for different
//     transactions run concurrently, up to the configured number of workers.
//   - ctx is cancelled when the participant closes or loses its
//     registration; the call may then be repeated by whoever takes over.
type Handler interface {
	Prepare(ctx context.Context, tx Tx) error
	Commit(ctx context.Context, tx Tx) error
	Abort(ctx context.Context, tx Tx) error
}

// HandlerFuncs makes a Handler of functions; a nil function succeeds
// without doing anything.
type HandlerFuncs struct {
	PrepareFunc func(ctx context.Context, tx Tx) error
	CommitFunc  func(ctx context.Context, tx Tx) error
	AbortFunc   func(ctx context.Context, tx Tx) error
}

func (h HandlerFuncs) Prepare(ctx context.Context, tx Tx) error { return call(h.PrepareFunc, ctx, tx) }
func (h HandlerFuncs) Commit(ctx context.Context, tx Tx) error  { return call(h.CommitFunc, ctx, tx) }
func (h HandlerFuncs) Abort(ctx context.Context, tx Tx) error   { return call(h.AbortFunc, ctx, tx) }

func call(f func(context.Context, Tx) error, ctx context.Context, tx Tx) error {
	if f == nil {
		return nil
	}
	return f(ctx, tx)
}

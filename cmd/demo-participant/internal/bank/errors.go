package bank

import (
	"errors"

	"github.com/concord-tx/concord/participant/sqlhandler"
)

// Errors returned by the bank. Test them with errors.Is.
//
// The first six are refusals: Prepare returns them wrapped in a
// *RefusedError, whose text becomes the participant's "no" vote and so the
// abort reason the initiator reads ("bank-a: insufficient funds: ..."). For
// that reason they carry no "bank:" prefix.
var (
	// ErrInsufficientFunds: a debit exceeds the account's balance minus
	// what undecided debits already hold.
	ErrInsufficientFunds = errors.New("insufficient funds")
	// ErrOverflow: a credit would take the account's balance, with the
	// credits already prepared, past the largest amount it can hold.
	ErrOverflow = errors.New("balance would overflow")
	// ErrUnknownAccount: a move names an account this bank does not have.
	ErrUnknownAccount = errors.New("unknown account")
	// ErrInvalidPayload: the branch payload is not a valid list of moves.
	ErrInvalidPayload = errors.New("invalid payload")
	// ErrAlreadyAborted: Prepare came after this bank recorded the
	// transaction's abort. It is sqlhandler's, so that errors.Is finds it
	// whatever the store.
	ErrAlreadyAborted = sqlhandler.ErrAlreadyAborted
	// ErrIDInUse: Prepare came for an id this bank has recorded for a
	// later transaction of that id (begun at a later revision). The
	// protocol never does that.
	ErrIDInUse = errors.New("transaction id in use")

	// ErrNotPrepared: Commit was asked for a transaction this bank did not
	// prepare. The protocol never does that; it means lost or foreign data.
	ErrNotPrepared = errors.New("bank: commit of a transaction this bank did not prepare")
	// ErrAlreadyCommitted: Abort was asked for a transaction this bank
	// committed. The protocol never does that either.
	ErrAlreadyCommitted = errors.New("bank: abort of a committed transaction")
	// ErrInvalidAccount: an account name or opening balance is malformed.
	ErrInvalidAccount = errors.New("bank: invalid account")
	// ErrInUse: another process (another bank) holds the store's file.
	ErrInUse = errors.New("bank: store in use")
	// ErrCorrupt: the store holds a value this version cannot read.
	ErrCorrupt = errors.New("bank: corrupt store")
)

// RefusedError is Prepare's refusal of a transaction. It is recorded with
// the transaction, so a repeated Prepare returns the same text.
type RefusedError struct {
	Reason string // the vote's reason, e.g. "insufficient funds: ..."
	err    error  // the sentinel, for errors.Is
}

func (e *RefusedError) Error() string { return e.Reason }
func (e *RefusedError) Unwrap() error { return e.err }

package bank

import (
	"fmt"
	"math"
)

// Account is one account's money. Balance is committed; Held is reserved
// by prepared, undecided debits (and never exceeds Balance); Incoming is
// reserved by prepared, undecided credits: the headroom their Commit
// needs, so that Balance + Incoming never exceeds math.MaxInt64 and no
// Commit can overflow.
type Account struct {
	Balance  int64 `json:"balance"`
	Held     int64 `json:"held"`
	Incoming int64 `json:"incoming"`
}

// reserve checks move m against the account and returns it with the
// move reserved: a debit must be covered by the balance minus what is
// held, a credit must fit under math.MaxInt64 with every credit already
// prepared. The same rules serve every store.
func (a Account) reserve(name string, m int64) (Account, error) {
	switch {
	case m < 0 && a.Balance-a.Held < -m:
		return a, fmt.Errorf("%w: %s has %d available (balance %d, held %d), debit of %d", ErrInsufficientFunds, name, a.Balance-a.Held, a.Balance, a.Held, -m)
	case m > 0 && a.Balance > math.MaxInt64-a.Incoming-m:
		return a, fmt.Errorf("%w: %s: credit of %d would overflow its balance %d with %d already incoming", ErrOverflow, name, m, a.Balance, a.Incoming)
	case m < 0:
		a.Held += -m
	default:
		a.Incoming += m
	}
	return a, nil
}

// release gives back what move m reserved.
func (a Account) release(m int64) Account {
	if m < 0 {
		a.Held += m
	} else {
		// max: a credit prepared by a version that reserved no headroom.
		a.Incoming = max(0, a.Incoming-m)
	}
	return a
}

// apply commits reserved move m: a debit leaves the balance and the
// holds, a credit joins the balance and leaves the headroom.
func (a Account) apply(name string, m int64) (Account, error) {
	a = a.release(m)
	if m > 0 && a.Balance > math.MaxInt64-m {
		return a, fmt.Errorf("%w: account %s: credit of %d would overflow its balance %d", ErrCorrupt, name, m, a.Balance)
	}
	a.Balance += m
	return a, nil
}

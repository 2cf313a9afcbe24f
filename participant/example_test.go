package participant_test

import (
	"context"
	"database/sql"
	"errors"

	"github.com/concord-tx/concord/participant"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// inventory is a service's own store. Each handler records the
// transaction id and phase in the same local transaction as the business
// change, which makes repeated calls no-ops.
type inventory struct{ db *sql.DB }

func (inv inventory) Prepare(ctx context.Context, tx participant.Tx) error {
	// In one local transaction: refuse if tx.ID is recorded as aborted;
	// return nil if it is recorded as prepared; otherwise check stock,
	// reserve it, and record tx.ID as prepared. Returning an error votes no.
	return nil
}

func (inv inventory) Commit(ctx context.Context, tx participant.Tx) error {
	// In one local transaction: if tx.ID is recorded as committed, return
	// nil; otherwise turn the reservation into a sale and record committed.
	return nil
}

func (inv inventory) Abort(ctx context.Context, tx participant.Tx) error {
	// In one local transaction: release the reservation if there is one
	// (there may be none: Abort can come without Prepare) and record tx.ID
	// as aborted, so that a late Prepare is refused.
	return nil
}

// A service joins transactions under its name. A second instance under the
// same name waits as a standby and takes over if this one dies.
func ExampleNew() {
	var cli *clientv3.Client // connected to the coordinator's etcd
	if cli == nil {
		return
	}
	p, err := participant.New(cli, "inventory", inventory{})
	if err != nil {
		panic(err)
	}
	defer p.Close() // on shutdown: hands over to a standby at once
	if err := p.WaitActive(context.Background()); errors.Is(err, participant.ErrClosed) {
		return
	}
	<-p.Done()
}

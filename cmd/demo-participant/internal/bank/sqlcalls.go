package bank

import (
	"context"

	"github.com/concord-tx/concord/participant"
	"github.com/concord-tx/concord/participant/sqlhandler"
)

// sqlCalls are the SQL store's calls for the bank's Handler: sqlhandler's,
// which run the SQLStore's functions (prepare, commit, abort) unless the
// bookkeeping answers a repeat without them.
type sqlCalls struct{ h *sqlhandler.Handler }

// ranKey holds a *bool in a call's ctx, set when one of the SQLStore's
// functions ran in it: a call in which none ran is a repeat.
type ranKey struct{}

func markRan(ctx context.Context) {
	if ran, ok := ctx.Value(ranKey{}).(*bool); ok {
		*ran = true
	}
}

func runMarked(ctx context.Context, f func(context.Context, participant.Tx) error, tx participant.Tx) (repeat bool, err error) {
	ran := new(bool)
	err = f(context.WithValue(ctx, ranKey{}, ran), tx)
	return !*ran, err
}

func (c sqlCalls) prepare(ctx context.Context, tx participant.Tx) (bool, error) {
	return runMarked(ctx, c.h.Prepare, tx)
}

func (c sqlCalls) commit(ctx context.Context, tx participant.Tx) (bool, error) {
	return runMarked(ctx, c.h.Commit, tx)
}

func (c sqlCalls) abort(ctx context.Context, tx participant.Tx) (bool, error) {
	return runMarked(ctx, c.h.Abort, tx)
}

package bank

import (
	"context"
	"errors"

	"github.com/concord-tx/concord/participant"
	"github.com/concord-tx/concord/participant/sqlhandler"
	"go.uber.org/zap"
)

// sqlLogged is the SQL bank's participant.Handler: sqlhandler's, logging
// each call as the bbolt bank's Handler does ("prepared", "prepare
// refused", "committed", "aborted", with the transaction id and whether
// the call was a repeat: a call whose functions did not run).
type sqlLogged struct {
	h   *sqlhandler.Handler
	log *zap.Logger
}

// ranKey holds a *bool in a call's ctx, set when one of the bank's
// functions ran in it.
type ranKey struct{}

func markRan(ctx context.Context) {
	if ran, ok := ctx.Value(ranKey{}).(*bool); ok {
		*ran = true
	}
}

func (l sqlLogged) call(ctx context.Context, f func(context.Context, participant.Tx) error, tx participant.Tx) (repeat bool, err error) {
	ran := new(bool)
	err = f(context.WithValue(ctx, ranKey{}, ran), tx)
	return !*ran, err
}

func (l sqlLogged) Prepare(ctx context.Context, tx participant.Tx) error {
	log := l.log.With(zap.String("txid", tx.ID))
	repeat, err := l.call(ctx, l.h.Prepare, tx)
	var refused *sqlhandler.RefusedError
	switch {
	case errors.As(err, &refused):
		log.Info("prepare refused", zap.String("reason", refused.Reason), zap.Bool("repeat", repeat))
	case err != nil:
		log.Error("prepare failed", zap.Error(err))
	default:
		log.Info("prepared", zap.ByteString("payload", tx.Payload), zap.Bool("repeat", repeat))
	}
	return err
}

func (l sqlLogged) Commit(ctx context.Context, tx participant.Tx) error {
	log := l.log.With(zap.String("txid", tx.ID))
	repeat, err := l.call(ctx, l.h.Commit, tx)
	if err != nil {
		log.Error("commit failed", zap.Error(err))
		return err
	}
	log.Info("committed", zap.Bool("repeat", repeat))
	return nil
}

func (l sqlLogged) Abort(ctx context.Context, tx participant.Tx) error {
	log := l.log.With(zap.String("txid", tx.ID))
	repeat, err := l.call(ctx, l.h.Abort, tx)
	if err != nil {
		log.Error("abort failed", zap.Error(err))
		return err
	}
	log.Info("aborted", zap.String("reason", tx.Reason), zap.Bool("repeat", repeat))
	return nil
}

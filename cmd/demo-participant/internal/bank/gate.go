package bank

import (
	"context"
	"os"
	"time"

	"github.com/concord-tx/concord/participant"
	"go.uber.org/zap"
)

// Gates are for tests of crash recovery: they hold a handler call at a
// known point while a file does not exist, so that a test can kill the
// bank there. They may be opened and closed while the bank runs.
type Gates struct {
	// Prepared: after Prepare has committed its local transaction and
	// before it returns, so before the vote is written.
	Prepared string
	// Commit: before Commit touches the store: prepared, commit decided,
	// not applied.
	Commit string
}

// Wrap returns h with the gates that are set, or h itself if none is.
func (g Gates) Wrap(h participant.Handler, log *zap.Logger) participant.Handler {
	if g == (Gates{}) {
		return h
	}
	return gated{h: h, g: g, log: log}
}

type gated struct {
	h   participant.Handler
	g   Gates
	log *zap.Logger
}

func (d gated) Prepare(ctx context.Context, tx participant.Tx) error {
	if err := d.h.Prepare(ctx, tx); err != nil {
		return err
	}
	return d.wait(ctx, d.g.Prepared, tx, "prepared, vote waiting for the test gate")
}

func (d gated) Commit(ctx context.Context, tx participant.Tx) error {
	if err := d.wait(ctx, d.g.Commit, tx, "commit waiting for the test gate"); err != nil {
		return err
	}
	return d.h.Commit(ctx, tx)
}

func (d gated) Abort(ctx context.Context, tx participant.Tx) error { return d.h.Abort(ctx, tx) }

func (d gated) wait(ctx context.Context, path string, tx participant.Tx, what string) error {
	if path == "" {
		return nil
	}
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	d.log.Info(what, zap.String("txid", tx.ID), zap.String("gate", path))
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

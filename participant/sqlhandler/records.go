package sqlhandler

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"
)

// Record is one bookkeeping row of this participant.
type Record struct {
	ID       string
	Revision int64
	Phase    Phase
	Reason   string    // the refusal's or the abort's
	Updated  time.Time // when the phase was last recorded
}

// Records returns this participant's rows, by transaction id and
// revision: for inspection (the demo bank's GET /applied) and tests.
func (h *Handler) Records(ctx context.Context) ([]Record, error) {
	rows, err := h.db.QueryContext(ctx, h.q.records, h.name)
	if err != nil {
		return nil, fmt.Errorf("sqlhandler: read %s: %w", h.o.table, err)
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		var r Record
		var phase string
		var updated int64
		if err := rows.Scan(&r.ID, &r.Revision, &phase, &r.Reason, &updated); err != nil {
			return nil, fmt.Errorf("sqlhandler: read %s: %w", h.o.table, err)
		}
		if r.Phase, err = ParsePhase(phase); err != nil {
			return nil, fmt.Errorf("%w (transaction %s in %s)", err, r.ID, h.o.table)
		}
		r.Updated = time.UnixMilli(updated)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlhandler: read %s: %w", h.o.table, err)
	}
	return out, nil
}

// Cleanup removes this participant's final rows (committed, aborted,
// refused) whose phase was recorded more than olderThan ago, and returns
// how many. A prepared row is never removed: its decision is still to
// come. Keep rows longer than any transaction can take to be acknowledged
// plus the coordinator's retention window: a Commit redelivered after its
// row is gone fails with ErrNotPrepared, and a Prepare after its abort's
// row is gone is taken for a new one.
func (h *Handler) Cleanup(ctx context.Context, olderThan time.Duration) (int64, error) {
	res, err := h.db.ExecContext(ctx, h.q.cleanup, h.name, time.Now().Add(-olderThan).UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("sqlhandler: clean up %s: %w", h.o.table, err)
	}
	return res.RowsAffected()
}

// cleanLoop runs Cleanup every cleanup interval until ctx ends.
func (h *Handler) cleanLoop(ctx context.Context) {
	defer close(h.done)
	tick := time.NewTicker(h.o.cleanupInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		n, err := h.Cleanup(ctx, h.o.retention)
		switch {
		case err != nil && ctx.Err() == nil:
			h.o.logger.Warn("bookkeeping cleanup failed; next try at the next interval", zap.Error(err))
		case n > 0:
			h.o.logger.Info("bookkeeping rows removed", zap.Int64("rows", n), zap.Duration("older_than", h.o.retention))
		}
	}
}

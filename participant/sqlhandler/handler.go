package sqlhandler

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/concord-tx/concord/participant"
	"github.com/concord-tx/concord/protocol"
	"go.uber.org/zap"
)

// Func is one of the user's phase functions. It does its work through tx,
// the local transaction in which the handler records the phase; the
// handler commits both together, or neither. It must not commit or roll
// back tx itself.
type Func func(ctx context.Context, tx *sql.Tx, ptx participant.Tx) error

// Funcs are the user's functions; a nil one does nothing.
//
//   - Prepare reserves. Its error is the no vote, with the error's text
//     as the reason, and its writes are rolled back; an error that is a
//     database failure (see the package documentation) or wraps
//     participant.ErrRetry votes nothing and is retried.
//   - Commit applies what Prepare reserved; Abort releases it. They are
//     called only for a transaction whose Prepare succeeded here, and
//     their errors are retried (with backoff, by the participant) until
//     they return nil.
//
// Each is called once per transaction (ID and Revision) whose local
// transaction commits: a repeated call is answered from the bookkeeping.
type Funcs struct {
	Prepare Func
	Commit  Func
	Abort   Func
}

// Handler is a participant.Handler that runs the user's Funcs in local
// transactions of db and records each transaction's phase with them.
// It is safe for concurrent use.
type Handler struct {
	db   *sql.DB
	name string
	f    Funcs
	o    options
	q    queries

	stop      context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

var _ participant.Handler = (*Handler)(nil)

// New checks (or creates, unless WithoutCreate) the bookkeeping table in
// db and returns the handler of participant participantName, which rows
// of the table are keyed by (several participants may share a table).
// Unless WithCleanup(0, …) turns it off, it starts the background cleanup,
// which Close stops.
func New(ctx context.Context, db *sql.DB, participantName string, f Funcs, opts ...Option) (*Handler, error) {
	o := defaults()
	for _, opt := range opts {
		opt.apply(&o)
	}
	switch {
	case o.err != nil:
		return nil, o.err
	case db == nil:
		return nil, fmt.Errorf("%w: nil *sql.DB", ErrInvalidConfig)
	}
	if err := protocol.ValidateName(participantName); err != nil {
		return nil, fmt.Errorf("%w: participant name: %v", ErrInvalidConfig, err)
	}
	if o.dialect == DialectUnknown {
		o.dialect = dialectOf(db)
		if o.dialect == DialectUnknown {
			return nil, fmt.Errorf("%w: driver %T not recognised, name its dialect with WithDialect", ErrInvalidConfig, db.Driver())
		}
	}
	if _, err := schemaStatements(o.table); err != nil {
		return nil, err
	}
	if err := ensureSchema(ctx, db, o.table, o.create); err != nil {
		return nil, err
	}
	h := &Handler{db: db, name: participantName, f: f, o: o, q: newQueries(o.dialect, o.table), done: make(chan struct{})}
	cctx, stop := context.WithCancel(context.Background())
	h.stop = stop
	if o.cleanupInterval > 0 {
		go h.cleanLoop(cctx)
	} else {
		close(h.done)
	}
	return h, nil
}

// Close stops the background cleanup and waits for it. It does not close
// the database. Calls in flight finish; Close is idempotent.
func (h *Handler) Close() error {
	h.closeOnce.Do(h.stop)
	<-h.done
	return nil
}

// errConflict: a concurrent call for the same transaction recorded its
// row first; the call is run again to read it.
var errConflict = errors.New("sqlhandler: a concurrent call recorded the transaction first")

// row is one bookkeeping row.
type row struct {
	revision int64
	phase    Phase
	reason   string
}

// Prepare runs the user's Prepare in a local transaction that also
// records the transaction as prepared, unless it is recorded already: then
// it answers as the first call did without calling the user. It returns
// nil (yes), a *RefusedError (no), or an error wrapping
// participant.ErrRetry (no answer: the database failed).
func (h *Handler) Prepare(ctx context.Context, ptx participant.Tx) error {
	return h.do(ctx, "prepare", ptx, func() error { return h.prepareOnce(ctx, ptx) })
}

func (h *Handler) prepareOnce(ctx context.Context, ptx participant.Tx) error {
	ltx, err := h.begin(ctx)
	if err != nil {
		return err
	}
	defer ltx.Rollback()
	// The row is inserted first: a concurrent call for the same
	// transaction (a paused instance and its successor) waits on its key.
	claimed, err := h.insert(ctx, ltx, ptx.ID, ptx.Revision, PhasePrepared, "")
	if err != nil {
		return err
	}
	if !claimed {
		r, found, err := h.lock(ctx, ltx, ptx.ID, ptx.Revision)
		switch {
		case err != nil:
			return err
		case !found:
			return errConflict // removed since: read again
		}
		return prepareAnswer(r)
	}
	if h.f.Prepare != nil {
		if uerr := h.f.Prepare(ctx, ltx, ptx); uerr != nil {
			ltx.Rollback()
			if databaseFailure(uerr) || errors.Is(uerr, participant.ErrRetry) || ctx.Err() != nil {
				return uerr
			}
			return h.refuse(ctx, ptx, uerr)
		}
	}
	return ltx.Commit()
}

// refuse records the user's refusal in a local transaction of its own:
// the user's writes were rolled back with the first.
func (h *Handler) refuse(ctx context.Context, ptx participant.Tx, uerr error) error {
	reason := uerr.Error()
	ltx, err := h.begin(ctx)
	if err != nil {
		return err
	}
	defer ltx.Rollback()
	claimed, err := h.insert(ctx, ltx, ptx.ID, ptx.Revision, PhaseRefused, reason)
	switch {
	case err != nil:
		return err
	case !claimed:
		return errConflict
	}
	if err := ltx.Commit(); err != nil {
		return err
	}
	return &RefusedError{Reason: reason, err: uerr}
}

func prepareAnswer(r row) error {
	switch r.phase {
	case PhaseAborted:
		return &RefusedError{Reason: ErrAlreadyAborted.Error(), err: ErrAlreadyAborted}
	case PhaseRefused:
		return &RefusedError{Reason: r.reason}
	}
	return nil // prepared, or committed since
}

// Commit runs the user's Commit in a local transaction that also records
// the transaction as committed, if it is recorded as prepared; if it is
// recorded as committed it returns nil without calling the user.
func (h *Handler) Commit(ctx context.Context, ptx participant.Tx) error {
	return h.do(ctx, "commit", ptx, func() error { return h.commitOnce(ctx, ptx) })
}

func (h *Handler) commitOnce(ctx context.Context, ptx participant.Tx) error {
	ltx, err := h.begin(ctx)
	if err != nil {
		return err
	}
	defer ltx.Rollback()
	r, found, err := h.lock(ctx, ltx, ptx.ID, ptx.Revision)
	switch {
	case err != nil:
		return err
	case !found:
		return fmt.Errorf("%w: no row for it", ErrNotPrepared)
	case r.phase == PhaseCommitted:
		return nil
	case r.phase != PhasePrepared:
		return fmt.Errorf("%w: it is recorded as %v", ErrNotPrepared, r.phase)
	}
	return h.settle(ctx, ltx, h.f.Commit, ptx, r.revision, PhaseCommitted, "")
}

// Abort runs the user's Abort in a local transaction that also records
// the transaction as aborted, if it is recorded as prepared. With no row
// (the abort came first) it records the abort without calling the user,
// so that a late Prepare is refused; after a refusal or an abort it
// returns nil without calling the user.
func (h *Handler) Abort(ctx context.Context, ptx participant.Tx) error {
	return h.do(ctx, "abort", ptx, func() error { return h.abortOnce(ctx, ptx) })
}

func (h *Handler) abortOnce(ctx context.Context, ptx participant.Tx) error {
	ltx, err := h.begin(ctx)
	if err != nil {
		return err
	}
	defer ltx.Rollback()
	r, found, err := h.lock(ctx, ltx, ptx.ID, ptx.Revision)
	switch {
	case err != nil:
		return err
	case !found:
		claimed, err := h.insert(ctx, ltx, ptx.ID, ptx.Revision, PhaseAborted, ptx.Reason)
		switch {
		case err != nil:
			return err
		case !claimed:
			return errConflict
		}
		return ltx.Commit()
	case r.phase == PhaseAborted, r.phase == PhaseRefused:
		return nil
	case r.phase == PhaseCommitted:
		return ErrAlreadyCommitted
	}
	return h.settle(ctx, ltx, h.f.Abort, ptx, r.revision, PhaseAborted, ptx.Reason)
}

// settle runs the user's Commit or Abort f for the prepared transaction
// whose row, of revision rev, ltx holds locked, records phase p and
// commits both.
func (h *Handler) settle(ctx context.Context, ltx *sql.Tx, f Func, ptx participant.Tx, rev int64, p Phase, reason string) error {
	ptx.Revision = rev // known here even if the decision did not carry it
	if f != nil {
		if err := f(ctx, ltx, ptx); err != nil {
			return err
		}
	}
	if err := h.update(ctx, ltx, ptx.ID, rev, p, reason); err != nil {
		return err
	}
	return ltx.Commit()
}

// do runs one call, again at once if it met a concurrent call or the
// database failed (a serialization failure, a connection dropped), and
// shapes what it returns: nil, a *RefusedError, or an error that wraps
// participant.ErrRetry with the transaction id.
func (h *Handler) do(ctx context.Context, op string, ptx participant.Tx, once func() error) error {
	log := h.o.logger.With(zap.String("txid", ptx.ID), zap.Int64("rev", ptx.Revision), zap.String("op", op))
	for attempt := 0; ; attempt++ {
		err := once()
		var refused *RefusedError
		switch {
		case err == nil:
			log.Debug("done")
			return nil
		case errors.As(err, &refused):
			log.Debug("refused", zap.String("reason", refused.Reason))
			return err
		case (errors.Is(err, errConflict) || databaseFailure(err)) && attempt < h.o.conflictRetries && ctx.Err() == nil:
			log.Debug("conflict or database failure, running again", zap.Error(err), zap.Int("attempt", attempt+1))
			continue
		}
		log.Warn("failed; the participant retries", zap.Error(err))
		return fmt.Errorf("%w: sqlhandler: %s %s: %w", participant.ErrRetry, op, ptx.ID, err)
	}
}

func (h *Handler) begin(ctx context.Context) (*sql.Tx, error) {
	return h.db.BeginTx(ctx, &sql.TxOptions{Isolation: h.o.isolation})
}

// insert adds the row of (id, rev) unless there is one, and reports
// whether it did.
func (h *Handler) insert(ctx context.Context, ltx *sql.Tx, id string, rev int64, p Phase, reason string) (bool, error) {
	res, err := ltx.ExecContext(ctx, h.q.insert, h.name, id, rev, p.String(), reason, nowMillis())
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// lock reads the row of (id, rev), or of id's latest revision if rev is 0
// (a decision from before decisions carried it), locking it until the
// local transaction ends.
func (h *Handler) lock(ctx context.Context, ltx *sql.Tx, id string, rev int64) (row, bool, error) {
	var qr *sql.Row
	if rev == 0 {
		qr = ltx.QueryRowContext(ctx, h.q.lockLatest, h.name, id)
	} else {
		qr = ltx.QueryRowContext(ctx, h.q.lock, h.name, id, rev)
	}
	var r row
	var phase string
	err := qr.Scan(&r.revision, &phase, &r.reason)
	if errors.Is(err, sql.ErrNoRows) {
		return row{}, false, nil
	}
	if err != nil {
		return row{}, false, err
	}
	if r.phase, err = ParsePhase(phase); err != nil {
		return row{}, false, err
	}
	return r, true, nil
}

func (h *Handler) update(ctx context.Context, ltx *sql.Tx, id string, rev int64, p Phase, reason string) error {
	_, err := ltx.ExecContext(ctx, h.q.update, p.String(), reason, nowMillis(), h.name, id, rev)
	return err
}

func nowMillis() int64 { return time.Now().UnixMilli() }

package bank

import (
	"context"
	"errors"

	"github.com/concord-tx/concord/internal/tracing"
	"github.com/concord-tx/concord/participant"
	"github.com/concord-tx/concord/participant/sqlhandler"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
)

// Handler is the bank's participant.Handler, whatever its store: each
// call is one transaction of the store, in a span of its own, logged with
// the transaction id and whether it was a repeat (a call that found its
// work done and changed nothing).
type Handler struct {
	store calls
	log   *zap.Logger
}

// calls is a store's side of the Handler.
type calls interface {
	prepare(ctx context.Context, tx participant.Tx) (repeat bool, err error)
	commit(ctx context.Context, tx participant.Tx) (repeat bool, err error)
	abort(ctx context.Context, tx participant.Tx) (repeat bool, err error)
}

var _ participant.Handler = (*Handler)(nil)

// HandlerOption configures a Handler.
type HandlerOption interface{ apply(*Handler) }

type handlerOptionFunc func(*Handler)

func (f handlerOptionFunc) apply(h *Handler) { f(h) }

// WithLogger sets the logger (default: no logging).
func WithLogger(l *zap.Logger) HandlerOption {
	return handlerOptionFunc(func(h *Handler) {
		if l != nil {
			h.log = l
		}
	})
}

// NewHandler returns the handler of the bbolt store.
func NewHandler(store *Store, opts ...HandlerOption) *Handler {
	return newHandler(boltCalls{store}, opts...)
}

func newHandler(store calls, opts ...HandlerOption) *Handler {
	h := &Handler{store: store, log: zap.NewNop()}
	for _, o := range opts {
		o.apply(h)
	}
	return h
}

// Prepare reserves the branch's moves, or refuses them; see Store.Prepare.
func (h *Handler) Prepare(ctx context.Context, tx participant.Tx) (err error) {
	ctx, log, end := h.start(ctx, "bank.Store.Prepare", tx)
	defer func() { end(err) }()
	repeat, err := h.store.prepare(ctx, tx)
	if reason, ok := refusal(err); ok {
		log.Info("prepare refused", zap.String("reason", reason), zap.Bool("repeat", repeat))
		return err
	}
	return logged(log, err, "prepare", "prepared", zap.ByteString("payload", tx.Payload), zap.Bool("repeat", repeat))
}

// Commit applies the prepared moves; see Store.Commit.
func (h *Handler) Commit(ctx context.Context, tx participant.Tx) (err error) {
	ctx, log, end := h.start(ctx, "bank.Store.Commit", tx)
	defer func() { end(err) }()
	repeat, err := h.store.commit(ctx, tx)
	return logged(log, err, "commit", "committed", zap.Bool("repeat", repeat))
}

// Abort releases what Prepare reserved and records the abort; see
// Store.Abort.
func (h *Handler) Abort(ctx context.Context, tx participant.Tx) (err error) {
	ctx, log, end := h.start(ctx, "bank.Store.Abort", tx)
	defer func() { end(err) }()
	repeat, err := h.store.abort(ctx, tx)
	return logged(log, err, "abort", "aborted", zap.String("reason", tx.Reason), zap.Bool("repeat", repeat))
}

// logged logs a call's failure ("<op> failed") or its success (done, with
// fields), and returns err.
func logged(log *zap.Logger, err error, op, done string, fields ...zap.Field) error {
	if err != nil {
		log.Error(op+" failed", zap.Error(err))
		return err
	}
	log.Info(done, fields...)
	return nil
}

// refusal returns the reason of a no vote from either store.
func refusal(err error) (string, bool) {
	var bolt *RefusedError
	var sql *sqlhandler.RefusedError
	switch {
	case errors.As(err, &bolt):
		return bolt.Reason, true
	case errors.As(err, &sql):
		return sql.Reason, true
	}
	return "", false
}

// start begins the span of one handler call, a child of the participant
// SDK's span in ctx (and so in the transaction's trace), and returns the
// logger of the call, with the transaction id and the span's trace_id and
// span_id, and the function that ends the span with the call's error.
func (h *Handler) start(ctx context.Context, name string, tx participant.Tx) (context.Context, *zap.Logger, func(error)) {
	tracer := trace.SpanFromContext(ctx).TracerProvider().Tracer("github.com/concord-tx/concord/cmd/demo-participant/internal/bank")
	ctx, span := tracer.Start(ctx, name, trace.WithAttributes(tracing.AttrTxID.String(tx.ID)))
	log := tracing.Logger(ctx, h.log.With(zap.String("txid", tx.ID)))
	return ctx, log, func(err error) { tracing.End(span, err) }
}

// boltCalls are the bbolt Store's calls.
type boltCalls struct{ s *Store }

func (b boltCalls) prepare(_ context.Context, tx participant.Tx) (bool, error) {
	res, err := b.s.Prepare(tx.ID, tx.Revision, tx.Payload)
	return res.Repeat, err
}

func (b boltCalls) commit(_ context.Context, tx participant.Tx) (bool, error) {
	res, err := b.s.Commit(tx.ID, tx.Revision)
	return res.Repeat, err
}

func (b boltCalls) abort(_ context.Context, tx participant.Tx) (bool, error) {
	res, err := b.s.Abort(tx.ID, tx.Revision, tx.Reason)
	return res.Repeat, err
}

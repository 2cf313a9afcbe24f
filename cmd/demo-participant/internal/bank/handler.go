package bank

import (
	"context"
	"errors"

	"github.com/concord-tx/concord/internal/tracing"
	"github.com/concord-tx/concord/participant"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
)

// Handler is the bank's participant.Handler: each call is one Store
// transaction, logged with the transaction id.
type Handler struct {
	store *Store
	log   *zap.Logger
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

// NewHandler returns the handler of store.
func NewHandler(store *Store, opts ...HandlerOption) *Handler {
	h := &Handler{store: store, log: zap.NewNop()}
	for _, o := range opts {
		o.apply(h)
	}
	return h
}

// Prepare reserves the branch's moves, or refuses them; see Store.Prepare.
func (h *Handler) Prepare(ctx context.Context, tx participant.Tx) (err error) {
	_, log, end := h.start(ctx, "bank.Store.Prepare", tx)
	defer func() { end(err) }()
	res, err := h.store.Prepare(tx.ID, tx.Revision, tx.Payload)
	var refused *RefusedError
	switch {
	case errors.As(err, &refused):
		log.Info("prepare refused", zap.String("reason", refused.Reason), zap.Bool("repeat", res.Repeat))
	case err != nil:
		log.Error("prepare failed", zap.Error(err))
	default:
		log.Info("prepared", zap.ByteString("payload", tx.Payload), zap.Bool("repeat", res.Repeat))
	}
	return err
}

// Commit applies the prepared moves; see Store.Commit.
func (h *Handler) Commit(ctx context.Context, tx participant.Tx) (err error) {
	_, log, end := h.start(ctx, "bank.Store.Commit", tx)
	defer func() { end(err) }()
	res, err := h.store.Commit(tx.ID, tx.Revision)
	if err != nil {
		log.Error("commit failed", zap.Error(err))
		return err
	}
	log.Info("committed", zap.Bool("repeat", res.Repeat))
	return nil
}

// Abort releases what Prepare held and records the abort; see Store.Abort.
func (h *Handler) Abort(ctx context.Context, tx participant.Tx) (err error) {
	_, log, end := h.start(ctx, "bank.Store.Abort", tx)
	defer func() { end(err) }()
	res, err := h.store.Abort(tx.ID, tx.Revision, tx.Reason)
	if err != nil {
		log.Error("abort failed", zap.Error(err))
		return err
	}
	log.Info("aborted", zap.String("reason", tx.Reason), zap.Stringer("phase", res.Phase), zap.Bool("repeat", res.Repeat))
	return nil
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

package participant

import (
	"context"
	"time"

	"github.com/concord-tx/concord/internal/tracing"
	"github.com/concord-tx/concord/protocol"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
)

// WithTracerProvider sets the provider of the participant's spans
// (default: the global one, a no-op until the program installs an SDK).
// Each message handled is a span continuing the trace stored with its
// transaction, and the handler's ctx carries it: spans the handler starts
// from ctx nest under it, in the initiator's trace.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(o *options) {
		if tp != nil {
			o.tracer = tracing.Tracer(tp, "participant")
		}
	})
}

// startMessage starts the span of handling message m (participant.Prepare,
// .Commit or .Abort), a consumer span whose parent is the span that began
// the transaction, from the trace context its record carries; a missing or
// malformed one starts a new trace. It returns log with the span's
// trace_id and span_id, if it has any.
func (in *inbox) startMessage(ctx context.Context, m message, log *zap.Logger) (context.Context, trace.Span, *zap.Logger) {
	name, written := tracing.SpanPrepare, m.Record.Created
	switch m.Op {
	case protocol.OpCommit:
		name, written = tracing.SpanCommit, m.Record.Decided
	case protocol.OpAbort:
		name, written = tracing.SpanAbortBranch, m.Record.Decided
	}
	ctx, span := in.p.opts.tracer.Start(tracing.Continue(ctx, m.Record.Trace), name, trace.WithSpanKind(trace.SpanKindConsumer))
	// Without an SDK the span is the stored one, passed on: its ids still
	// join these log lines to the initiator's trace.
	log = tracing.Logger(ctx, log)
	if !span.IsRecording() {
		return ctx, span, log
	}
	attrs := []attribute.KeyValue{
		tracing.AttrTxID.String(m.id),
		tracing.AttrParticipant.String(in.p.name),
		tracing.AttrRevision.Int64(m.begun),
		tracing.AttrCatchUp.Bool(m.catchUp),
	}
	if !written.IsZero() {
		attrs = append(attrs, tracing.InboxWait(written, time.Now()))
	}
	span.SetAttributes(attrs...)
	return ctx, span, log
}

// startWrite starts the span of a vote's or an acknowledgement's Txn, a
// child of the message's span in ctx.
func (in *inbox) startWrite(ctx context.Context, name string, m message) trace.Span {
	_, span := in.p.opts.tracer.Start(ctx, name)
	if span.IsRecording() {
		span.SetAttributes(tracing.AttrTxID.String(m.id), tracing.AttrParticipant.String(in.p.name))
	}
	return span
}

// voted records on the vote's span what the Txn did; decided: its vote
// was the commit point, and the span says so.
func (in *inbox) voted(span trace.Span, v protocol.Vote, outcome string, decided bool) {
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(tracing.AttrVote.String(voteName(v)), tracing.AttrWriteOutcome.String(outcome))
	if decided {
		to, cause := protocol.StateCommitting, protocol.CauseNone
		if !v.Yes {
			to, cause = protocol.StateAborting, protocol.CauseVoteNo
		}
		tracing.Decided(span, to, cause, "participant "+in.p.name)
	}
}

// acked records on the acknowledgement's span what its Txn did.
func (in *inbox) acked(span trace.Span, m message, succeeded, finished bool) {
	if !span.IsRecording() {
		return
	}
	switch {
	case finished:
		span.SetAttributes(tracing.AttrWriteOutcome.String("acknowledged and finished"), tracing.AttrState.String(m.Record.State.Outcome().String()))
	case succeeded:
		span.SetAttributes(tracing.AttrWriteOutcome.String("acknowledged"))
	default:
		span.SetAttributes(tracing.AttrWriteOutcome.String("already acknowledged"))
	}
}

func voteName(v protocol.Vote) string {
	if v.Yes {
		return "yes"
	}
	return "no"
}

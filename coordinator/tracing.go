package coordinator

import (
	"context"

	"github.com/concord-tx/concord/internal/tracing"
	"github.com/concord-tx/concord/protocol"
	"go.opentelemetry.io/otel/trace"
)

// WithTracerProvider sets the provider of the spans (default: the global
// one, a no-op until the program installs an SDK). A Client's Begin stores
// the trace context of its span with the transaction, so that the
// participants' spans and a replica's recovery actions join the caller's
// trace; with no SDK the caller's own context (an incoming traceparent)
// is stored and passed on all the same.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return sharedOption(func(o *options) {
		if tp != nil {
			o.tracer = tracing.Tracer(tp, "coordinator")
		}
	})
}

// defaultTracer is the global provider's, which follows the provider a
// program installs later.
func defaultTracer() trace.Tracer { return tracing.Tracer(nil, "coordinator") }

// startTx starts the span of operation name on transaction id.
func (o *options) startTx(ctx context.Context, name, id string) (context.Context, trace.Span) {
	ctx, span := o.tracer.Start(ctx, name)
	if span.IsRecording() {
		span.SetAttributes(tracing.AttrTxID.String(id))
	}
	return ctx, span
}

// recordAttrs are the attributes of a span about transaction rec.
func recordAttrs(span trace.Span, rec protocol.Record) {
	if span.IsRecording() {
		span.SetAttributes(tracing.AttrTxID.String(rec.ID), tracing.AttrParticipants.StringSlice(rec.Participants))
	}
}

// endBegin ends Begin's span with what it found.
func endBegin(span trace.Span, b Begun, err error) {
	if span.IsRecording() && b.ID != "" {
		span.SetAttributes(tracing.AttrTxID.String(b.ID), tracing.AttrRevision.Int64(b.Revision), tracing.AttrCreated.Bool(b.Created))
	}
	tracing.End(span, err)
}

// endOutcome ends Do's or Wait's span with the outcome: an abort sets the
// status to Error, with the cause and reason.
func endOutcome(span trace.Span, out Outcome, err error) {
	if span.IsRecording() && err == nil {
		tracing.Outcome(span, out.State, out.Cause, out.Reason)
	}
	tracing.End(span, err)
}

// startRecovery starts the span of a replica's recovery action on rec, in
// the transaction's trace (a new trace if it has none).
func (o *options) startRecovery(ctx context.Context, rec protocol.Record, action Action) (context.Context, trace.Span) {
	ctx, span := o.tracer.Start(tracing.Continue(ctx, rec.Trace), tracing.RecoverySpan(string(action)))
	if span.IsRecording() {
		span.SetAttributes(tracing.AttrTxID.String(rec.ID), tracing.AttrRecovery.String(string(action)), tracing.AttrState.String(rec.State.String()))
	}
	return ctx, span
}

// linkTo links span to the trace of transaction rec, for work on it that
// belongs to another trace (an operator's abort).
func linkTo(span trace.Span, rec protocol.Record) {
	if l, ok := tracing.Link(rec.Trace); ok && span.IsRecording() {
		span.AddLink(l)
	}
}

// endRecovery ends a recovery action's span: done, or its compares failed
// (somebody else acted first, or the condition no longer holds).
func endRecovery(span trace.Span, done bool, err error) {
	if span.IsRecording() && err == nil {
		outcome := "done"
		if !done {
			outcome = "compare failed"
		}
		span.SetAttributes(tracing.AttrWriteOutcome.String(outcome))
	}
	tracing.End(span, err)
}

// storedTrace is rec's trace context for the retention queue: nil when
// there is none, so that untraced records cost a pointer there.
func storedTrace(rec protocol.Record) *protocol.TraceContext {
	if !rec.Trace.Valid() {
		return nil
	}
	tc := rec.Trace
	return &tc
}

// startGC starts a span in each traced entry's trace for its deletion;
// untraced entries get none (a new trace per deleted record would be
// noise).
func (o *options) startGC(ctx context.Context, entries []gcEntry) []trace.Span {
	var spans []trace.Span
	for _, e := range entries {
		if e.trace == nil {
			continue
		}
		_, span := o.tracer.Start(tracing.Continue(ctx, *e.trace), tracing.RecoverySpan(string(ActionGC)))
		if span.IsRecording() {
			span.SetAttributes(tracing.AttrTxID.String(e.id), tracing.AttrRecovery.String(string(ActionGC)))
		}
		spans = append(spans, span)
	}
	return spans
}

func endGC(spans []trace.Span, done bool, err error) {
	for _, s := range spans {
		endRecovery(s, done, err)
	}
}

// Package tracing is what Concord's library packages share to trace a
// transaction across the parties that never call each other: the trace
// context stored with the transaction (protocol.TraceContext) carried in
// and out of a context.Context, the names of spans and attributes, and the
// trace_id and span_id log fields.
//
// It uses OpenTelemetry's API only. A program that installs no SDK gets
// the API's no-op spans, which record nothing but still pass an incoming
// trace context on, so a caller's trace reaches the participants through
// etcd even through a coordinator that records no spans itself.
//
// The propagation format is fixed to W3C trace context, whatever the
// program's global propagator: it is part of the protocol (a participant
// in another language reads it), not a local choice.
package tracing

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/concord-tx/concord/protocol"
)

// ScopeName is the instrumentation scope of every Concord tracer; each
// package adds its own path ("github.com/concord-tx/concord/coordinator").
const ScopeName = "github.com/concord-tx/concord"

var w3c propagation.TraceContext

// Tracer returns package pkg's tracer from tp, or from the global provider
// when tp is nil.
func Tracer(tp trace.TracerProvider, pkg string) trace.Tracer {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	return tp.Tracer(ScopeName + "/" + pkg)
}

// Stored returns the trace context of ctx's span, to store with a
// transaction; zero when ctx has no valid span context.
func Stored(ctx context.Context) protocol.TraceContext {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return protocol.TraceContext{}
	}
	var tc protocol.TraceContext
	w3c.Inject(ctx, &tc)
	return tc.Bounded()
}

// Continue returns ctx with the span context stored in tc as its remote
// parent, so that spans started from it join the transaction's trace. A
// missing or malformed tc leaves ctx as it is: a new trace starts there.
func Continue(ctx context.Context, tc protocol.TraceContext) context.Context {
	if !tc.Valid() {
		return ctx
	}
	return w3c.Extract(ctx, &tc)
}

// Header is the W3C propagator, for HTTP headers.
func Header() propagation.TextMapPropagator { return w3c }

// End ends span, with status Error and err recorded when err is not nil.
func End(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// Decided marks span as the one whose Txn decided the transaction: to
// (committing or aborting), who decided ("participant bank-a", "replica
// <id>", "operator") and why, as attributes and as an event.
func Decided(span trace.Span, to protocol.State, cause protocol.Cause, by string) {
	if !span.IsRecording() {
		return
	}
	attrs := []attribute.KeyValue{AttrDecision.String(to.String()), AttrDecidedBy.String(by)}
	if cause != protocol.CauseNone {
		attrs = append(attrs, AttrCause.String(string(cause)))
	}
	span.SetAttributes(attrs...)
	span.AddEvent(EventDecided, trace.WithAttributes(attrs...))
}

// Outcome sets the attributes of a transaction's outcome on span: its
// state, and the cause and reason of an abort, which also sets the span's
// status to Error (the transaction did not do what was asked).
func Outcome(span trace.Span, state protocol.State, cause protocol.Cause, reason string) {
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(AttrState.String(state.String()))
	if state.Committed() {
		return
	}
	span.SetAttributes(AttrCause.String(string(cause)), AttrReason.String(reason))
	span.SetStatus(codes.Error, "aborted: "+string(cause)+": "+reason)
}

// Link returns a link to the span stored in tc, if it is well formed.
func Link(tc protocol.TraceContext) (trace.Link, bool) {
	sc := trace.SpanContextFromContext(Continue(context.Background(), tc))
	return trace.Link{SpanContext: sc}, sc.IsValid()
}

// LogFields returns the trace_id and span_id fields of ctx's span, for a
// log line about the work that span covers; none when ctx has no valid
// span context.
func LogFields(ctx context.Context) []zap.Field {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return nil
	}
	return []zap.Field{zap.String("trace_id", sc.TraceID().String()), zap.String("span_id", sc.SpanID().String())}
}

// Logger returns log with ctx's trace_id and span_id fields, or log itself
// when ctx has no valid span context.
func Logger(ctx context.Context, log *zap.Logger) *zap.Logger {
	if f := LogFields(ctx); f != nil {
		return log.With(f...)
	}
	return log
}

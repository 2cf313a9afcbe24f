package tracing

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/concord-tx/concord/protocol"
)

// A span started from Continue(Stored(ctx)) is a child of ctx's span in the
// same trace: what a participant does with the record the initiator wrote.
func TestStoredThenContinued(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	defer tp.Shutdown(context.Background())
	ctx, begin := Tracer(tp, "coordinator").Start(context.Background(), SpanBegin)
	stored := Stored(ctx)
	begin.End()
	if !stored.Valid() || stored.TraceID() != begin.SpanContext().TraceID().String() {
		t.Fatalf("stored %+v for span %v", stored, begin.SpanContext())
	}
	_, prepare := Tracer(tp, "participant").Start(Continue(context.Background(), stored), SpanPrepare)
	defer prepare.End()
	ro := prepare.(sdktrace.ReadOnlySpan)
	if ro.Parent().SpanID() != begin.SpanContext().SpanID() || !ro.Parent().IsRemote() || ro.SpanContext().TraceID() != begin.SpanContext().TraceID() {
		t.Errorf("prepare's parent %v, want the begin span %v", ro.Parent(), begin.SpanContext())
	}
	if f := LogFields(trace.ContextWithSpan(context.Background(), prepare)); len(f) != 2 || f[0].String != ro.SpanContext().TraceID().String() || f[1].String != ro.SpanContext().SpanID().String() {
		t.Errorf("log fields %+v", f)
	}
}

// Without a span nothing is stored; a malformed stored context starts a new
// trace; the no-op provider passes an incoming context on unchanged.
func TestNoTraceAndMalformed(t *testing.T) {
	if tc := Stored(context.Background()); tc != (protocol.TraceContext{}) {
		t.Errorf("stored without a span: %+v", tc)
	}
	if f := LogFields(context.Background()); f != nil {
		t.Errorf("log fields without a span: %v", f)
	}
	for _, bad := range []protocol.TraceContext{{}, {Parent: "garbage"}, {Parent: "00-00000000000000000000000000000000-00f067aa0ba902b7-01"}} {
		if got := trace.SpanContextFromContext(Continue(context.Background(), bad)); got.IsValid() {
			t.Errorf("Continue(%+v) gave a parent %v", bad, got)
		}
	}
	in := protocol.TraceContext{Parent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", State: "congo=t61rcWkgMzE"}
	ctx, span := Tracer(noop.NewTracerProvider(), "coordinator").Start(Continue(context.Background(), in), SpanBegin)
	defer span.End()
	if got := Stored(ctx); got != in {
		t.Errorf("through a no-op provider: stored %+v, want %+v", got, in)
	}
}

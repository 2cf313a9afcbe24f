package main

import (
	"context"

	"github.com/concord-tx/concord/httpapi"
	"github.com/concord-tx/concord/internal/tracing"
	"go.opentelemetry.io/otel/trace"
)

// traceTransfer starts the span of one transfer, a client span whose
// context the request to the coordinator carries (traceparent), so that
// the coordinator and the banks join its trace. end ends it with the
// outcome.
func traceTransfer(ctx context.Context, tp trace.TracerProvider, id string) (context.Context, func(httpapi.Outcome, error)) {
	ctx, span := tracing.Tracer(tp, "cmd/demo-participant").Start(ctx, "transfer", trace.WithSpanKind(trace.SpanKindClient))
	return ctx, func(out httpapi.Outcome, err error) {
		if err == nil {
			span.SetAttributes(tracing.AttrTxID.String(out.ID))
			tracing.Outcome(span, out.State, out.Cause, out.Reason)
		}
		tracing.End(span, err)
	}
}

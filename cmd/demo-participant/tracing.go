package main

import (
	"context"
	"os"
	"time"

	"github.com/concord-tx/concord/cmd/internal/otelsetup"
	"github.com/concord-tx/concord/httpapi"
	"github.com/concord-tx/concord/internal/tracing"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
)

// startTracing sets up the process's tracing from the OTEL_* environment
// variables: spans are exported over OTLP when they ask for it (see the
// README's Tracing section), and nothing is recorded otherwise. service is
// the default service.name. The returned stop flushes the spans still
// buffered, for up to 5s.
func startTracing(ctx context.Context, service string, log *zap.Logger, attrs ...attribute.KeyValue) (*otelsetup.Tracing, func(), error) {
	t, err := otelsetup.Setup(ctx, os.Getenv, service, log.Named("otel"), attrs...)
	if err != nil {
		return nil, nil, err
	}
	return t, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := t.Shutdown(sctx); err != nil {
			log.Warn("flushing traces", zap.Error(err))
		}
	}, nil
}

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

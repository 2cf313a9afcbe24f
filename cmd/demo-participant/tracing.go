package main

import (
	"context"
	"os"
	"time"

	"github.com/concord-tx/concord/cmd/internal/otelsetup"
	"go.opentelemetry.io/otel/attribute"
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

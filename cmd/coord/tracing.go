package main

import (
	"context"

	"github.com/concord-tx/concord/cmd/internal/otelsetup"
	"go.uber.org/zap"
)

// tracingHelp is the part of serve's, gateway's and bench's help about
// tracing.
const tracingHelp = `Traces: with OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_TRACES_EXPORTER=otlp) set,
spans are exported over OTLP (OTEL_EXPORTER_OTLP_PROTOCOL http/protobuf or grpc;
OTEL_TRACES_SAMPLER, OTEL_SERVICE_NAME and the exporter's other OTEL_* variables
apply). Without them nothing is recorded; an incoming traceparent still reaches
the participants.`

// startTracing sets up the process's tracing from c's OTEL_* variables
// (service is the default service.name); defer its Flush. A bad variable
// is a usage error.
func startTracing(ctx context.Context, c console, service string, log *zap.Logger) (*otelsetup.Tracing, error) {
	t, err := otelsetup.Setup(ctx, c.getenv, service, log.Named("otel"))
	if err != nil {
		return nil, usagef("%v", err)
	}
	return t, nil
}

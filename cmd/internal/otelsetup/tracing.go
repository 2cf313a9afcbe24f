package otelsetup

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/zap"
)

// Tracing is a binary's tracing: the provider to pass to the libraries'
// WithTracerProvider options, and Shutdown, which flushes what is still
// buffered.
type Tracing struct {
	// Provider records and exports spans when the environment asked for
	// it; otherwise it is a no-op that still passes trace contexts on.
	Provider trace.TracerProvider
	sdk      *sdktrace.TracerProvider // nil when off
	log      *zap.Logger
}

// FlushTimeout bounds Flush.
const FlushTimeout = 5 * time.Second

// Setup builds the tracing that getenv's OTEL_* variables ask for. service
// is the binary's service.name unless OTEL_SERVICE_NAME is set; attrs are
// added to the resource (OTEL_RESOURCE_ATTRIBUTES adds more). Exporter
// errors are logged to log. A bad variable is an error naming it.
func Setup(ctx context.Context, getenv func(string) string, service string, log *zap.Logger, attrs ...attribute.KeyValue) (*Tracing, error) {
	cfg, err := ParseEnv(getenv)
	if err != nil || !cfg.Export {
		return &Tracing{Provider: noop.NewTracerProvider(), log: log}, err
	}
	if cfg.ServiceName != "" {
		service = cfg.ServiceName
	}
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(),
		resource.WithAttributes(append(attrs, semconv.ServiceName(service))...),
	)
	if err != nil {
		return nil, fmt.Errorf("opentelemetry resource: %w", err)
	}
	exp, err := newExporter(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("opentelemetry %s exporter: %w", cfg.Protocol, err)
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res), sdktrace.WithBatcher(exp)}
	if cfg.Sampler != nil {
		opts = append(opts, sdktrace.WithSampler(cfg.Sampler))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("opentelemetry", zap.Error(err))
	}))
	log.Info("exporting traces", zap.String("protocol", cfg.Protocol), zap.String("endpoint", cfg.EndpointURL), zap.String("service", service))
	return &Tracing{Provider: tp, sdk: tp, log: log}, nil
}

func newExporter(ctx context.Context, cfg Config) (sdktrace.SpanExporter, error) {
	if cfg.Protocol == ProtocolGRPC {
		var opts []otlptracegrpc.Option
		if cfg.EndpointURL != "" {
			opts = append(opts, otlptracegrpc.WithEndpointURL(cfg.EndpointURL))
		}
		return otlptracegrpc.New(ctx, opts...)
	}
	var opts []otlptracehttp.Option
	if cfg.EndpointURL != "" {
		opts = append(opts, otlptracehttp.WithEndpointURL(cfg.EndpointURL))
	}
	return otlptracehttp.New(ctx, opts...)
}

// Enabled reports whether spans are recorded and exported.
func (t *Tracing) Enabled() bool { return t.sdk != nil }

// Flush is Shutdown within FlushTimeout, logging a failure: what a binary
// defers.
func (t *Tracing) Flush() {
	ctx, cancel := context.WithTimeout(context.Background(), FlushTimeout)
	defer cancel()
	if err := t.Shutdown(ctx); err != nil {
		t.log.Warn("flushing traces", zap.Error(err))
	}
}

// Shutdown exports the spans still buffered, within ctx, and stops the
// exporter. It does nothing when tracing is off.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t.sdk == nil {
		return nil
	}
	return t.sdk.Shutdown(ctx)
}

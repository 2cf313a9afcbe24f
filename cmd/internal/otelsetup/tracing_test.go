package otelsetup

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.uber.org/zap/zaptest"

	"github.com/concord-tx/concord/internal/testkit/leaktest"
	"github.com/concord-tx/concord/internal/testkit/otlptest"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestParseEnv(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		export   bool
		protocol string
		endpoint string
		wantErr  string // a substring naming the variable
	}{
		{name: "nothing set", env: nil},
		{name: "only a service name", env: map[string]string{EnvServiceName: "coord"}},
		{name: "endpoint", env: map[string]string{EnvEndpoint: "http://127.0.0.1:4318"}, export: true, protocol: ProtocolHTTP, endpoint: "http://127.0.0.1:4318/v1/traces"},
		{name: "endpoint with slash", env: map[string]string{EnvEndpoint: "http://collector:4318/"}, export: true, protocol: ProtocolHTTP, endpoint: "http://collector:4318/v1/traces"},
		{name: "traces endpoint as is", env: map[string]string{EnvEndpoint: "http://a:1", EnvTracesEndpoint: "https://b:2/custom"}, export: true, protocol: ProtocolHTTP, endpoint: "https://b:2/custom"},
		{name: "grpc", env: map[string]string{EnvEndpoint: "http://127.0.0.1:4317", EnvProtocol: "grpc"}, export: true, protocol: ProtocolGRPC, endpoint: "http://127.0.0.1:4317"},
		{name: "traces protocol wins", env: map[string]string{EnvEndpoint: "http://127.0.0.1:4317", EnvProtocol: "http/protobuf", EnvTracesProtocol: "grpc"}, export: true, protocol: ProtocolGRPC, endpoint: "http://127.0.0.1:4317"},
		{name: "exporter otlp, default endpoint", env: map[string]string{EnvTracesExporter: "otlp"}, export: true, protocol: ProtocolHTTP},
		{name: "exporter none", env: map[string]string{EnvTracesExporter: "none", EnvEndpoint: "http://127.0.0.1:4318"}},
		{name: "sdk disabled", env: map[string]string{EnvSDKDisabled: "true", EnvEndpoint: "http://127.0.0.1:4318"}},
		{name: "sdk disabled also hides bad values", env: map[string]string{EnvSDKDisabled: "TRUE", EnvTracesExporter: "zipkin"}},
		{name: "bad exporter", env: map[string]string{EnvTracesExporter: "zipkin"}, wantErr: EnvTracesExporter},
		{name: "bad protocol", env: map[string]string{EnvEndpoint: "http://a:1", EnvProtocol: "http/json"}, wantErr: EnvProtocol},
		{name: "bad endpoint", env: map[string]string{EnvEndpoint: "127.0.0.1:4318"}, wantErr: EnvEndpoint},
		{name: "bad traces endpoint", env: map[string]string{EnvTracesEndpoint: "ftp://x/y"}, wantErr: EnvTracesEndpoint},
		{name: "bad sampler", env: map[string]string{EnvEndpoint: "http://a:1", EnvTracesSampler: "sometimes"}, wantErr: EnvTracesSampler},
		{name: "bad ratio", env: map[string]string{EnvEndpoint: "http://a:1", EnvTracesSampler: "traceidratio", EnvTracesSamplerArg: "2"}, wantErr: EnvTracesSamplerArg},
		{name: "ratio", env: map[string]string{EnvEndpoint: "http://a:1", EnvTracesSampler: "parentbased_traceidratio", EnvTracesSamplerArg: "0.25"}, export: true, protocol: ProtocolHTTP, endpoint: "http://a:1/v1/traces"},
	}
	for _, tt := range tests {
		c, err := ParseEnv(env(tt.env))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: error %v, want one naming %s", tt.name, err, tt.wantErr)
			}
			continue
		}
		if err != nil || c.Export != tt.export || c.Protocol != tt.protocol || c.EndpointURL != tt.endpoint {
			t.Errorf("%s: %+v, %v; want export %v, protocol %q, endpoint %q", tt.name, c, err, tt.export, tt.protocol, tt.endpoint)
		}
	}
	c, err := ParseEnv(env(map[string]string{EnvEndpoint: "http://a:1", EnvTracesSampler: "traceidratio", EnvTracesSamplerArg: "0.5"}))
	if err != nil || c.Sampler == nil || !strings.Contains(c.Sampler.Description(), "0.5") {
		t.Errorf("sampler: %v, %v", c.Sampler, err)
	}
}

// With nothing asked for, the provider records nothing; with an endpoint,
// spans reach a real OTLP/HTTP receiver, named by the service, when
// Shutdown flushes them.
func TestSetupExports(t *testing.T) {
	ctx := context.Background()
	log := zaptest.NewLogger(t)
	off, err := Setup(ctx, env(nil), "coord", log)
	if err != nil || off.Enabled() {
		t.Fatalf("no variables: enabled %v, %v", off.Enabled(), err)
	}
	_, span := off.Provider.Tracer("test").Start(ctx, "nothing")
	if span.IsRecording() || span.SpanContext().IsValid() {
		t.Errorf("the no-op provider records: %v", span.SpanContext())
	}
	span.End()
	if err := off.Shutdown(ctx); err != nil {
		t.Errorf("shutdown of the no-op provider: %v", err)
	}

	rcv := otlptest.Start(t)
	vars := map[string]string{}
	for _, kv := range rcv.Env("bank-a") {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	on, err := Setup(ctx, env(vars), "demo-participant", log, attribute.String("concord.participant", "bank-a"))
	if err != nil || !on.Enabled() {
		t.Fatalf("with a receiver: enabled %v, %v", on.Enabled(), err)
	}
	sctx, parent := on.Provider.Tracer("test").Start(ctx, "parent")
	_, child := on.Provider.Tracer("test").Start(sctx, "child")
	child.End()
	parent.End()
	if err := on.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	got := rcv.WaitFor(t, 10*time.Second, "two spans at the receiver", func(ss otlptest.Spans) (bool, string) {
		return len(ss) == 2, ss.String()
	})
	p, c := got.Named("parent"), got.Named("child")
	if len(p) != 1 || len(c) != 1 || !got.Descends(c[0], p[0]) || p[0].ParentID != "" || c[0].Service != "bank-a" {
		t.Errorf("received: %v", got)
	}
}

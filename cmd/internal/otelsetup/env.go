package otelsetup

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// The environment variables read here; the exporters also read their own
// (OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT, _CERTIFICATE, _COMPRESSION, ...),
// and the batch span processor reads OTEL_BSP_*.
const (
	EnvSDKDisabled      = "OTEL_SDK_DISABLED"
	EnvTracesExporter   = "OTEL_TRACES_EXPORTER"
	EnvEndpoint         = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvTracesEndpoint   = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	EnvProtocol         = "OTEL_EXPORTER_OTLP_PROTOCOL"
	EnvTracesProtocol   = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	EnvTracesSampler    = "OTEL_TRACES_SAMPLER"
	EnvTracesSamplerArg = "OTEL_TRACES_SAMPLER_ARG"
	EnvServiceName      = "OTEL_SERVICE_NAME"
)

// OTLP transports.
const (
	ProtocolHTTP = "http/protobuf"
	ProtocolGRPC = "grpc"
)

// Config is what the environment asks for.
type Config struct {
	Export      bool             // false: nothing is recorded or exported
	Protocol    string           // ProtocolHTTP or ProtocolGRPC
	EndpointURL string           // the traces endpoint; "" for the exporter's default
	Sampler     sdktrace.Sampler // nil: parent-based, always on
	ServiceName string           // "" for the binary's default
}

// ParseEnv reads the configuration from getenv. Every error names the
// variable and what was expected.
func ParseEnv(getenv func(string) string) (Config, error) {
	var c Config
	c.ServiceName = strings.TrimSpace(getenv(EnvServiceName))
	if v := strings.TrimSpace(getenv(EnvSDKDisabled)); strings.EqualFold(v, "true") {
		return c, nil
	}
	traces, generic := strings.TrimSpace(getenv(EnvTracesEndpoint)), strings.TrimSpace(getenv(EnvEndpoint))
	switch v := strings.ToLower(strings.TrimSpace(getenv(EnvTracesExporter))); v {
	case "none":
		return c, nil
	case "":
		if traces == "" && generic == "" {
			return c, nil
		}
	case "otlp":
	default:
		return c, fmt.Errorf("%s: %q is not supported (expected otlp or none)", EnvTracesExporter, v)
	}
	c.Export = true

	c.Protocol, c.EndpointURL = ProtocolHTTP, ""
	name := EnvProtocol
	p := strings.TrimSpace(getenv(EnvProtocol))
	if tp := strings.TrimSpace(getenv(EnvTracesProtocol)); tp != "" {
		name, p = EnvTracesProtocol, tp
	}
	switch p {
	case "", ProtocolHTTP:
	case ProtocolGRPC:
		c.Protocol = ProtocolGRPC
	default:
		return c, fmt.Errorf("%s: %q is not supported (expected %s or %s)", name, p, ProtocolHTTP, ProtocolGRPC)
	}

	// The signal-specific endpoint is the URL itself; the generic one is a
	// base to which OTLP/HTTP appends /v1/traces (the specification's rule).
	switch {
	case traces != "":
		if err := checkURL(EnvTracesEndpoint, traces); err != nil {
			return c, err
		}
		c.EndpointURL = traces
	case generic != "":
		if err := checkURL(EnvEndpoint, generic); err != nil {
			return c, err
		}
		c.EndpointURL = generic
		if c.Protocol == ProtocolHTTP {
			c.EndpointURL = strings.TrimSuffix(generic, "/") + "/v1/traces"
		}
	}

	var err error
	c.Sampler, err = parseSampler(strings.ToLower(strings.TrimSpace(getenv(EnvTracesSampler))), strings.TrimSpace(getenv(EnvTracesSamplerArg)))
	return c, err
}

func checkURL(name, s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s: %q is not an http(s) URL (expected e.g. http://127.0.0.1:4318)", name, s)
	}
	return nil
}

// parseSampler reads OTEL_TRACES_SAMPLER and its argument, as the
// specification names them. The SDK reads them too, but only logs a bad
// value; here it is an error.
func parseSampler(name, arg string) (sdktrace.Sampler, error) {
	ratio := func() (float64, error) {
		if arg == "" {
			return 1, nil
		}
		r, err := strconv.ParseFloat(arg, 64)
		if err != nil || r < 0 || r > 1 {
			return 0, fmt.Errorf("%s: %q is not a ratio (expected a number from 0 to 1)", EnvTracesSamplerArg, arg)
		}
		return r, nil
	}
	switch name {
	case "":
		return nil, nil
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "traceidratio", "parentbased_traceidratio":
		r, err := ratio()
		if err != nil {
			return nil, err
		}
		if name == "traceidratio" {
			return sdktrace.TraceIDRatioBased(r), nil
		}
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(r)), nil
	}
	return nil, fmt.Errorf("%s: %q is not supported (expected always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio)", EnvTracesSampler, name)
}

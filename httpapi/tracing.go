package httpapi

import (
	"context"
	"net/http"
	"strings"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/concord-tx/concord/internal/tracing"
)

// traced wraps h so that every request has a server span continuing the
// caller's W3C traceparent header, if it sent a well-formed one (a
// malformed one is ignored: the span starts a new trace). The request's
// context carries the span, so a transaction begun by the request stores
// it and the participants' handlers join the caller's trace.
//
// The span is named like otelhttp's, "{method} {route}", with the
// semantic conventions' HTTP server attributes; 5xx answers set its status
// to Error. Probes (GET /healthz, /metrics) get no span: they would be a
// trace each, all noise. Rejected: otelhttp itself, a dependency for what
// is one function here.
func traced(h http.Handler, tp trace.TracerProvider) http.Handler {
	tracer := tracing.Tracer(tp, "httpapi")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" || r.URL.Path == "/metrics" {
			h.ServeHTTP(w, r)
			return
		}
		ctx := tracing.Header().Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := tracer.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer))
		defer span.End()
		if span.IsRecording() {
			span.SetAttributes(
				semconv.HTTPRequestMethodKey.String(r.Method),
				semconv.URLPath(r.URL.Path),
				semconv.URLScheme(scheme(r)),
			)
		}
		sw := &statusWriter{ResponseWriter: w}
		r = r.WithContext(ctx)
		h.ServeHTTP(sw, r)
		// The mux records the matched pattern ("GET /v1/transactions/{id}")
		// in the request it served.
		if _, route, ok := strings.Cut(r.Pattern, " "); ok {
			span.SetName(r.Method + " " + route)
			span.SetAttributes(semconv.HTTPRoute(route))
		}
		code := sw.status()
		span.SetAttributes(semconv.HTTPResponseStatusCode(code))
		if code >= 500 {
			span.SetStatus(codes.Error, http.StatusText(code))
		}
	})
}

func scheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

// injectTrace sets the traceparent (and tracestate) header of a request
// made with ctx, so that the server continues the caller's trace. Nothing
// is set when ctx has no valid span context.
func injectTrace(ctx context.Context, h http.Header) {
	tracing.Header().Inject(ctx, propagation.HeaderCarrier(h))
}

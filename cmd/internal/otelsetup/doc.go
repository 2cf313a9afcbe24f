// Package otelsetup installs OpenTelemetry's SDK in Concord's binaries (coord,
// demo-participant) when the standard OTEL_* environment variables ask for
// it, and nothing otherwise.
//
// The library packages (coordinator, participant, httpapi) use only
// OpenTelemetry's API and take a TracerProvider as an option: a program
// that embeds them chooses its own SDK, exporter and sampling, or none. The
// binaries are such programs, and this package is their choice, kept under
// cmd/ so that no library user links an SDK or an exporter they did not ask
// for.
//
// Export is on when OTEL_TRACES_EXPORTER is "otlp", or when it is unset and
// an OTLP endpoint is (OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT); OTEL_SDK_DISABLED=true and
// OTEL_TRACES_EXPORTER=none turn it off. Off, the provider is a no-op: no
// span is recorded and none is exported, but an incoming trace context
// still flows on (a traceparent header reaches the participants through
// the transaction's record), which costs nothing measurable.
//
// Rejected: reading the variables with the SDK's own autoexport package
// (contrib) — one more dependency tree for the two exporters we offer, and
// its errors for a bad value do not name the variable; and setting the
// global TracerProvider — the binaries pass theirs to the libraries'
// options, so tests that run several binaries in one process stay apart.
// The one global Setup does set is OpenTelemetry's error handler, so that
// an export that fails is logged through the binary's logger.
package otelsetup

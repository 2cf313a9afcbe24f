// Package otlptest runs a real OTLP/HTTP trace receiver for tests whose
// processes export spans (the binaries, configured by the standard OTEL_*
// variables), and gives in-process and cross-process tests one span type
// to assert trace trees on.
//
// The receiver is a plain net/http server that decodes the OTLP protobuf
// (or JSON) request with OpenTelemetry's own proto module, as a collector
// would; rejected: running the OpenTelemetry Collector, a large dependency
// tree and a second process to manage for one endpoint.
package otlptest

import (
	"compress/gzip"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	collectorpb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/concord-tx/concord/internal/testkit/poll"
)

// Receiver is an OTLP/HTTP trace receiver on a loopback port. It keeps
// every span it is sent; the test's cleanup stops it.
type Receiver struct {
	srv *http.Server
	url string

	mu struct {
		sync.Mutex
		spans Spans
	}
}

// Start starts a receiver and registers its shutdown with t.Cleanup.
func Start(t testing.TB) *Receiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("otlptest: listen: %v", err)
	}
	r := &Receiver{url: "http://" + ln.Addr().String()}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", r.export)
	r.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.srv.Serve(ln)
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r.srv.Shutdown(ctx)
		<-done
	})
	return r
}

// URL is the receiver's base URL, the value of OTEL_EXPORTER_OTLP_ENDPOINT
// (exporters post to URL/v1/traces).
func (r *Receiver) URL() string { return r.url }

// Env returns the environment that makes a Concord binary export every
// span to r, promptly: service is its OTEL_SERVICE_NAME.
func (r *Receiver) Env(service string) []string {
	return []string{
		"OTEL_EXPORTER_OTLP_ENDPOINT=" + r.url,
		"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
		"OTEL_TRACES_SAMPLER=parentbased_always_on",
		"OTEL_SERVICE_NAME=" + service,
		"OTEL_BSP_SCHEDULE_DELAY=50", // milliseconds; the default is 5s
	}
}

// Spans returns every span received so far.
func (r *Receiver) Spans() Spans {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append(Spans(nil), r.mu.spans...)
}

// WaitFor polls until cond holds for the spans received, failing the test
// after within; cond describes what it saw.
func (r *Receiver) WaitFor(t testing.TB, within time.Duration, what string, cond func(Spans) (bool, string)) Spans {
	t.Helper()
	var got Spans
	poll.Until(t, within, what, func() (bool, string) {
		got = r.Spans()
		return cond(got)
	})
	return got
}

func (r *Receiver) export(w http.ResponseWriter, req *http.Request) {
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		defer gz.Close()
		body = gz
	}
	b, err := io.ReadAll(io.LimitReader(body, 64<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var msg collectorpb.ExportTraceServiceRequest
	isJSON := strings.HasPrefix(req.Header.Get("Content-Type"), "application/json")
	if isJSON {
		err = protojson.Unmarshal(b, &msg)
	} else {
		err = proto.Unmarshal(b, &msg)
	}
	if err != nil {
		http.Error(w, "otlptest: "+err.Error(), http.StatusBadRequest)
		return
	}
	spans := convert(&msg)
	r.mu.Lock()
	r.mu.spans = append(r.mu.spans, spans...)
	r.mu.Unlock()

	var out []byte
	if isJSON {
		w.Header().Set("Content-Type", "application/json")
		out, _ = protojson.Marshal(&collectorpb.ExportTraceServiceResponse{})
	} else {
		w.Header().Set("Content-Type", "application/x-protobuf")
		out, _ = proto.Marshal(&collectorpb.ExportTraceServiceResponse{})
	}
	w.Write(out)
}

func convert(msg *collectorpb.ExportTraceServiceRequest) Spans {
	var out Spans
	for _, rs := range msg.GetResourceSpans() {
		service := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				out = append(out, convertSpan(service, sp))
			}
		}
	}
	return out
}

func convertSpan(service string, sp *tracepb.Span) Span {
	s := Span{
		Service:       service,
		TraceID:       hex.EncodeToString(sp.GetTraceId()),
		SpanID:        hex.EncodeToString(sp.GetSpanId()),
		ParentID:      hex.EncodeToString(sp.GetParentSpanId()),
		Name:          sp.GetName(),
		Attrs:         make(map[string]string, len(sp.GetAttributes())),
		StatusMessage: sp.GetStatus().GetMessage(),
		Start:         time.Unix(0, int64(sp.GetStartTimeUnixNano())),
		End:           time.Unix(0, int64(sp.GetEndTimeUnixNano())),
	}
	switch sp.GetStatus().GetCode() {
	case tracepb.Status_STATUS_CODE_OK:
		s.StatusCode = "ok"
	case tracepb.Status_STATUS_CODE_ERROR:
		s.StatusCode = "error"
	default:
		s.StatusCode = "unset"
	}
	for _, kv := range sp.GetAttributes() {
		s.Attrs[kv.GetKey()] = emit(kv.GetValue())
	}
	for _, e := range sp.GetEvents() {
		s.Events = append(s.Events, e.GetName())
	}
	for _, l := range sp.GetLinks() {
		s.Links = append(s.Links, Link{TraceID: hex.EncodeToString(l.GetTraceId()), SpanID: hex.EncodeToString(l.GetSpanId())})
	}
	return s
}

// emit writes v as attribute.Value.Emit does, so that both paths compare
// equal: arrays as JSON.
func emit(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_BoolValue:
		return strconv.FormatBool(x.BoolValue)
	case *commonpb.AnyValue_IntValue:
		return strconv.FormatInt(x.IntValue, 10)
	case *commonpb.AnyValue_DoubleValue:
		return strconv.FormatFloat(x.DoubleValue, 'g', -1, 64)
	case *commonpb.AnyValue_ArrayValue:
		var items []any
		for _, e := range x.ArrayValue.GetValues() {
			switch y := e.GetValue().(type) {
			case *commonpb.AnyValue_StringValue:
				items = append(items, y.StringValue)
			case *commonpb.AnyValue_BoolValue:
				items = append(items, y.BoolValue)
			case *commonpb.AnyValue_IntValue:
				items = append(items, y.IntValue)
			case *commonpb.AnyValue_DoubleValue:
				items = append(items, y.DoubleValue)
			}
		}
		b, _ := json.Marshal(items)
		return string(b)
	}
	return ""
}

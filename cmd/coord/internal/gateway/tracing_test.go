package gateway_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/concord-tx/concord/coordinator"
	"github.com/concord-tx/concord/internal/testkit/etcdtest"
	"github.com/concord-tx/concord/internal/testkit/otlptest"
	"github.com/concord-tx/concord/internal/testkit/poll"
	"github.com/concord-tx/concord/internal/tracing"
	"github.com/concord-tx/concord/participant"
	"github.com/concord-tx/concord/protocol"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// TestTraceReachesService: the service behind the gateway gets a
// traceparent naming the gateway's participant span of each call, in the
// initiator's trace, so that its own spans join that trace.
func TestTraceReachesService(t *testing.T) {
	etcd := etcdtest.Start(t)
	cli := etcd.Client(t)
	var mu sync.Mutex
	got := map[string]string{} // phase → traceparent
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc("POST /{phase}", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got[r.PathValue("phase")] = r.Header.Get("traceparent")
		mu.Unlock()
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(context.Background())
	g := startGateway(t, cli, "svc", srv.URL, participant.WithTracerProvider(tp))
	poll.Until(t, 10*time.Second, "gateway active", func() (bool, string) { return g.IsActive(), "" })
	c, err := coordinator.NewClient(context.Background(), cli, coordinator.WithTracerProvider(tp))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })

	ctx, root := tp.Tracer("test").Start(context.Background(), "caller")
	out, err := c.Do(ctx, coordinator.Request{ID: "traced", Timeout: 20 * time.Second, Branches: []protocol.Branch{{Participant: "svc", Payload: []byte(`{}`)}}})
	root.End()
	if err != nil || !out.Committed() {
		t.Fatalf("Do: %+v, %v; want committed", out, err)
	}
	var spans otlptest.Spans
	poll.Until(t, 10*time.Second, "the commit's span", func() (bool, string) {
		spans = otlptest.FromStubs(exp.GetSpans())
		return len(spans.Named(tracing.SpanCommit)) == 1, spans.String()
	})
	traceID := root.SpanContext().TraceID().String()
	for _, phase := range []struct{ path, span string }{{"prepare", tracing.SpanPrepare}, {"commit", tracing.SpanCommit}} {
		s := spans.Named(phase.span)
		mu.Lock()
		header := got[phase.path]
		mu.Unlock()
		if len(s) != 1 || !strings.HasPrefix(header, "00-"+traceID+"-"+s[0].SpanID+"-") {
			t.Errorf("%s: traceparent %q, want the trace %s and the span %v", phase.path, header, traceID, s)
		}
	}
}

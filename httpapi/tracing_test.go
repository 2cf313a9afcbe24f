package httpapi_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/concord-tx/concord/httpapi"
	"github.com/concord-tx/concord/internal/testkit/otlptest"
	"github.com/concord-tx/concord/participant"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// The API continues a caller's traceparent: the request's span is the
// caller's child and the transaction stores it, so its view shows the
// caller's trace id. A malformed traceparent is ignored: the request
// succeeds in a new trace. Probes get no span.
func TestTraceparent(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(context.Background())
	f := newFixture(t, noReplica(), withConfig(func(c *httpapi.Config) { c.TracerProvider = tp }))
	f.participant(t, "a", participant.HandlerFuncs{})

	const callerTrace, callerSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	for _, tc := range []struct {
		id, traceparent string
		continued       bool
	}{
		{"traced", "00-" + callerTrace + "-" + callerSpan + "-01", true},
		{"malformed", "00-" + callerTrace + "-" + callerSpan + "-zz", false},
		{"garbage", "hello", false},
	} {
		exp.Reset()
		req, err := http.NewRequest(http.MethodPost, f.url+"/v1/transactions", strings.NewReader(`{"id":"`+tc.id+`","branches":[{"participant":"a"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("traceparent", tc.traceparent)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"committed"`) {
			t.Fatalf("%s: %d %s, want 200 committed", tc.id, resp.StatusCode, body)
		}
		ss := otlptest.FromStubs(exp.GetSpans()).Named("POST /v1/transactions")
		if len(ss) != 1 {
			t.Fatalf("%s: request spans %v, want one", tc.id, ss)
		}
		s := ss[0]
		if tc.continued != (s.TraceID == callerTrace && s.ParentID == callerSpan) || (!tc.continued && s.ParentID != "") {
			t.Errorf("%s: span %v; continued %v", tc.id, s, tc.continued)
		}
		if s.Attrs["http.route"] != "/v1/transactions" || s.Attrs["http.response.status_code"] != "200" || s.Attrs["http.request.method"] != "POST" {
			t.Errorf("%s: attributes %v", tc.id, s.Attrs)
		}
		tx, err := f.api.Get(context.Background(), tc.id)
		if err != nil || tx.TraceID != s.TraceID {
			t.Errorf("%s: the view's trace id %q, %v; want the request's %s", tc.id, tx.TraceID, err, s.TraceID)
		}
	}

	exp.Reset()
	if code, _ := f.do(t, http.MethodGet, "/healthz", ""); code != http.StatusOK {
		t.Fatalf("healthz: %d", code)
	}
	for _, s := range otlptest.FromStubs(exp.GetSpans()) {
		if s.Name == "GET /healthz" {
			t.Errorf("a probe has a span: %v", s)
		}
	}
}

package otlptest

import (
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// Span is one finished span, as a test asserts on it: ids in lowercase hex,
// attribute values as strings.
type Span struct {
	Service       string // the resource's service.name
	TraceID       string
	SpanID        string
	ParentID      string // "" for a root span
	Name          string
	Attrs         map[string]string
	Events        []string // names, in order
	Links         []Link
	StatusCode    string // "unset", "ok" or "error"
	StatusMessage string
	Start, End    time.Time
}

// Link is a span's link to another span.
type Link struct{ TraceID, SpanID string }

func (s Span) String() string {
	return fmt.Sprintf("%s/%s %q (trace %s, parent %s, status %s)", s.Service, s.SpanID, s.Name, s.TraceID, s.ParentID, s.StatusCode)
}

// Spans is a set of finished spans with the lookups tree assertions need.
type Spans []Span

// Named returns the spans named name.
func (ss Spans) Named(name string) Spans {
	return ss.where(func(s Span) bool { return s.Name == name })
}

// With returns the spans whose attribute key has value value.
func (ss Spans) With(key, value string) Spans {
	return ss.where(func(s Span) bool { v, ok := s.Attrs[key]; return ok && v == value })
}

// InTrace returns the spans of trace traceID.
func (ss Spans) InTrace(traceID string) Spans {
	return ss.where(func(s Span) bool { return s.TraceID == traceID })
}

// where returns the spans for which keep is true.
func (ss Spans) where(keep func(Span) bool) Spans {
	var out Spans
	for _, s := range ss {
		if keep(s) {
			out = append(out, s)
		}
	}
	return out
}

// ByID returns the span with id spanID.
func (ss Spans) ByID(spanID string) (Span, bool) {
	for _, s := range ss {
		if s.SpanID == spanID {
			return s, true
		}
	}
	return Span{}, false
}

// Descends reports whether s is a descendant of ancestor through spans
// that are all in ss (a child, a grandchild, ...).
func (ss Spans) Descends(s, ancestor Span) bool {
	for seen := 0; s.ParentID != "" && seen <= len(ss); seen++ {
		if s.ParentID == ancestor.SpanID && s.TraceID == ancestor.TraceID {
			return true
		}
		var ok bool
		if s, ok = ss.ByID(s.ParentID); !ok {
			return false
		}
	}
	return false
}

// String lists the spans, one a line, for failure messages.
func (ss Spans) String() string {
	var b strings.Builder
	for _, s := range ss {
		fmt.Fprintf(&b, "\n  %v %v", s, s.Attrs)
	}
	return b.String()
}

// FromStubs converts the spans of the SDK's in-memory exporter
// (tracetest.InMemoryExporter.GetSpans), so that in-process tests and
// tests across processes assert on the same type.
func FromStubs(stubs tracetest.SpanStubs) Spans {
	out := make(Spans, 0, len(stubs))
	for _, st := range stubs {
		s := Span{
			TraceID:       st.SpanContext.TraceID().String(),
			SpanID:        st.SpanContext.SpanID().String(),
			Name:          st.Name,
			Attrs:         attrs(st.Attributes),
			StatusCode:    strings.ToLower(st.Status.Code.String()),
			StatusMessage: st.Status.Description,
			Start:         st.StartTime,
			End:           st.EndTime,
		}
		if st.Parent.IsValid() {
			s.ParentID = st.Parent.SpanID().String()
		}
		if st.Resource != nil {
			if v, ok := st.Resource.Set().Value(semconv.ServiceNameKey); ok {
				s.Service = v.Emit()
			}
		}
		for _, e := range st.Events {
			s.Events = append(s.Events, e.Name)
		}
		for _, l := range st.Links {
			s.Links = append(s.Links, Link{TraceID: l.SpanContext.TraceID().String(), SpanID: l.SpanContext.SpanID().String()})
		}
		out = append(out, s)
	}
	return out
}

func attrs(kvs []attribute.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.Emit()
	}
	return m
}

package protocol

import "encoding/json"

// TraceContext is the W3C trace context (https://www.w3.org/TR/trace-context/)
// of the span that began a transaction: the values of its traceparent and
// tracestate headers, verbatim. It rides in the record, and so in every
// inbox message, which repeats the record: every participant's handler and
// every recovery action can continue the initiator's trace although no
// party ever calls another.
//
// It is advisory. A record without one, or with one that is not well
// formed, is a valid record: readers start a new trace instead, and never
// refuse the record or fail the transaction for it.
//
// A *TraceContext is a carrier for OpenTelemetry's propagators (it has the
// Get, Set and Keys methods of propagation.TextMapCarrier) without this
// package importing OpenTelemetry.
type TraceContext struct {
	Parent string `json:"traceparent,omitempty"` // e.g. 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
	State  string `json:"tracestate,omitempty"`  // vendor entries, e.g. congo=t61rcWkgMzE
}

// The carrier keys of a TraceContext: the W3C header names.
const (
	TraceParentKey = "traceparent"
	TraceStateKey  = "tracestate"
)

// Get returns the value of the header named key ("traceparent" or
// "tracestate"), or "".
func (tc *TraceContext) Get(key string) string {
	switch key {
	case TraceParentKey:
		return tc.Parent
	case TraceStateKey:
		return tc.State
	}
	return ""
}

// Set sets the header named key; other keys are ignored.
func (tc *TraceContext) Set(key, value string) {
	switch key {
	case TraceParentKey:
		tc.Parent = value
	case TraceStateKey:
		tc.State = value
	}
}

// Keys returns the names of the headers tc holds.
func (tc *TraceContext) Keys() []string {
	var keys []string
	if tc.Parent != "" {
		keys = append(keys, TraceParentKey)
	}
	if tc.State != "" {
		keys = append(keys, TraceStateKey)
	}
	return keys
}

// Valid reports whether tc's traceparent is well formed: version-traceid-
// parentid-flags in lowercase hex, version not ff, ids not all zeros;
// version 00 is exactly 55 characters, a later version may append fields.
func (tc TraceContext) Valid() bool {
	p := tc.Parent
	if len(p) < 55 || (len(p) > 55 && (p[:2] == "00" || p[55] != '-')) {
		return false
	}
	if p[2] != '-' || p[35] != '-' || p[52] != '-' || p[:2] == "ff" {
		return false
	}
	return isHex(p[:2]) && isHex(p[53:55]) && isNonZeroHex(p[3:35]) && isNonZeroHex(p[36:52])
}

// TraceID returns the trace id of a valid tc (32 hex digits), or "".
func (tc TraceContext) TraceID() string {
	if !tc.Valid() {
		return ""
	}
	return tc.Parent[3:35]
}

// Bounded returns tc fit to store: nothing if the traceparent is not valid,
// and no tracestate if it is longer than MaxTraceStateLength (the W3C
// recommends propagating at least 512 characters of it, and allows dropping
// it whole).
func (tc TraceContext) Bounded() TraceContext {
	if !tc.Valid() {
		return TraceContext{}
	}
	if len(tc.State) > MaxTraceStateLength {
		tc.State = ""
	}
	return tc
}

// UnmarshalJSON reads a stored trace context leniently: a value of the
// wrong shape decodes as no trace context rather than failing the record
// that carries it.
func (tc *TraceContext) UnmarshalJSON(b []byte) error {
	var v struct {
		Parent any `json:"traceparent"`
		State  any `json:"tracestate"`
	}
	*tc = TraceContext{}
	if json.Unmarshal(b, &v) != nil {
		return nil
	}
	tc.Parent, _ = v.Parent.(string)
	tc.State, _ = v.State.(string)
	return nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func isNonZeroHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '0' {
			return isHex(s)
		}
	}
	return false
}

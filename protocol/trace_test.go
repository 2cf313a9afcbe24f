package protocol

import (
	"strings"
	"testing"
	"time"
)

const (
	testTraceID     = "4bf92f3577b34da6a3ce929d0e0e4736"
	testTraceParent = "00-" + testTraceID + "-00f067aa0ba902b7-01"
)

func TestTraceContextValid(t *testing.T) {
	tests := []struct {
		parent string
		valid  bool
	}{
		{testTraceParent, true},
		{"00-" + testTraceID + "-00f067aa0ba902b7-00", true},                      // not sampled
		{"01-" + testTraceID + "-00f067aa0ba902b7-01-what-the-future-adds", true}, // later version, more fields
		{"01-" + testTraceID + "-00f067aa0ba902b7-01", true},
		{"", false},
		{"garbage", false},
		{"00-" + testTraceID + "-00f067aa0ba902b7-01-", false},                 // version 00 has exactly 4 fields
		{"01-" + testTraceID + "-00f067aa0ba902b7-01x", false},                 // a later version's extra field starts with -
		{"ff-" + testTraceID + "-00f067aa0ba902b7-01", false},                  // version ff is invalid
		{"00-00000000000000000000000000000000-00f067aa0ba902b7-01", false},     // zero trace id
		{"00-" + testTraceID + "-0000000000000000-01", false},                  // zero parent id
		{"00-" + strings.ToUpper(testTraceID) + "-00f067aa0ba902b7-01", false}, // upper case
		{"00-" + testTraceID + "-00f067aa0ba902b7-0g", false},
		{"00_" + testTraceID + "-00f067aa0ba902b7-01", false},
		{"00-" + testTraceID[:31] + "-00f067aa0ba902b7-01x", false},
	}
	for _, tt := range tests {
		tc := TraceContext{Parent: tt.parent, State: "congo=t61rcWkgMzE"}
		if got := tc.Valid(); got != tt.valid {
			t.Errorf("Valid(%q) = %v, want %v", tt.parent, got, tt.valid)
		}
		wantID, wantBounded := "", TraceContext{}
		if tt.valid {
			wantID, wantBounded = testTraceID, tc
		}
		if got := tc.TraceID(); got != wantID {
			t.Errorf("TraceID(%q) = %q, want %q", tt.parent, got, wantID)
		}
		if got := tc.Bounded(); got != wantBounded {
			t.Errorf("Bounded(%q) = %+v, want %+v", tt.parent, got, wantBounded)
		}
	}
	long := TraceContext{Parent: testTraceParent, State: "a=" + strings.Repeat("x", MaxTraceStateLength)}
	if got := long.Bounded(); got != (TraceContext{Parent: testTraceParent}) {
		t.Errorf("a tracestate over %d characters is kept: %+v", MaxTraceStateLength, got)
	}
}

func TestTraceContextCarrier(t *testing.T) {
	var tc TraceContext
	if keys := tc.Keys(); len(keys) != 0 {
		t.Errorf("empty context has keys %v", keys)
	}
	tc.Set(TraceParentKey, testTraceParent)
	tc.Set(TraceStateKey, "congo=t61rcWkgMzE")
	tc.Set("baggage", "ignored=1")
	if tc.Get(TraceParentKey) != testTraceParent || tc.Get(TraceStateKey) != "congo=t61rcWkgMzE" || tc.Get("baggage") != "" {
		t.Errorf("carrier: %+v", tc)
	}
	if keys := tc.Keys(); len(keys) != 2 || keys[0] != TraceParentKey || keys[1] != TraceStateKey {
		t.Errorf("keys: %v", keys)
	}
}

// The trace context rides in the record: the begin's prepare messages and
// the decision's messages carry it, old records without it decode, and a
// stored context of the wrong shape is dropped, never fails the record.
func TestTraceContextStored(t *testing.T) {
	now := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
	tc := TraceContext{Parent: testTraceParent, State: "congo=t61rcWkgMzE"}
	rec := Record{ID: "t1", State: StatePreparing, Participants: []string{"a", "b"}, Created: now, Deadline: now.Add(time.Second), Digest: "d", Trace: tc}
	k, err := NewKeys(DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}
	writes, err := k.BeginWrites(rec, []Branch{{Participant: "a"}, {Participant: "b"}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(writes[0].Value), `"trace":{"traceparent":"`+testTraceParent+`","tracestate":"congo=t61rcWkgMzE"}`) {
		t.Errorf("record encoding: %s", writes[0].Value)
	}
	got, err := DecodeRecord(writes[0].Value)
	if err != nil || got.Trace != tc {
		t.Errorf("record trace: %+v, %v", got.Trace, err)
	}
	m, err := DecodeMessage(writes[2].Value)
	if err != nil || m.Record.Trace != tc {
		t.Errorf("prepare message trace: %+v, %v", m.Record.Trace, err)
	}
	decided, dw, err := k.DecisionWrites(rec, 7, StateCommitting, now, CauseNone, "")
	if err != nil || decided.Trace != tc {
		t.Fatalf("decided record trace: %+v, %v", decided.Trace, err)
	}
	if m, err := DecodeMessage(dw[1].Value); err != nil || m.Record.Trace != tc {
		t.Errorf("commit message trace: %+v, %v", m.Record.Trace, err)
	}
	if done, _, err := k.FinishWrite(decided, now); err != nil || done.Trace != tc {
		t.Errorf("terminal record trace: %+v, %v", done.Trace, err)
	}

	untraced := rec
	untraced.Trace = TraceContext{}
	b, err := EncodeRecord(untraced)
	if err != nil || strings.Contains(string(b), "trace") {
		t.Errorf("untraced record writes a trace: %s, %v", b, err)
	}
	const old = `{"v":1,"id":"t1","state":"preparing","participants":["a"],"created":"2026-11-21T08:00:00Z","deadline":"2026-11-21T08:00:01Z","digest":"d"`
	for _, stored := range []string{
		old + `}`,
		old + `,"trace":null}`,
		old + `,"trace":"00-` + testTraceID + `-00f067aa0ba902b7-01"}`,
		old + `,"trace":{"traceparent":42,"tracestate":["x"]}}`,
		old + `,"trace":[1,2]}`,
	} {
		got, err := DecodeRecord([]byte(stored))
		if err != nil || got.ID != "t1" || got.Trace != (TraceContext{}) {
			t.Errorf("DecodeRecord(%s) = trace %+v, %v; want no trace, no error", stored, got.Trace, err)
		}
	}
	got, err = DecodeRecord([]byte(old + `,"trace":{"traceparent":"not-a-traceparent"}}`))
	if err != nil || got.Trace.Valid() || got.Trace.TraceID() != "" {
		t.Errorf("malformed traceparent: %+v, %v; want kept as stored, not valid, no error", got.Trace, err)
	}
}

package protocol

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// The fast path must agree with encoding/json, which defines the encoding:
// whatever it encodes, it encodes to the same bytes, and whatever it
// decodes, it decodes to the same value.

func TestFastEncodingAgrees(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	zones := []*time.Location{
		time.UTC, time.FixedZone("", 5*3600+30*60), time.FixedZone("", -(23*3600 + 59*60)),
		time.FixedZone("", 24*3600), time.FixedZone("", -24*3600), time.FixedZone("", 3600+7),
	}
	var times []time.Time
	for _, z := range zones {
		times = append(times, at.In(z))
	}
	times = append(times,
		time.Time{}, time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(0, 1, 1, 0, 30, 0, 0, time.FixedZone("", 3600)), // year -1 in UTC
	)
	texts := []string{"", "t1", "bank-a", "a<b", "x&y", "q\"uote", "back\\slash", "tab\t", "\x7f", "ü", "\xff", "日本", "\u2028", "ops \x1b[31m"}
	var records []Record
	for i, tm := range times {
		records = append(records, Record{ID: "t", State: StatePreparing, Participants: []string{"a", "b"}, Created: tm, Deadline: times[(i+1)%len(times)], Decided: tm, Finished: times[(i+2)%len(times)], Digest: "d"})
	}
	for i, s := range texts {
		records = append(records, Record{
			ID: s, State: State(1 + i%5), Participants: []string{s, "p"}, Created: at, Deadline: at,
			Cause: Cause(s), Reason: s, Digest: s, Trace: TraceContext{Parent: s, State: texts[(i+1)%len(texts)]},
		})
	}
	records = append(records,
		Record{ID: "nil participants", State: StateAborted},
		Record{ID: "empty participants", State: StateAborted, Participants: []string{}},
		Record{ID: "state only", State: StateCommitting, Trace: TraceContext{State: "k=v"}},
		Record{ID: "no state", Participants: []string{"a"}},
		Record{ID: "state out of range", State: StateAborted + 1, Participants: []string{"a"}},
	)
	for _, r := range records {
		want, wantErr := json.Marshal(recordEnvelope{V: EncodingVersion, Record: r})
		if got, ok := appendRecordJSON(nil, r, EncodingVersion); ok && (wantErr != nil || !bytes.Equal(got, want)) {
			t.Errorf("record %+v:\nfast          %s\nencoding/json %s (%v)", r, got, want, wantErr)
		}
		for _, m := range []Message{
			{Op: OpPrepare, Record: r, Payload: []byte(r.ID)},
			{Op: OpCommit, Record: r, Begun: 7},
			{Op: Op(r.Reason), Record: r, Payload: []byte{}},
		} {
			want, wantErr := json.Marshal(messageEnvelope{V: EncodingVersion, Message: m})
			if got, ok := appendMessageJSON(nil, m); ok && (wantErr != nil || !bytes.Equal(got, want)) {
				t.Errorf("message %+v:\nfast          %s\nencoding/json %s (%v)", m, got, want, wantErr)
			}
		}
	}
	// The common shape does take the fast path.
	if _, ok := appendRecordJSON(nil, records[0], EncodingVersion); !ok {
		t.Errorf("a plain record left the fast path")
	}
	b, _ := EncodeRecord(records[0])
	if _, ok := decodeRecordFast(b); !ok {
		t.Errorf("%s left the fast path", b)
	}
}

// agree checks the fast decoder fast against encoding/json on b: what it
// accepts, encoding/json accepts too, as the same value.
func agree[E any](t *testing.T, b []byte, fast func([]byte) (E, bool)) {
	t.Helper()
	got, ok := fast(b)
	if !ok {
		return
	}
	var want E
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatalf("fast path read %q, which encoding/json refuses: %v", b, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("reading %q:\nfast          %#v\nencoding/json %#v", b, got, want)
	}
}

var fastSeeds = []string{
	`{"v":1,"id":"x","state":"preparing","participants":["a","b"],"created":"2026-01-02T03:04:05.000000006Z","deadline":"2026-01-02T03:04:06Z","digest":"d"}`,
	` { "v" : 1 , "id" : "x" , "state" : "PREPARING " , "participants" : [ ] , "digest" : "" } `,
	`{"v":1,"id":"x","id":"y","participants":["a"],"participants":["b","c"]}`,
	`{"v":01,"id":"x"}`, `{"v":-0,"id":"x"}`, `{"v":1.0}`, `{"v":1e0}`, `{"v":9223372036854775808}`,
	`{"v":1,"trace":{"traceparent":"00-ab","tracestate":"k=v"}}`, `{"v":1,"trace":{}}`, `{"v":1,"trace":null}`, `{"v":1,"trace":{"traceparent":5}}`,
	`{"v":1,"state":null}`, `{"v":1,"created":null}`, `{"v":1,"created":"2026-01-02T03:04:05+24:00"}`,
	`{"ID":"x"}`, `{"v":1,"extra":true}`, `{"v":1}x`, `{"v":1,}`, `{"v":1,"id":"a\u0062"}`, "{\"v\":1,\"id\":\"\x7f\"}",
	`{"v":1,"op":"prepare","record":{"id":"x","state":"preparing","participants":["a"]},"payload":"AAE=","begun":3}`,
	`{"v":1,"op":"prepare","record":{"id":"x"},"record":{"state":"aborting"},"payload":""}`,
	`{"v":1,"op":"commit","record":null}`, `{"v":1,"op":"commit","payload":"!!"}`, `{"v":1,"op":"commit","payload":"AA=="}`,
	`{"v":1,"op":"commit","payload":"AA"}`, `{"v":1,"op":"commit","begun":-7}`,
}

func FuzzFastRecord(f *testing.F) {
	for _, s := range fastSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) { agree(t, b, decodeRecordFast) })
}

func FuzzFastMessage(f *testing.F) {
	for _, s := range fastSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) { agree(t, b, decodeMessageFast) })
}

func BenchmarkRecordJSON(b *testing.B) {
	at := time.Now()
	r := Record{ID: "0d6f0c9e-8a61-4c1e-9d55-3c1b9e0f6a2b", State: StateCommitting, Participants: []string{"bank-a", "bank-b"}, Created: at, Deadline: at.Add(30 * time.Second), Decided: at, Digest: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}
	enc, _ := EncodeRecord(r)
	b.Run("encode/fast", func(b *testing.B) {
		for b.Loop() {
			_, _ = EncodeRecord(r)
		}
	})
	b.Run("encode/encoding-json", func(b *testing.B) {
		for b.Loop() {
			_, _ = json.Marshal(recordEnvelope{V: EncodingVersion, Record: r})
		}
	})
	b.Run("decode/fast", func(b *testing.B) {
		for b.Loop() {
			_, _ = DecodeRecord(enc)
		}
	})
	b.Run("decode/encoding-json", func(b *testing.B) {
		for b.Loop() {
			var e recordEnvelope
			_ = json.Unmarshal(enc, &e)
		}
	})
}

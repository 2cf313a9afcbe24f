package protocol

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestTransitions(t *testing.T) {
	allowed := map[[2]State]bool{
		{StatePreparing, StateCommitting}: true,
		{StatePreparing, StateAborting}:   true,
		{StateCommitting, StateCommitted}: true,
		{StateAborting, StateAborted}:     true,
	}
	all := append([]State{StateInvalid}, States()...)
	for _, from := range all {
		for _, to := range all {
			if got := CanTransition(from, to); got != allowed[[2]State{from, to}] {
				t.Errorf("CanTransition(%v, %v) = %v", from, to, got)
			}
		}
	}
}

func TestStateNames(t *testing.T) {
	tests := []struct {
		name    string
		want    State
		wantErr bool
	}{
		{"preparing", StatePreparing, false},
		{"COMMITTED", StateCommitted, false},
		{" aborting ", StateAborting, false},
		{"invalid", StateInvalid, true},
		{"done", StateInvalid, true},
		{"", StateInvalid, true},
	}
	for _, tt := range tests {
		got, err := ParseState(tt.name)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("ParseState(%q) = %v, %v", tt.name, got, err)
		}
		if tt.wantErr && !errors.Is(err, ErrInvalidState) {
			t.Errorf("ParseState(%q) error %v is not ErrInvalidState", tt.name, err)
		}
	}
	for _, s := range States() {
		if p, err := ParseState(s.String()); err != nil || p != s {
			t.Errorf("round trip of %v: %v, %v", s, p, err)
		}
	}
	if _, err := StateInvalid.MarshalText(); !errors.Is(err, ErrInvalidState) {
		t.Errorf("zero state marshals: %v", err)
	}
	if StatePreparing.Decided() || !StateCommitting.Decided() || StateCommitting.Terminal() || !StateAborted.Terminal() {
		t.Error("Decided/Terminal wrong")
	}
	if StateCommitting.Outcome() != StateCommitted || StateAborting.Outcome() != StateAborted || StatePreparing.Outcome() != StateInvalid {
		t.Error("Outcome wrong")
	}
}

func TestKeys(t *testing.T) {
	k := DefaultKeys()
	tests := []struct {
		key  string
		want Key
	}{
		{k.Record("p-1"), Key{Kind: KindRecord, ID: "p-1"}},
		{k.Vote("p-1", "bank-a"), Key{Kind: KindVote, ID: "p-1", Participant: "bank-a"}},
		{k.Inbox("bank-a", "p-1"), Key{Kind: KindInbox, ID: "p-1", Participant: "bank-a"}},
		{k.Participant("bank-a"), Key{Kind: KindParticipant, Participant: "bank-a"}},
		{k.Election() + "694d", Key{Kind: KindElection}},
		{"/other/p-1", Key{}},
		{"/tx/p-1/ack/bank-a", Key{}},
		{"/tx/~unknown/x", Key{}},
	}
	for _, tt := range tests {
		if got := k.Parse(tt.key); got != tt.want {
			t.Errorf("Parse(%q) = %+v, want %+v", tt.key, got, tt.want)
		}
	}
	// No id's keys are a prefix of another's.
	if strings.HasPrefix(k.Vote("p-10", "a"), k.TxPrefix("p-1")) {
		t.Error("p-1's prefix matches p-10's votes")
	}
	if strings.HasPrefix(k.Inbox("a", "p-10"), k.Inbox("a", "p-1")+"/") {
		t.Error("inbox keys overlap")
	}
	// Records and votes sort inside Records(); reserved keys outside it.
	start, end := k.Records()
	for _, key := range []string{k.Record("A"), k.Record("zz"), k.Vote("zz", "z"), k.Record("0")} {
		if key < start || key >= end {
			t.Errorf("%q outside records range [%q, %q)", key, start, end)
		}
	}
	for _, key := range []string{k.Inbox("a", "x"), k.Participant("a"), k.Election()} {
		if key >= start && key < end {
			t.Errorf("%q inside records range", key)
		}
	}
	for _, bad := range []string{"", "/", "tx", "/tx/", "/t~x", "/a//b"} {
		if _, err := NewKeys(bad); !errors.Is(err, ErrInvalidPrefix) {
			t.Errorf("NewKeys(%q) = %v, want ErrInvalidPrefix", bad, err)
		}
	}
	if k2, err := NewKeys("/apps/concord"); err != nil || k2.Record("x") != "/apps/concord/x" || k2.Prefix() != "/apps/concord" {
		t.Errorf("custom prefix: %q", k2.Record("x"))
	}
}

func TestValidation(t *testing.T) {
	l := DefaultLimits()
	big := make([]byte, DefaultMaxPayload+1)
	many := make([]Branch, DefaultMaxBranches+1)
	for i := range many {
		many[i] = Branch{Participant: "p" + strings.Repeat("x", i%50) + string(rune('a'+i%26)) + string(rune('a'+i/26))}
	}
	tests := []struct {
		name     string
		branches []Branch
		want     error
	}{
		{"ok", []Branch{{Participant: "bank-a"}, {Participant: "bank.b_2"}}, nil},
		{"empty", nil, ErrNoBranches},
		{"too many", many, ErrTooManyBranches},
		{"duplicate", []Branch{{Participant: "a"}, {Participant: "a"}}, ErrDuplicateParticipant},
		{"upper case", []Branch{{Participant: "Bank"}}, ErrInvalidName},
		{"slash", []Branch{{Participant: "a/b"}}, ErrInvalidName},
		{"empty name", []Branch{{Participant: ""}}, ErrInvalidName},
		{"long name", []Branch{{Participant: strings.Repeat("a", 65)}}, ErrInvalidName},
		{"payload", []Branch{{Participant: "a", Payload: big}}, ErrPayloadTooLarge},
		{"total payload", []Branch{{Participant: "a", Payload: big[:60000]}, {Participant: "b", Payload: big[:60000]}}, nil},
	}
	for _, tt := range tests {
		err := l.ValidateBranches(tt.branches)
		if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, err, tt.want)
		}
	}
	l.MaxTotalPayload = 100000
	if err := l.ValidateBranches(tests[len(tests)-1].branches); !errors.Is(err, ErrPayloadTooLarge) {
		t.Errorf("total payload over limit: %v", err)
	}
	for _, id := range []string{"", strings.Repeat("a", 129), "a/b", "a~b", "a b", ".", ".."} {
		if err := ValidateID(id); !errors.Is(err, ErrInvalidID) {
			t.Errorf("ValidateID(%q) = %v", id, err)
		}
	}
	for _, id := range []string{"3fe630dd-d5fb-40cc-b2b2-1dcfc44b7c3e", "order:42.A_b", "...a"} {
		if err := ValidateID(id); err != nil {
			t.Errorf("ValidateID(%q) = %v", id, err)
		}
	}
	for _, d := range []time.Duration{0, time.Millisecond, 25 * time.Hour} {
		if err := DefaultLimits().ValidateTimeout(d); !errors.Is(err, ErrInvalidTimeout) {
			t.Errorf("ValidateTimeout(%v) = %v", d, err)
		}
	}
}

func TestEncoding(t *testing.T) {
	now := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
	rec := Record{ID: "t1", State: StatePreparing, Participants: []string{"a", "b"}, Created: now, Deadline: now.Add(time.Second), Digest: "d"}
	b, err := EncodeRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"v":1`) || !strings.Contains(string(b), `"state":"preparing"`) || strings.Contains(string(b), "decided") {
		t.Errorf("record encoding: %s", b)
	}
	got, err := DecodeRecord(b)
	if err != nil || got.ID != "t1" || got.State != StatePreparing || len(got.Participants) != 2 || !got.Deadline.Equal(rec.Deadline) {
		t.Errorf("decode: %+v, %v", got, err)
	}
	for _, bad := range []string{`{`, `{"v":2,"id":"t1","state":"preparing","participants":["a"]}`, `{"v":1,"id":"t1","state":"weird","participants":["a"]}`, `{"v":1,"id":"t1","state":"preparing"}`} {
		if _, err := DecodeRecord([]byte(bad)); err == nil {
			t.Errorf("DecodeRecord(%s) accepted", bad)
		}
	}
	if _, err := EncodeRecord(Record{ID: "x"}); !errors.Is(err, ErrInvalidState) {
		t.Errorf("zero-state record encoded: %v", err)
	}

	k := DefaultKeys()
	writes, err := k.BeginWrites(rec, []Branch{{Participant: "a", Payload: []byte("pa")}, {Participant: "b"}})
	if err != nil || len(writes) != 3 || writes[0].Key != "/tx/t1" || writes[1].Key != "/tx/~inbox/a/t1" {
		t.Fatalf("begin writes: %+v, %v", writes, err)
	}
	m, err := DecodeMessage(writes[1].Value)
	if err != nil || m.Op != OpPrepare || string(m.Payload) != "pa" || m.Record.ID != "t1" {
		t.Errorf("prepare message: %+v, %v", m, err)
	}
	decided, dw, err := k.DecisionWrites(rec, 7, StateAborting, now, CauseVoteNo, "b: no funds")
	if err != nil || decided.State != StateAborting || decided.Cause != CauseVoteNo || len(dw) != 3 {
		t.Fatalf("decision: %+v %+v %v", decided, dw, err)
	}
	m, err = DecodeMessage(dw[2].Value)
	if err != nil || m.Op != OpAbort || m.Record.State != StateAborting || m.Begun != 7 || dw[2].Key != "/tx/~inbox/b/t1" {
		t.Errorf("abort message: %+v, %v", m, err)
	}
	// Every participant's decision message is the same bytes, full to
	// capacity, so that an append to one cannot write into another's.
	if &dw[1].Value[0] != &dw[2].Value[0] || cap(dw[1].Value) != len(dw[1].Value) || cap(dw[0].Value) != len(dw[0].Value) {
		t.Errorf("decision values: shared %v, lengths %d and %d, capacities %d and %d", &dw[1].Value[0] == &dw[2].Value[0], len(dw[0].Value), len(dw[1].Value), cap(dw[0].Value), cap(dw[1].Value))
	}
	if _, _, err := k.DecisionWrites(decided, 7, StateCommitting, now, CauseNone, ""); !errors.Is(err, ErrInvalidState) {
		t.Errorf("second decision allowed: %v", err)
	}
	done, fin, err := k.FinishWrite(decided, now)
	if err != nil || done.State != StateAborted || fin.Key != "/tx/t1" || done.Reason != "b: no funds" {
		t.Errorf("finish: %+v %v", done, err)
	}
	if _, err := DecodeMessage([]byte(`{"v":1,"op":"vote","record":{"id":"x","state":"preparing","participants":["a"]}}`)); !errors.Is(err, ErrMalformed) {
		t.Errorf("unknown op accepted: %v", err)
	}
}

func TestVotes(t *testing.T) {
	for _, v := range []Vote{{Yes: true}, {Reason: "insufficient funds"}, {Reason: ""}} {
		got, err := ParseVote(v.Encode())
		if err != nil || got != v {
			t.Errorf("round trip %+v: %+v, %v", v, got, err)
		}
	}
	if _, err := ParseVote("maybe"); !errors.Is(err, ErrInvalidVote) {
		t.Errorf("ParseVote(maybe) = %v", err)
	}
	if got := (Vote{Reason: strings.Repeat("x", 1000)}).Encode(); len(got) != len("no:")+MaxReasonLength {
		t.Errorf("long reason not truncated: %d", len(got))
	}
}

func TestDigest(t *testing.T) {
	a := Digest([]Branch{{Participant: "a", Payload: []byte("1")}, {Participant: "b"}})
	if a != Digest([]Branch{{Participant: "a", Payload: []byte("1")}, {Participant: "b"}}) {
		t.Error("digest not stable")
	}
	if a == Digest([]Branch{{Participant: "a", Payload: []byte("2")}, {Participant: "b"}}) {
		t.Error("digest ignores payload")
	}
	if Digest([]Branch{{Participant: "ab"}}) == Digest([]Branch{{Participant: "a", Payload: []byte("b")}}) {
		t.Error("digest is ambiguous")
	}
}

func BenchmarkDecisionWrites(b *testing.B) {
	k := DefaultKeys()
	now := time.Now()
	rec := Record{ID: "3fe630dd-d5fb-40cc-b2b2-1dcfc44b7c3e", State: StatePreparing, Participants: []string{"bank-a", "bank-b"}, Created: now, Deadline: now.Add(time.Second), Digest: "cb6c33d8bd83f3f314a35e2be3b15159"}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := k.DecisionWrites(rec, 7, StateCommitting, now, CauseNone, ""); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeMessage(b *testing.B) {
	k := DefaultKeys()
	now := time.Now()
	rec := Record{ID: "3fe630dd-d5fb-40cc-b2b2-1dcfc44b7c3e", State: StatePreparing, Participants: []string{"bank-a", "bank-b"}, Created: now, Deadline: now.Add(time.Second), Digest: "cb6c33d8bd83f3f314a35e2be3b15159"}
	w, err := k.BeginWrites(rec, []Branch{{Participant: "bank-a", Payload: []byte(`{"account":"alice","amount":-10}`)}, {Participant: "bank-b"}})
	if err != nil {
		b.Fatal(err)
	}
	v := w[1].Value
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeMessage(v); err != nil {
			b.Fatal(err)
		}
	}
}

func TestFailureKeyAndEncoding(t *testing.T) {
	k := DefaultKeys()
	key := k.Failure("t-1", "bank-a")
	if key != "/tx/t-1/failure/bank-a" {
		t.Fatalf("failure key %q", key)
	}
	if got := k.Parse(key); got != (Key{Kind: KindFailure, ID: "t-1", Participant: "bank-a"}) {
		t.Fatalf("parse %q: %+v", key, got)
	}
	if !strings.HasPrefix(key, k.TxPrefix("t-1")) {
		t.Fatalf("failure key %q not under the transaction's prefix: it would outlive the record", key)
	}
	if start, end := k.Records(); key < start || key >= end {
		t.Fatalf("failure key %q outside the records range [%q, %q)", key, start, end)
	}
	long := strings.Repeat("é", MaxFailureErrorLength) // 2 bytes each
	since := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	b, err := EncodeFailure(Failure{Participant: "bank-a", Op: OpCommit, Since: since, Attempts: 7, LastError: long, Updated: since.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	f, err := DecodeFailure(b)
	if err != nil {
		t.Fatal(err)
	}
	if f.Participant != "bank-a" || f.Op != OpCommit || !f.Since.Equal(since) || f.Attempts != 7 || !f.Updated.Equal(since.Add(time.Minute)) {
		t.Errorf("decoded %+v", f)
	}
	if len(f.LastError) > MaxFailureErrorLength || !strings.HasSuffix(f.LastError, "…") || !utf8.ValidString(f.LastError) {
		t.Errorf("error text of %d bytes, valid UTF-8 %v: expected cut to at most %d at a character boundary", len(f.LastError), utf8.ValidString(f.LastError), MaxFailureErrorLength)
	}
	for _, bad := range []string{`{"v":1,"op":"prepare"}`, `{"v":9,"op":"commit"}`, `not json`} {
		if _, err := DecodeFailure([]byte(bad)); err == nil {
			t.Errorf("DecodeFailure(%s) accepted", bad)
		}
	}
	if _, err := EncodeFailure(Failure{Op: OpPrepare}); !errors.Is(err, ErrMalformed) {
		t.Errorf("EncodeFailure of a prepare: %v", err)
	}
	if got := CutText("short", 10); got != "short" {
		t.Errorf("CutText kept %q", got)
	}
}

package protocol

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// The fuzz targets below cover every decoder of values read from etcd,
// which anyone with write access to the prefix can put there. Their seeds
// run with the ordinary `go test`; `go test -fuzz` explores further (see
// FUZZING.md at the root for the runs made and what they found).

// FuzzDecodeRecord: a record is accepted or refused with ErrMalformed or
// ErrUnsupportedVersion, never a panic; what is accepted can be written
// back, and reads back the same.
func FuzzDecodeRecord(f *testing.F) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	for _, r := range []Record{
		{ID: "t1", State: StatePreparing, Participants: []string{"bank-a", "bank-b"}, Created: at, Deadline: at.Add(time.Second), Digest: "00ff"},
		{ID: "t2", State: StateAborting, Participants: []string{"p"}, Created: at, Deadline: at, Decided: at, Cause: CauseOperator, Reason: "ops \x1b[31m said so"},
		{ID: "ü", State: StateCommitted, Participants: []string{"a"}, Created: at, Deadline: at, Decided: at, Finished: at},
	} {
		b, err := EncodeRecord(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		``, `null`, `{}`, `[]`, `{"v":2}`, `{"v":1,"id":"x","state":"preparing"}`,
		`{"v":1,"id":"x","state":"bogus","participants":["a"]}`,
		`{"v":1,"id":"x","state":"PREPARING ","participants":["a"],"created":"2026-01-02T03:04:05+01:00"}`,
		`{"v":1,"id":"x","state":"preparing","participants":["a"],"created":"0000-01-01T00:00:00+01:00"}`,
		`{"v":1,"id":"x","state":"preparing","participants":["a"],"deadline":"9999-12-31T23:59:59-01:00"}`,
		`{"v":1,"id":"x","state":"preparing","participants":["a"],"id":"y"}`,
		"{\"v\":1,\"id\":\"\xff\",\"state\":\"preparing\",\"participants\":[\"a\"]}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRecord(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupportedVersion) {
				t.Fatalf("DecodeRecord(%q): %v, want ErrMalformed or ErrUnsupportedVersion", b, err)
			}
			if !strings.Contains(err.Error(), "record") {
				t.Fatalf("DecodeRecord(%q): %q does not say it is the record", b, err)
			}
			return
		}
		if !r.State.Valid() || r.ID == "" || len(r.Participants) == 0 {
			t.Fatalf("DecodeRecord(%q) accepted %+v", b, r)
		}
		enc, err := EncodeRecord(r)
		if err != nil {
			t.Fatalf("DecodeRecord(%q) accepted %+v, which EncodeRecord refuses: %v", b, r, err)
		}
		r2, err := DecodeRecord(enc)
		if err != nil {
			t.Fatalf("re-decoding %s: %v", enc, err)
		}
		if !sameRecord(r, r2) {
			t.Fatalf("round trip of %q:\n got %+v\nwant %+v", b, r2, r)
		}
		if enc2, _ := EncodeRecord(r2); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable: %s then %s", enc, enc2)
		}
	})
}

// FuzzDecodeMessage: as FuzzDecodeRecord, for inbox messages.
func FuzzDecodeMessage(f *testing.F) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rec := Record{ID: "t1", State: StatePreparing, Participants: []string{"a", "b"}, Created: at, Deadline: at}
	for _, m := range []Message{
		{Op: OpPrepare, Record: rec, Payload: []byte(`{"account":"alice","amount":-5}`)},
		{Op: OpCommit, Record: rec, Begun: 42},
		{Op: OpAbort, Record: rec, Payload: []byte{0, 0xff}},
	} {
		b, err := EncodeMessage(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		``, `{}`, `{"v":1,"op":"vote"}`, `{"v":1,"op":"prepare","record":{}}`,
		`{"v":1,"op":"prepare","record":{"id":"x","state":"preparing"},"payload":"!!"}`,
		`{"v":1,"op":"prepare","record":{"id":"x","state":"preparing"},"payload":"AAE="}`,
		`{"v":1,"op":"commit","record":{"id":"x","state":"committing"},"begun":-1}`,
		`{"v":1,"op":"commit","record":{"id":"x","state":"committing","v":7}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMessage(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupportedVersion) {
				t.Fatalf("DecodeMessage(%q): %v, want ErrMalformed or ErrUnsupportedVersion", b, err)
			}
			if !strings.Contains(err.Error(), "message") {
				t.Fatalf("DecodeMessage(%q): %q does not say it is the message", b, err)
			}
			return
		}
		switch m.Op {
		case OpPrepare, OpCommit, OpAbort:
		default:
			t.Fatalf("DecodeMessage(%q) accepted op %q", b, m.Op)
		}
		if !m.Record.State.Valid() || m.Record.ID == "" {
			t.Fatalf("DecodeMessage(%q) accepted record %+v", b, m.Record)
		}
		enc, err := EncodeMessage(m)
		if err != nil {
			t.Fatalf("DecodeMessage(%q) accepted %+v, which EncodeMessage refuses: %v", b, m, err)
		}
		m2, err := DecodeMessage(enc)
		if err != nil {
			t.Fatalf("re-decoding %s: %v", enc, err)
		}
		if m.Op != m2.Op || m.Begun != m2.Begun || !bytes.Equal(m.Payload, m2.Payload) || !sameRecord(m.Record, m2.Record) {
			t.Fatalf("round trip of %q:\n got %+v\nwant %+v", b, m2, m)
		}
	})
}

// FuzzParseVote: a stored vote is yes, no with a reason, or ErrInvalidVote;
// what parses encodes back to the same text.
func FuzzParseVote(f *testing.F) {
	for _, s := range []string{"yes", "no:", "no:insufficient funds", "YES", "no", "yes ", "no:\x1b[2J", "no:" + strings.Repeat("é", MaxReasonLength), "no:x" + strings.Repeat("é", MaxReasonLength)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseVote(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidVote) {
				t.Fatalf("ParseVote(%q): %v, want ErrInvalidVote", s, err)
			}
			return
		}
		if v.Yes != (s == VoteYes) || (v.Yes && v.Reason != "") {
			t.Fatalf("ParseVote(%q) = %+v", s, v)
		}
		enc := v.Encode()
		if len(v.Reason) <= MaxReasonLength && enc != s {
			t.Fatalf("ParseVote(%q).Encode() = %q", s, enc)
		}
		if len(enc) > len(voteNoPrefix)+MaxReasonLength {
			t.Fatalf("ParseVote(%q).Encode() is %d bytes, more than the limit", s, len(enc))
		}
		if !utf8.ValidString(s) || utf8.ValidString(enc) {
			return
		}
		t.Fatalf("ParseVote(%q).Encode() = %q cuts a character in two", s, enc)
	})
}

// FuzzParseKey: a key under the prefix parses to what builds it again;
// anything else is KindUnknown.
func FuzzParseKey(f *testing.F) {
	k := DefaultKeys()
	for _, s := range []string{
		k.Record("t1"), k.Vote("t1", "bank-a"), k.Inbox("bank-a", "t1"), k.Participant("bank-a"),
		k.Election() + "694d7a", k.TxPrefix("t1"), k.Inboxes(), "/tx", "/txx/a", "/tx/~", "/tx/~other/a",
		"/tx/t1/vote/", "/tx/t1/vote/a/b", "/tx/t1/other/a", "/tx/~inbox/a", "/tx/~inbox/a/b/c", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		p := k.Parse(key)
		var rebuilt string
		switch p.Kind {
		case KindUnknown:
			if p.ID != "" || p.Participant != "" {
				t.Fatalf("Parse(%q) = %+v: unknown, yet names parts", key, p)
			}
			return
		case KindRecord:
			rebuilt = k.Record(p.ID)
		case KindVote:
			rebuilt = k.Vote(p.ID, p.Participant)
		case KindInbox:
			rebuilt = k.Inbox(p.Participant, p.ID)
		case KindParticipant:
			rebuilt = k.Participant(p.Participant)
		case KindElection:
			if !strings.HasPrefix(key, k.Election()) {
				t.Fatalf("Parse(%q) = election, outside %s", key, k.Election())
			}
			return
		default:
			t.Fatalf("Parse(%q) = kind %d", key, p.Kind)
		}
		if rebuilt != key {
			t.Fatalf("Parse(%q) = %+v, which builds %q", key, p, rebuilt)
		}
	})
}

// FuzzParseState: names parse case-insensitively to one of the five
// states, whose name parses back; anything else is ErrInvalidState.
func FuzzParseState(f *testing.F) {
	for _, s := range []string{"preparing", "Committed", " aborted\n", "invalid", "state(9)", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		st, err := ParseState(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidState) || st != StateInvalid {
				t.Fatalf("ParseState(%q) = %v, %v", s, st, err)
			}
			return
		}
		if !st.Valid() {
			t.Fatalf("ParseState(%q) = invalid %v", s, st)
		}
		var back State
		if err := back.UnmarshalText([]byte(st.String())); err != nil || back != st {
			t.Fatalf("ParseState(%q) = %v, whose name parses to %v, %v", s, st, back, err)
		}
	})
}

// sameRecord compares records field by field, times by instant and
// offset (a decoded zone is a new *Location each time).
func sameRecord(a, b Record) bool {
	sameTime := func(x, y time.Time) bool {
		_, ox := x.Zone()
		_, oy := y.Zone()
		return x.Equal(y) && ox == oy
	}
	if !sameTime(a.Created, b.Created) || !sameTime(a.Deadline, b.Deadline) || !sameTime(a.Decided, b.Decided) || !sameTime(a.Finished, b.Finished) {
		return false
	}
	a.Created, a.Deadline, a.Decided, a.Finished = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	b.Created, b.Deadline, b.Decided, b.Finished = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b)
}

package protocol

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"
)

// EncodingVersion is the version written in every record and message. A
// reader refuses versions it does not know rather than guess.
const EncodingVersion = 1

// Record is the value of P/<id>: everything about a transaction except its
// votes and payloads.
type Record struct {
	ID           string    `json:"id"`
	State        State     `json:"state"`
	Participants []string  `json:"participants"`
	Created      time.Time `json:"created"`
	Deadline     time.Time `json:"deadline"`
	Decided      time.Time `json:"decided,omitzero"`
	Finished     time.Time `json:"finished,omitzero"`
	Cause        Cause     `json:"cause,omitempty"`
	Reason       string    `json:"reason,omitempty"`
	// Digest identifies the request that began the transaction (participants
	// and payloads), so a repeated begin with the same id can tell a retry
	// from a different transaction.
	Digest string `json:"digest"`
	// Trace is the W3C trace context of the span that began the
	// transaction; zero when the initiator was not traced. It is not part
	// of Digest: a retry from another trace is the same request.
	Trace TraceContext `json:"trace,omitzero"`
}

type recordEnvelope struct {
	V int `json:"v"`
	Record
}

// EncodeRecord returns the stored form of r.
func EncodeRecord(r Record) ([]byte, error) {
	if !r.State.Valid() {
		return nil, fmt.Errorf("%w: record %s: %v", ErrInvalidState, r.ID, r.State)
	}
	if b, ok := appendRecordJSON(make([]byte, 0, r.sizeHint()), r, EncodingVersion); ok {
		return b[:len(b):len(b)], nil // writes share it: an append must copy
	}
	return json.Marshal(recordEnvelope{V: EncodingVersion, Record: r})
}

// sizeHint is what EncodeRecord allocates for r's encoding: enough unless
// a string needs escapes or a time is not in UTC. Everything but the
// strings (names, quotes, the state, four times, an empty participants
// list) takes at most 308 bytes.
func (r Record) sizeHint() int {
	n := 308 + len(r.ID) + len(r.Cause) + len(r.Reason) + len(r.Digest) + len(r.Trace.Parent) + len(r.Trace.State)
	for _, p := range r.Participants {
		n += len(p) + 3
	}
	return n
}

// DecodeRecord parses a stored record.
func DecodeRecord(b []byte) (Record, error) {
	e, ok := decodeRecordFast(b)
	if !ok {
		e = recordEnvelope{}
		if err := json.Unmarshal(b, &e); err != nil {
			return Record{}, fmt.Errorf("%w: record: %v", ErrMalformed, err)
		}
	}
	if e.V != EncodingVersion {
		return Record{}, fmt.Errorf("%w: record version %d, expected %d", ErrUnsupportedVersion, e.V, EncodingVersion)
	}
	if !e.State.Valid() || e.ID == "" || len(e.Participants) == 0 {
		return Record{}, fmt.Errorf("%w: record %q: state %v, %d participants", ErrMalformed, e.ID, e.State, len(e.Participants))
	}
	return e.Record, nil
}

// Transition returns a copy of r moved to state to at time at, refusing moves
// the state machine does not allow. Cause and reason are kept once set.
func (r Record) Transition(to State, at time.Time, cause Cause, reason string) (Record, error) {
	if !CanTransition(r.State, to) {
		return Record{}, fmt.Errorf("%w: transaction %s: %v to %v is not allowed", ErrInvalidState, r.ID, r.State, to)
	}
	out := r
	out.Participants = append([]string(nil), r.Participants...)
	out.State = to
	if to.Terminal() {
		out.Finished = at.UTC()
	} else {
		out.Decided = at.UTC()
		out.Cause = cause
		out.Reason = truncate(reason, MaxReasonLength)
	}
	return out, nil
}

// Has reports whether participant has a branch in r.
func (r Record) Has(participant string) bool {
	for _, p := range r.Participants {
		if p == participant {
			return true
		}
	}
	return false
}

// Digest returns the digest of a begin request: its branches in order.
func Digest(branches []Branch) string {
	h := sha256.New()
	for _, b := range branches {
		fmt.Fprintf(h, "%d:%s:%d:", len(b.Participant), b.Participant, len(b.Payload))
		h.Write(b.Payload)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// truncate cuts s to at most n bytes, at a character boundary: a reason
// cut inside a character would show as a stray byte.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

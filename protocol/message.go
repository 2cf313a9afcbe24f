package protocol

import (
	"encoding/json"
	"fmt"
)

// Op is what an inbox message asks of a participant.
type Op string

const (
	OpPrepare Op = "prepare" // call Prepare, then vote
	OpCommit  Op = "commit"  // the transaction committed: call Commit, then acknowledge
	OpAbort   Op = "abort"   // the transaction aborted: call Abort, then acknowledge
)

// Message is the value of an inbox key P/~inbox/<participant>/<id>. The
// begin Txn writes a prepare message with the record and the branch payload;
// the decision Txn rewrites it as a commit or abort message with the decided
// record, which the last acknowledgement needs to write the terminal record.
type Message struct {
	Op      Op     `json:"op"`
	Record  Record `json:"record"`
	Payload []byte `json:"payload,omitempty"` // base64 in JSON; prepare only
	// Begun is R, the begin's revision, in commit and abort messages, so
	// that a participant that missed the prepare still learns which
	// transaction of that id it is told about (a prepare message's R is
	// its ModRevision). 0 in decisions written before this field.
	Begun int64 `json:"begun,omitempty"`
}

type messageEnvelope struct {
	V int `json:"v"`
	Message
}

// EncodeMessage returns the stored form of m.
func EncodeMessage(m Message) ([]byte, error) {
	if b, ok := appendMessageJSON(make([]byte, 0, m.Record.sizeHint()+64+len(m.Payload)*4/3), m); ok {
		return b[:len(b):len(b)], nil // writes share it: an append must copy
	}
	return json.Marshal(messageEnvelope{V: EncodingVersion, Message: m})
}

// DecodeMessage parses a stored inbox message.
func DecodeMessage(b []byte) (Message, error) {
	e, ok := decodeMessageFast(b)
	if !ok {
		e = messageEnvelope{}
		if err := json.Unmarshal(b, &e); err != nil {
			return Message{}, fmt.Errorf("%w: message: %v", ErrMalformed, err)
		}
	}
	if e.V != EncodingVersion {
		return Message{}, fmt.Errorf("%w: message version %d, expected %d", ErrUnsupportedVersion, e.V, EncodingVersion)
	}
	switch e.Op {
	case OpPrepare, OpCommit, OpAbort:
	default:
		return Message{}, fmt.Errorf("%w: message op %q, expected prepare, commit or abort", ErrMalformed, e.Op)
	}
	if !e.Record.State.Valid() || e.Record.ID == "" {
		return Message{}, fmt.Errorf("%w: message for %q carries a record in state %v", ErrMalformed, e.Record.ID, e.Record.State)
	}
	return e.Message, nil
}

// DecisionOp is the op that tells participants about decided state s.
func DecisionOp(s State) Op {
	if s.Committed() {
		return OpCommit
	}
	return OpAbort
}

package gateway

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"

	"github.com/concord-tx/concord/participant"
)

// Phase names the call: the last element of the default URLs and of the
// Idempotency-Key.
type Phase string

const (
	PhasePrepare Phase = "prepare"
	PhaseCommit  Phase = "commit"
	PhaseAbort   Phase = "abort"
)

// Request is the JSON body of every call to the service.
type Request struct {
	ID string `json:"id"`
	// Revision is the etcd revision that began the transaction: with ID it
	// names the transaction for good. 0 in a Commit or Abort decided by an
	// older Concord: match by ID alone.
	Revision     int64     `json:"revision"`
	Participant  string    `json:"participant"`
	Phase        Phase     `json:"phase"`
	Participants []string  `json:"participants"`
	Deadline     time.Time `json:"deadline"`
	// Payload is the branch payload when it is valid JSON (prepare only).
	Payload json.RawMessage `json:"payload,omitempty"`
	// PayloadBase64 holds the payload instead when it is not JSON.
	PayloadBase64 []byte `json:"payload_base64,omitempty"`
	// Reason says why the transaction aborted (abort only).
	Reason string `json:"reason,omitempty"`
}

// NewRequest returns the body of phase's call for tx.
func NewRequest(name string, phase Phase, tx participant.Tx) Request {
	r := Request{ID: tx.ID, Revision: tx.Revision, Participant: name, Phase: phase, Participants: tx.Participants, Deadline: tx.Deadline, Reason: tx.Reason}
	if len(tx.Payload) > 0 {
		if json.Valid(tx.Payload) {
			r.Payload = json.RawMessage(tx.Payload)
		} else {
			r.PayloadBase64 = tx.Payload
		}
	}
	return r
}

// IdempotencyKey is the Idempotency-Key header of r: "<id>:<revision>:<phase>".
func (r Request) IdempotencyKey() string {
	return r.ID + ":" + strconv.FormatInt(r.Revision, 10) + ":" + string(r.Phase)
}

// Header names of the signature.
const (
	HeaderTimestamp = "X-Concord-Timestamp"
	HeaderSignature = "X-Concord-Signature"
)

// Sign returns the signature header value of body sent at timestamp (Unix
// seconds, as written in HeaderTimestamp): "sha256=" and the hex
// HMAC-SHA256 of timestamp + "." + body under secret.
func Sign(secret []byte, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(timestamp))
	mac.Write([]byte("."))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

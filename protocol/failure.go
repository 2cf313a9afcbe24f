package protocol

import (
	"encoding/json"
	"fmt"
	"time"
)

// MaxFailureErrorLength bounds, in bytes, the handler error a Failure
// carries; longer texts are cut at a character boundary and end in "…".
const MaxFailureErrorLength = 512

// Failure is the value of P/<id>/failure/<participant>: a participant
// says that its Commit or Abort handler keeps failing for transaction id,
// so that an operator sees which participant holds a decided transaction
// up, since when and why, without its logs. The participant writes it at
// most every few seconds while the handler fails (not once per retry),
// guarded by ModRevision(record) == ModRevision(its inbox key) == the
// decision's revision (decided, not yet acknowledged) and by its
// registration; it deletes it in the Txn of its acknowledgement. Left
// behind by an instance that died, it goes with the record.
type Failure struct {
	Participant string    `json:"participant"`
	Op          Op        `json:"op"`       // commit or abort: the handler that fails
	Since       time.Time `json:"since"`    // first failure seen by this instance
	Attempts    int       `json:"attempts"` // handler calls that failed so far
	LastError   string    `json:"last_error"`
	Updated     time.Time `json:"updated"` // when this value was written
}

type failureEnvelope struct {
	V int `json:"v"`
	Failure
}

// EncodeFailure returns the stored form of f, its error text cut to
// MaxFailureErrorLength.
func EncodeFailure(f Failure) ([]byte, error) {
	if f.Op != OpCommit && f.Op != OpAbort {
		return nil, fmt.Errorf("%w: failure op %q, expected commit or abort", ErrMalformed, f.Op)
	}
	f.LastError = CutText(f.LastError, MaxFailureErrorLength)
	return json.Marshal(failureEnvelope{V: EncodingVersion, Failure: f})
}

// DecodeFailure parses a stored failure.
func DecodeFailure(b []byte) (Failure, error) {
	var e failureEnvelope
	if err := json.Unmarshal(b, &e); err != nil {
		return Failure{}, fmt.Errorf("%w: failure: %v", ErrMalformed, err)
	}
	if e.V != EncodingVersion {
		return Failure{}, fmt.Errorf("%w: failure version %d, expected %d", ErrUnsupportedVersion, e.V, EncodingVersion)
	}
	if e.Op != OpCommit && e.Op != OpAbort {
		return Failure{}, fmt.Errorf("%w: failure op %q, expected commit or abort", ErrMalformed, e.Op)
	}
	return e.Failure, nil
}

// CutText returns s if it has at most n bytes, or else its longest prefix
// that ends at a character boundary and, with "…" added, fits in n.
func CutText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const ellipsis = "…"
	return truncate(s, max(n-len(ellipsis), 0)) + ellipsis
}

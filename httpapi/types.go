package httpapi

import (
	"encoding/json"
	"time"

	"github.com/concord-tx/concord/coordinator"
	"github.com/concord-tx/concord/protocol"
)

// BeginRequest is the body of POST /v1/transactions.
type BeginRequest struct {
	// ID names the transaction; empty: the coordinator picks a UUID. With
	// an id, a repeated request with the same branches is harmless.
	ID       string          `json:"id,omitempty"`
	Branches []BranchRequest `json:"branches"`
	// Timeout is a Go duration ("5s"); empty: the coordinator's default.
	Timeout string `json:"timeout,omitempty"`
}

// BranchRequest is one participant's part of a BeginRequest. Payload is any
// JSON value; its bytes (compacted) are what the participant's Prepare
// handler receives.
type BranchRequest struct {
	Participant string          `json:"participant"`
	Payload     json.RawMessage `json:"payload,omitempty"`
}

// Outcome answers POST /v1/transactions (the decision, or "preparing" when
// not waiting) and POST /v1/transactions/{id}/abort (the record's state).
type Outcome struct {
	ID     string         `json:"id"`
	State  protocol.State `json:"state"`
	Cause  protocol.Cause `json:"cause,omitempty"`
	Reason string         `json:"reason,omitempty"`
}

// Transaction is a record as the API shows it. Branches are only filled in
// by GET /v1/transactions/{id}.
type Transaction struct {
	ID           string         `json:"id"`
	State        protocol.State `json:"state"`
	Participants []string       `json:"participants"`
	Created      time.Time      `json:"created"`
	Deadline     time.Time      `json:"deadline"`
	Decided      time.Time      `json:"decided,omitzero"`
	Finished     time.Time      `json:"finished,omitzero"`
	Cause        protocol.Cause `json:"cause,omitempty"`
	Reason       string         `json:"reason,omitempty"`
	Revision     int64          `json:"revision,omitempty"` // etcd ModRevision of the record
	TraceID      string         `json:"trace_id,omitempty"` // of the trace that began it (W3C, 32 hex digits)
	Branches     []Branch       `json:"branches,omitempty"`
	// Failures: participants whose Commit or Abort handler keeps failing
	// for this transaction, as they report it (GET of one transaction only).
	Failures []Failure `json:"failures,omitempty"`
}

// Failure is a participant's report that its Commit or Abort handler keeps
// failing: since when, how many attempts, the last error (cut in size).
type Failure struct {
	Participant string    `json:"participant"`
	Op          string    `json:"op"` // commit or abort
	Since       time.Time `json:"since"`
	Attempts    int       `json:"attempts"`
	LastError   string    `json:"last_error"`
}

// Votes as the API shows them.
const (
	VoteYes  = "yes"
	VoteNo   = "no"
	VoteNone = "none" // not voted (yet, or ever: the transaction was decided first)
)

// Branch is what one participant has done in a transaction.
type Branch struct {
	Participant string `json:"participant"`
	Vote        string `json:"vote"` // VoteYes, VoteNo or VoteNone
	VoteReason  string `json:"vote_reason,omitempty"`
	Acked       bool   `json:"acked"` // the participant applied the decision
}

// List answers GET /v1/transactions. Next, when not empty, is the value of
// ?after= that returns the following page. A page may hold fewer
// transactions than its limit, even none, and still have a Next: a
// listing of every state, or by a terminal one, reads about 4,096 keys a
// request (see coordinator.Page).
type List struct {
	Transactions []Transaction `json:"transactions"`
	Next         string        `json:"next,omitempty"`
}

// ErrorBody is the body of every error answer. ID is set when the error is
// about a transaction that exists or may exist (a 409; a 503 or 504 after
// a valid begin: it may have been begun), State when it could be read,
// Limit on a 429: the name of the limit reached, the API's own
// (LimitUndecided, LimitUndecidedPerCredential) or the coordinator's
// storage limits (coordinator.LimitUndecided, LimitPendingMessages,
// LimitPendingBytes).
type ErrorBody struct {
	Error string         `json:"error"`
	ID    string         `json:"id,omitempty"`
	State protocol.State `json:"state,omitzero"`
	Limit string         `json:"limit,omitempty"`
}

// Health answers GET /healthz.
type Health struct {
	Status   string `json:"status"` // "ok" or "unavailable"
	Leader   bool   `json:"leader"` // this replica leads recovery
	Revision int64  `json:"revision,omitempty"`
	Error    string `json:"error,omitempty"`
}

// AbortRequest is the optional body of POST /v1/transactions/{id}/abort.
type AbortRequest struct {
	Reason string `json:"reason,omitempty"`
}

func transactionOf(r protocol.Record) Transaction {
	return Transaction{
		ID:           r.ID,
		State:        r.State,
		Participants: r.Participants,
		Created:      r.Created,
		Deadline:     r.Deadline,
		Decided:      r.Decided,
		Finished:     r.Finished,
		Cause:        r.Cause,
		Reason:       r.Reason,
		TraceID:      r.Trace.TraceID(),
	}
}

func detailOf(tx coordinator.Transaction) Transaction {
	out := transactionOf(tx.Record)
	out.Revision = tx.Revision
	out.Branches = make([]Branch, len(tx.Branches))
	for i, b := range tx.Branches {
		br := Branch{Participant: b.Participant, Vote: VoteNone, Acked: b.Acked}
		if b.Vote != nil {
			if b.Vote.Yes {
				br.Vote = VoteYes
			} else {
				br.Vote, br.VoteReason = VoteNo, b.Vote.Reason
			}
		}
		out.Branches[i] = br
	}
	for _, f := range tx.Failures {
		out.Failures = append(out.Failures, Failure{Participant: f.Participant, Op: string(f.Op), Since: f.Since, Attempts: f.Attempts, LastError: f.LastError})
	}
	return out
}

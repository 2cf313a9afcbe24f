package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/concord-tx/concord/coordinator"
	"github.com/concord-tx/concord/protocol"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// maxPayloadShown bounds the payload text shown per branch.
const maxPayloadShown = 4 << 10

// txData is the page of one transaction.
type txData struct {
	Tx        coordinator.Transaction
	Undecided bool
	Branches  []branchView
	DecidedBy string
	Timeline  []moment
	TraceID   string
	TraceURL  string
	CanAbort  bool
}

// branchView is one branch as the page shows it.
type branchView struct {
	Participant string
	Vote        string // "yes", "no", or "" (not voted)
	VoteReason  string
	Applied     bool
	// Failure: the participant reports that its Commit or Abort handler
	// keeps failing (nil: no report).
	Failure     *coordinator.BranchFailure
	Payload     string // "" once the message is gone
	PayloadNote string // why no payload, or that it was cut
}

// moment is one entry of the timeline.
type moment struct {
	At   time.Time
	What string
}

// getTransaction reads transaction id, answering the error page itself
// when it cannot.
func (c *Console) getTransaction(ctx context.Context, w http.ResponseWriter, v visitor, id string) (coordinator.Transaction, bool) {
	tx, err := c.client.Get(ctx, id)
	switch {
	case errors.Is(err, coordinator.ErrInvalidRequest):
		c.fail(w, http.StatusBadRequest, v, "Not a transaction id", err.Error())
	case errors.Is(err, coordinator.ErrNotFound):
		c.fail(w, http.StatusNotFound, v, "No such transaction",
			fmt.Sprintf("No transaction %s: it was never begun, or it finished more than the retention window ago and was removed.", id))
	case err != nil:
		c.fail(w, http.StatusServiceUnavailable, v, "etcd did not answer", err.Error())
	default:
		return tx, true
	}
	return tx, false
}

func (c *Console) transaction(w http.ResponseWriter, r *http.Request, v visitor) {
	ctx, cancel := c.requestContext(r)
	defer cancel()
	tx, ok := c.getTransaction(ctx, w, v, r.PathValue("id"))
	if !ok {
		return
	}
	d := txData{Tx: tx, Undecided: !tx.State.Decided(), DecidedBy: decidedBy(tx), Timeline: timeline(tx.Record)}
	d.CanAbort = d.Undecided && v.who.Can(RoleAdmin)
	payloads := c.payloads(ctx, tx.Record)
	for _, b := range tx.Branches {
		bv := branchView{Participant: b.Participant, Applied: b.Acked}
		if b.Vote != nil {
			bv.Vote, bv.VoteReason = "no", b.Vote.Reason
			if b.Vote.Yes {
				bv.Vote = "yes"
			}
		}
		for i := range tx.Failures {
			if tx.Failures[i].Participant == b.Participant {
				bv.Failure = &tx.Failures[i]
			}
		}
		bv.Payload, bv.PayloadNote = payloads[b.Participant].text, payloads[b.Participant].note
		d.Branches = append(d.Branches, bv)
	}
	if d.TraceID = c.opts.traceID(tx); d.TraceID != "" && c.opts.traceURL != "" {
		d.TraceURL = strings.ReplaceAll(c.opts.traceURL, TraceIDPlaceholder, urlPathEscape(d.TraceID))
	}
	c.render(w, http.StatusOK, "transaction", v, d)
}

// payload is a branch's payload as text, or why it cannot be shown.
type payload struct{ text, note string }

// payloads reads each participant's message about rec: the payload is
// kept only there, until the participant has applied the decision.
func (c *Console) payloads(ctx context.Context, rec protocol.Record) map[string]payload {
	out := make(map[string]payload, len(rec.Participants))
	ops := make([]clientv3.Op, len(rec.Participants))
	for i, p := range rec.Participants {
		ops[i] = clientv3.OpGet(c.opts.keys.Inbox(p, rec.ID))
	}
	resp, err := c.cli.Txn(ctx).Then(ops...).Commit()
	if err != nil {
		c.log.Debug("console: read payloads", zap.String("txid", rec.ID), zap.Error(err))
		for _, p := range rec.Participants {
			out[p] = payload{note: "could not be read: " + err.Error()}
		}
		return out
	}
	for i, p := range rec.Participants {
		kvs := resp.Responses[i].GetResponseRange().Kvs
		if len(kvs) == 0 {
			out[p] = payload{note: "not kept: the participant has applied the outcome and its message is gone"}
			continue
		}
		m, err := protocol.DecodeMessage(kvs[0].Value)
		switch {
		case err != nil:
			out[p] = payload{note: "undecodable message: " + err.Error()}
		case len(m.Payload) == 0:
			out[p] = payload{note: "not in the " + string(m.Op) + " message (only prepare messages carry it)"}
		default:
			out[p] = showPayload(m.Payload)
		}
	}
	return out
}

// showPayload returns the payload as text, cut to maxPayloadShown; bytes
// that are not UTF-8 are shown as such.
func showPayload(b []byte) payload {
	var note string
	if len(b) > maxPayloadShown {
		note = fmt.Sprintf("first %d of %d bytes", maxPayloadShown, len(b))
		b = b[:maxPayloadShown]
	}
	if !utf8.Valid(b) {
		return payload{text: strings.ToValidUTF8(string(b), "\uFFFD"), note: strings.TrimPrefix(note+"; not UTF-8 (invalid bytes shown as \uFFFD)", "; ")}
	}
	return payload{text: string(b), note: note}
}

// decidedBy says who wrote the decision, from what the record and votes
// hold.
func decidedBy(tx coordinator.Transaction) string {
	if !tx.State.Decided() {
		return ""
	}
	var voted, notVoted, no []string
	for _, b := range tx.Branches {
		switch {
		case b.Vote == nil:
			notVoted = append(notVoted, b.Participant)
		case !b.Vote.Yes:
			no = append(no, b.Participant)
		default:
			voted = append(voted, b.Participant)
		}
	}
	switch {
	case tx.State.Committed():
		return "the last participant to vote yes, with its vote (all voted yes: " + strings.Join(voted, ", ") + ")"
	case tx.Cause == protocol.CauseVoteNo:
		return "participant " + strings.Join(no, ", ") + ", voting no"
	case tx.Cause == protocol.CauseDeadline:
		return "the leading coordinator replica: the deadline passed without every vote (not voted: " + strings.Join(notVoted, ", ") + ")"
	case tx.Cause == protocol.CauseParticipantLost:
		return "the leading coordinator replica: a participant that had not voted was not registered (not voted: " + strings.Join(notVoted, ", ") + ")"
	case tx.Cause == protocol.CauseOperator:
		return "an operator (abort on request)"
	}
	return "unknown (cause " + string(tx.Cause) + ")"
}

// timeline lists the record's state changes, and its deadline, in order.
func timeline(rec protocol.Record) []moment {
	ms := []moment{{rec.Created, "begun: preparing"}}
	if !rec.Decided.IsZero() {
		what := "decided: committing"
		if !rec.State.Committed() {
			what = "decided: aborting (" + string(rec.Cause) + ")"
		}
		ms = append(ms, moment{rec.Decided, what})
	}
	if !rec.Finished.IsZero() {
		ms = append(ms, moment{rec.Finished, "finished: " + rec.State.String() + " (every participant applied it)"})
	}
	ms = append(ms, moment{rec.Deadline, "deadline for votes"})
	slices.SortStableFunc(ms, func(a, b moment) int { return a.At.Compare(b.At) })
	return ms
}

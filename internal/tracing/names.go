package tracing

import (
	"time"

	"go.opentelemetry.io/otel/attribute"
)

// Span names: the party, then the operation. Each is one per operation and
// transaction, never per etcd request.
const (
	SpanBegin = "coordinator.Begin" // the initiator writes the transaction (a producer span)
	SpanWait  = "coordinator.Wait"  // the initiator waits for the decision
	SpanDo    = "coordinator.Do"    // Begin then Wait
	SpanAbort = "coordinator.Abort" // an operator's abort

	SpanPrepare     = "participant.Prepare" // the Prepare handler, then the vote (a consumer span)
	SpanVote        = "participant.vote"    // the vote's Txn, which may carry the decision
	SpanCommit      = "participant.Commit"  // the Commit handler, then the acknowledgement
	SpanAbortBranch = "participant.Abort"   // the Abort handler, then the acknowledgement
	SpanAck         = "participant.ack"     // the acknowledgement's Txn, which may finish the transaction

	// Recovery actions of the leading replica are named "replica." and
	// the action ("replica.abort_deadline"); see RecoverySpan.
	spanRecoveryPrefix = "replica."
)

// RecoverySpan is the span name of a replica's recovery action (the
// observer's action names: abort_deadline, abort_participant_lost,
// finish_abandoned, gc).
func RecoverySpan(action string) string { return spanRecoveryPrefix + action }

// Attribute keys. Concord's own are under "concord."; errors use the
// semantic conventions' exception event (span.RecordError).
const (
	AttrTxID         = attribute.Key("concord.tx.id")
	AttrParticipants = attribute.Key("concord.tx.participants")
	AttrRevision     = attribute.Key("concord.tx.revision") // R, the begin's etcd revision
	AttrState        = attribute.Key("concord.tx.state")    // the outcome, or the state found
	AttrCause        = attribute.Key("concord.tx.cause")    // why it aborted
	AttrReason       = attribute.Key("concord.tx.reason")
	AttrCreated      = attribute.Key("concord.tx.created") // false: a repeated begin found it

	AttrParticipant = attribute.Key("concord.participant")
	AttrVote        = attribute.Key("concord.vote") // "yes" or "no"
	AttrVoteReason  = attribute.Key("concord.vote.reason")
	// AttrInboxWait is how long the message waited between the Txn that
	// wrote it and the start of its handler, in milliseconds. It compares
	// the writer's clock (the record's created or decided time) with the
	// reader's, so it is as exact as the parties' clocks agree.
	AttrInboxWait = attribute.Key("concord.inbox.wait_ms")
	// AttrCatchUp: the message was found by listing the inbox (after a
	// restart, a new term or a compaction), not by the watch.
	AttrCatchUp = attribute.Key("concord.inbox.catch_up")
	// AttrWriteOutcome is what a vote's or acknowledgement's Txn did:
	// "voted", "voted and decided", "already voted", "already decided",
	// "acknowledged", "acknowledged and finished", "already acknowledged";
	// of a recovery action's: "done" or "compare failed".
	AttrWriteOutcome = attribute.Key("concord.write.outcome")

	// On the span whose Txn was the commit point: the decision, who took
	// it ("participant <name>", "replica" or "operator"), and why.
	AttrDecision  = attribute.Key("concord.decision")
	AttrDecidedBy = attribute.Key("concord.decision.by")
	AttrRecovery  = attribute.Key("concord.recovery.action")
	AttrGone      = attribute.Key("concord.recovery.gone") // participants whose acknowledgement finish_abandoned did without
)

// EventDecided is the event on the span whose Txn decided the transaction.
const EventDecided = "decided"

// InboxWait returns AttrInboxWait for a message written at written and
// handled from now.
func InboxWait(written, now time.Time) attribute.KeyValue {
	return AttrInboxWait.Float64(float64(now.Sub(written).Microseconds()) / 1000)
}

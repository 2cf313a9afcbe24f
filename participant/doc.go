// Package participant is the SDK a service embeds to take part in Concord
// transactions.
//
// A service gives New an etcd client, its participant name and a Handler
// (Prepare, Commit, Abort). The Participant registers the name with its own
// lease — one lease per instance, never one per transaction — and then
// handles the messages etcd holds for it: it watches only its own inbox,
// calls Prepare and writes the vote, calls Commit or Abort once the outcome
// is decided, and acknowledges. A second instance under the same name waits
// as a standby and takes over when the first one's lease expires.
//
// The SDK gives at-least-once calls; exactly-once effects are the
// handler's part of the contract (see Handler): record the transaction id
// and phase in the same local transaction as the business change.
//
// What happens when things fail:
//   - The process dies before voting: its lease expires and a coordinator
//     replica aborts the transaction. If Prepare had already reserved, the
//     abort is waiting in the inbox when the service returns.
//   - The process dies after voting yes: the transaction may commit without
//     it. On restart the instance lists its inbox, finds the decision and
//     calls Commit: the branch is prepared, so it must be able to.
//   - The watch breaks or falls behind a compaction: the instance lists its
//     inbox again and resumes watching from the revision it listed at; a
//     slow periodic re-list is a safety net behind the watch.
//   - The instance was paused past its lease and a standby took over: every
//     vote and acknowledgement is compared against the instance's own
//     registration, so the paused one can no longer act.
//
// Votes and acknowledgements of concurrent transactions share etcd Txns
// (group commit). A yes vote that completes the set of votes also writes the
// commit decision in the same Txn; an acknowledgement that is the last one
// also makes the transaction terminal. Acknowledgements wait briefly
// (WithAckDelay) to ride with a vote.
package participant

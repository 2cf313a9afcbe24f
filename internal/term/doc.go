// Package term keeps a process alive in etcd, one lease after another: it
// runs the work of a coordinator replica or a participant instance for as
// long as one lease lives (a term), and starts a new term when the lease is
// lost, until the caller stops it.
//
// Both a replica and a participant need the same supervision: grant a lease
// through internal/session, run their work with a context that ends when
// the lease is lost, revoke the lease on the way out so that a standby
// takes over at once rather than after the TTL, and start again after a
// backoff that grows while terms fail quickly one after another and resets
// once a term has lasted longer than the lease's TTL. Written once here, a
// fix to the loop reaches both.
//
// Rejected: letting the work keep its lease across a loss (renewing a lease
// etcd has already expired is impossible, and another instance may hold the
// name by then), and one lease per task (lease grants and revocations are
// raft writes, and revocation is rate-limited in etcd).
package term

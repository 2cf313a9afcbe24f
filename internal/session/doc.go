// Package session gives a coordinator replica and a participant the lease
// that says they are alive, as a concurrency.Session, renewed in a way that
// survives an etcd member that is cut off from its peers.
//
// The etcd client renews every lease of a client on one keep-alive stream,
// on whichever member that stream happened to open. When that member loses
// its peers it still answers on its client port, but a renewal sent to it
// waits for a leader it cannot reach: the stream stays open and silent, the
// client gives the lease up after its TTL, and etcd only ends the stream
// several election timeouts later. A process holding a healthy lease on
// the other two members loses it for no reason: a participant's undecided
// transactions abort as if it had crashed, a coordinator stops leading.
//
// Here the renewals go on a keep-alive stream of the session's own, one at
// a time, each with a deadline well inside the TTL, and the stream requires
// a leader. A renewal that is refused (a member that knows it has no
// leader) or not answered in time (one that does not know yet) costs the
// stream, and the next one is opened on the member the client's
// round-robin balancer picks next. The stream is kept while it answers:
// opening one costs an authentication when etcd has auth on. The lease is
// given up only when no renewal succeeded within the TTL the last one
// granted, counted from when it was sent, or when etcd says it is gone.
// Time in which members answer that they have no leader does not count:
// without a leader nothing expires a lease, and a new leader restarts every
// lease's countdown (etcd's lessor.Promote). (A process that can reach only a member cut off
// from the rest keeps believing in its lease until it reaches another;
// every action it takes is fenced, so that belief is harmless.)
package session

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
// Here the renewals go on keep-alive streams of the session's own that
// require a leader. Each renewal goes first on the stream that answered
// the last one; when it has no answer for a tenth of the TTL, it is sent
// again on a new stream, which the client's round-robin balancer opens on
// the next member, and so on, the earlier ones still waiting; the first
// answer wins and the other streams are closed. A member that refuses (it knows it has
// no leader) costs its stream at once. Streams are kept while they answer,
// because with auth on, opening one authenticates first (bcrypt and a raft
// write): the first opens before the lease is granted, so that its
// authentication does not eat into the TTL, and one opens at a time. The lease is
// given up only when no renewal succeeded within the TTL the last one
// granted, counted from when it was sent, or when etcd says it is gone.
// Time in which members answer that they have no leader does not count,
// up to one TTL more: without a leader nothing expires a lease, and a new
// leader restarts every lease's countdown (etcd's lessor.Promote). The
// limit is there because a member cut off from the rest answers so too.
package session

// Package watch opens etcd watches that leave a member that has fallen
// behind the cluster.
//
// A watch is served by one etcd member. When that member is cut off from
// its peers it stays up and keeps the watch open, but it applies nothing
// more, so the watch goes silent while the other members commit. Requiring
// a leader does not help soon enough: the member notices it has no leader
// only after an election timeout, and etcd ends such watches after three
// more. A participant whose inbox watch is silent votes on nothing, and
// every transaction that needs it waits.
//
// Open checks, twice a second, that the member serving the watch has
// reached a revision read from the cluster through a member that has a
// leader. The member tells its revision when the check's probe watch is
// created and in answer to progress requests; when it still reports an
// older one after a second, Open ends the watch (its channel closes) so
// that the caller opens it again from where it got to. Each watch has a
// watcher, and so a gRPC stream, of its own, so the new one is placed
// afresh by the client's round-robin balancer, and progress requests reach
// only that stream. A member that is merely slow is given the second; if it
// misses it, moving is cheap. (A watch that replays a long history holds
// back the member's progress answers, and may be moved too; it resumes
// where it got to.)
package watch

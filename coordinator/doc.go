// Package coordinator starts atomic transactions across services and drives
// them to an outcome, with etcd as the only stateful dependency.
//
// It has two parts. A Client is what an initiator uses: Begin a transaction
// with one branch per participant, Wait for (or Do, to begin and wait) its
// decision, and Get, List or Abort transactions. A Replica is the recovery
// loop a coordinator process runs: replicas elect a leader, which aborts
// transactions past their deadline or whose unvoted participant is gone,
// finishes aborts that wait only for participants that are gone, and
// deletes terminal records after the retention window.
//
// Neither part decides a commit. The commit decision is written by the last
// participant to vote yes, in the same etcd Txn as its vote (see package
// protocol), so the commit path costs two sequential etcd writes — begin,
// then the votes — and the initiator's answer does not wait for any
// coordinator process. This is why a Replica may be down for a while without
// stalling commits: it is needed only for the cases where a participant
// cannot answer.
//
// Every state change is one etcd Txn guarded by compares on what it
// assumes. Safety never depends on which replica leads: two replicas, or an
// operator and a replica, acting on one transaction at once still produce
// exactly one outcome. The leader additionally fences its actions with its
// election key, so a replica that was paused past its lease cannot act on
// what it believed before the pause.
//
// Begins from concurrent callers share one etcd Txn (group commit), each
// with its own compare, so under load a begin costs a fraction of an etcd
// request. A Client keeps one watch over the prefix for every call
// waiting on it; a Replica in the same process can follow that watch
// (WithClient) instead of opening its own, so that etcd sends each change
// to the process once.
//
// Begin is also where storage is bounded: it refuses work past limits on
// what participants have pending and on undecided transactions
// (WithStorageLimits, ErrLimit), counted from the Client's watch at no
// request per Begin, and work etcd has no space for (ErrNoSpace), so that
// a participant nobody runs, or a full etcd, meets a clear refusal rather
// than a growing store or a hang. Get shows a participant whose Commit or
// Abort handler keeps failing (Transaction.Failures), and the leading
// replica reports the oldest transaction not finishing
// (Observer.Unfinished).
//
// An etcd request that times out has an unknown outcome. Every request the
// package sends is harmless to repeat, and it repeats requests that failed
// transiently; callers that get an error from Begin may call it again with
// the same id (Begin returns it with the error, generated or not), which
// returns the transaction if the first call created it.
package coordinator

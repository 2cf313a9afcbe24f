// Package chaos is Concord's chaos suite, in the spirit of etcd's
// robustness tests and Jepsen's bank test: real processes, real faults, a
// recorded history, and checkers that fail loudly.
//
// # The system under test
//
// Every scenario starts its own system on loopback, in a run directory of
// its own (cluster.go, system.go):
//
//   - a 3-member etcd cluster, each member a process of an etcd binary built
//     from the etcd module this repository depends on (binaries.go builds
//     it, and cmd/coord and cmd/demo-participant, once per test binary);
//     the members reach each other through peer proxies (peers.go): each
//     advertises its proxy's address as its peer URL, and each proxy names
//     the member that dialed every connection it carries, so that the
//     traffic between one member and the others can be held, both ways or
//     one way;
//   - two `coord serve` replicas and three `demo-participant` banks, each
//     reaching every etcd member through a proxy of its own (proxy.go), so
//     one process's links can be cut, slowed or made to lose answers without
//     touching anybody else's;
//   - a traffic generator (traffic.go): concurrent clients sending random
//     transfers through the coordinators' HTTP API, a debit at one bank and
//     one or two credits at others, with amounts that sometimes exceed the
//     account and must abort. Every request and its answer — committed,
//     aborted, or unknown when the call failed — goes to the history
//     (history.go).
//
// The observer (observer.go) watches every Concord key in etcd with a
// direct client from the start: the states of each record with their
// revisions, the votes, the inboxes, the registrations. It lists again
// after a compaction. Fault injectors wait on its events to strike at
// chosen points.
//
// # Faults
//
// The nemesis (faults.go) goes through its faults in rounds, each once per
// round in an order drawn from a seeded random source, one at a time, each
// healed before the next; compaction and lost answers run through the
// whole fault phase. A fault tried three times and never injected fails the
// run's faults check. Kinds:
//
//   - kill-bank: kill -9 a bank at a random moment, restart it;
//   - kill-bank-voted: kill -9 a bank right after it voted yes on a
//     transaction still undecided (the observer sees the vote);
//   - kill-bank-commit: close the bank's commit gate (its --commit-gate
//     file), wait for a commit decision it takes part in, and kill -9 it
//     while its Commit handler waits at the gate, before the store changed;
//   - pause-bank: SIGSTOP a bank that just voted yes, for longer than its
//     lease, then SIGCONT: it must not act on its lost registration;
//   - kill-coord, pause-coord: kill -9 a coordinator replica mid-load, or
//     SIGSTOP it past its lease and SIGCONT;
//   - kill-etcd-leader, kill-etcd-follower: kill -9 a member, restart it;
//   - pause-etcd: SIGSTOP a member, the leader or a follower, and SIGCONT:
//     its ports stay open and nothing answers what it takes;
//   - partition-etcd-leader, partition-etcd-follower: cut one member off
//     from the other two, both ways, for 1-6s and at least until the cut
//     shows (etcdpartition.go): a write through the member fails, the
//     other two commit without it while it stays behind, and, if it led,
//     they elect another leader; then heal and wait until it has caught
//     up and takes writes again;
//   - partition-etcd-oneway: the same with one direction held, the
//     member's bytes to its peers or theirs to it, for the leader or a
//     follower;
//   - partition-bank, partition-coord: every link of one process to etcd
//     holds its bytes (silence, as behind a dropped route) for up to the
//     lease TTL plus 2s, then delivers them;
//   - slow-links: latency, jitter and connection resets on one process's
//     links;
//   - compaction: compact etcd's history every few hundred milliseconds
//     while participants and coordinators watch;
//   - lost-responses: on every link, 5% of the answers to mutating etcd
//     requests (Txn, Put, DeleteRange) are cut after etcd applied them: the
//     caller sees an error for a write that happened. The proxy follows
//     gRPC's HTTP/2 framing and decodes request headers to tell which
//     answer belongs to which method.
//
// # Checks
//
// After the faults stop, everything is healed, traffic goes on for a few
// seconds and stops, and the suite waits (with a bound) until etcd holds no
// undecided or unacknowledged transaction. It then reads every bank's
// accounts and records and every key in etcd, and checks (checks.go):
//
//   - money: the total is conserved, no balance is negative, nothing is
//     held once every transaction is terminal;
//   - atomicity: every bank applied the outcome decided in etcd (committed,
//     or aborted/refused); no commit without every participant's yes, written
//     no later than the decision; no outcome ever changed; no bank record
//     for a transaction it has no branch of;
//   - durability: every transfer a client was told committed is committed in
//     etcd and in every bank of it; none told aborted is applied anywhere;
//   - liveness: every transaction is terminal within a bound after the heal
//     (the slowest is reported), none is left undecided and no inbox key is
//     left;
//   - exactly-once: each account's balance is its opening balance plus the
//     moves of the committed transactions, so no phase took effect twice or
//     not at all; no vote was written twice; no bank logged a phase of a
//     transaction as taking effect (repeat: false) twice;
//   - justified: every abort had its cause — a no vote, a decision after
//     the deadline (by the record's times and by when the observer saw it,
//     every process sharing this host's clock) and before every
//     participant had voted, or a participant that had neither voted nor
//     was registered at the decision's revision (as the observer saw it); and
//     nobody acted on stale ownership: no participant's vote or
//     acknowledgement landed while it was not registered, and no replica's
//     abort (its log names the transaction, and its lease when it started
//     leading) was decided after its election key was deleted;
//   - processes: no process exited on its own, and no log shows a panic or
//     a data race (with -race, the commands are built with -race too);
//   - faults: every fault did what it says. A partition between etcd
//     members that leaked (the cut member learned a revision the others
//     committed after the cut, or took a write), showed no effect within
//     15s, or whose member did not rejoin within 20s of the heal counts
//     here. The table's "effects seen" column counts what the partitions
//     were seen to do: new-leader, fell-behind, write-failed, rejoined,
//     and no-leader-watch (a WithRequireLeader watch on the cut member
//     ended with "no leader"). So does a fault tried three times, each
//     attempt run to its end, and never injected.
//
// # Running
//
// `go test ./tests/chaos/...` runs every scenario briefly (8s of faults
// each). CHAOS_DURATION sets the length of each fault phase, CHAOS_SEED
// the seed (printed for every run, with the command that replays it),
// CHAOS_DIR where run directories go, CHAOS_KEEP=1 keeps them even when
// every check passes. A run prints its summary table (go test -v shows it;
// it is also written to summary.md in the run directory). A run that breaks
// an invariant fails and keeps its directory: history.jsonl, faults.log
// (the fault timeline), etcd-events.log (everything the observer saw),
// summary.txt with every violation, and each process's log.
//
// Timing is not reproducible, so a seed replays the same choices of faults
// and transfers, not the same interleaving.
//
// Besides the checks, each run reports the windows in which no coordinator
// replica was in the election (nobody could take over a dead leader's
// work), from the observer's view of the election keys.
//
// findings_test.go holds a targeted reproduction of each problem the chaos
// runs found (README.md lists them and their status); they run with
// CHAOS_FINDINGS=1.
package chaos

// Package batch is group commit for guarded etcd writes. Callers submit
// operations, each a nested Txn with its own compares; a Writer packs those
// waiting into one etcd Txn (If guard Then op1 op2 ...), so that under load
// many transactions' begins, votes or acknowledgements cost one request and
// one raft entry. Each operation still succeeds or fails on its own
// compares, exactly as if sent alone, so batching changes nothing about
// safety, and re-sending a batch after an unknown outcome is as harmless as
// re-sending each operation.
//
// Batching is natural: an urgent operation is sent at once, by the
// goroutine that submits it, if fewer than MaxInFlight batches are
// outstanding, and otherwise waits for one to come back, taking along
// everything queued meanwhile; once ExtraBatchAt operations wait, one more
// batch goes without waiting, so a heavy load is not held to MaxInFlight
// rounds at a time. Lazy operations (such as
// acknowledgements, which nobody waits for) wait up to LazyDelay for an
// urgent one to ride with.
package batch

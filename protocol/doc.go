// Package protocol is the contract between Concord's coordinator and its
// participants: the etcd key layout, the transaction states and the
// transitions allowed between them, the encoding of every value written, and
// the input limits. It makes no etcd calls and starts no goroutines.
//
// This page is a summary. The whole contract, precise enough to write a
// participant or an initiator in another language from it alone (every Txn
// with its compares and else-branches, the JSON of every value with
// examples, encodings, limits, versioning, and the resilience rules marked
// required or advised), is PROTOCOL.md at the root of the repository;
// `coord conformance` checks an implementation against it.
//
// # Keys
//
// Every key lives under a prefix P (default "/tx"). Transaction ids and
// participant names never contain "/" or "~", so no id is a prefix of
// another's keys and the reserved namespaces under "P/~" never collide with a
// transaction.
//
//	P/<id>                          record (JSON, see Record)
//	P/<id>/vote/<participant>       "yes" or "no:<reason>", written once
//	P/<id>/failure/<participant>    a Commit or Abort handler that keeps failing (JSON, see Failure)
//	P/~inbox/<participant>/<id>     message to one participant (JSON, see Message)
//	P/~participants/<participant>   instance id, attached to the instance's lease
//	P/~coordinators/leader/         election among coordinator replicas
//
// Records, votes and failures are exactly the range [P/, P/~); a participant watches
// only the range P/~inbox/<participant>/.
//
// # Life of a transaction
//
// Begin is one etcd Txn at revision R: it creates the record in state
// preparing and one inbox key per participant holding a prepare message
// (op "prepare", the record, the branch payload). It compares
// CreateRevision(record) == 0, so a repeated begin with the same id creates
// nothing. R is the revision of that Txn, so a participant learns R as the
// ModRevision of the inbox key holding its prepare message (only a decision
// rewrites that key). Not its CreateRevision: a key left over from an
// earlier transaction with the same id would keep that one.
//
// A participant calls its Prepare handler and votes with one Txn:
//
//	If   ModRevision(record) == R                 // still undecided, same record
//	     CreateRevision(vote) == 0                 // votes are write-once
//	     LeaseValue(P/~participants/<me>) == lease // fencing, see below
//	Then Txn If   Value(vote of every other participant) == "yes"
//	         Then put vote "yes"; put record (committing); put every inbox (commit)
//	         Else put vote "yes"
//	Else read record, vote, registration
//
// A "no" vote puts the vote, the record (aborting, cause "vote_no") and
// every inbox (abort) in the same guarded Txn. The decision — the record
// leaving preparing — is the commit point: whoever wins the compare on
// ModRevision(record) == R decides, and every later vote or decision fails
// its compare. A coordinator decides only aborts: at the deadline, when a
// participant that has not voted is not registered (compare
// CreateRevision(registration) == 0 and CreateRevision(vote) == 0), or on an
// operator's request.
//
// The decision reaches each participant by a rewrite of its inbox key in the
// decision Txn (op "commit" or "abort", with the decided record and R, which
// every decider knows: it compares the record's ModRevision to R). Having
// applied it, the participant acknowledges by deleting its inbox key, in one
// Txn comparing ModRevision(inbox) to the decision's revision and fenced by
// its lease; nested in the same Txn, if every other inbox key of the
// transaction is gone (CreateRevision == 0), it also writes the terminal
// record (committed or aborted). So the last acknowledgement finalises the
// transaction and no separate write is needed. Terminal records are deleted,
// with their votes and any inbox key left (below), after a retention window
// on the leading coordinator replica's clock.
//
// A participant's pending work is exactly its inbox.
//
// A decided transaction waits for every participant's acknowledgement. When
// a participant's Commit or Abort handler keeps failing, the participant
// says so in P/<id>/failure/<participant> (see Failure: which handler,
// since when, how many attempts, the last error cut to
// MaxFailureErrorLength), written at most every few seconds while it
// fails, guarded by ModRevision(record) == the decision's revision and by
// its registration. Its acknowledgement deletes the key in the same Txn;
// one left by an instance that died goes with the record. Readers use it
// only to show why a transaction is not finishing: it changes no state.
//
// One exception to "the last acknowledgement finalises": a transaction that
// aborted and waits only for participants that never voted and are not
// registered (a participant that is gone, or a name nobody runs) is made
// aborted by the leading coordinator replica after one lease TTL, compared
// on those participants having still neither voted nor registered. Their
// inbox keys stay until the record is deleted: a participant that called
// Prepare and died before voting finds the abort there if it returns within
// the retention window. One away longer must not keep prepared state past a
// transaction's deadline, which it never voted in.
//
// # Participants and fencing
//
// A participant instance holds one lease and registers by creating
// P/~participants/<name> with it (compare CreateRevision == 0). A second
// instance under the same name waits until that key is deleted and then
// registers itself. Every vote and acknowledgement compares
// LeaseValue(registration) to the instance's own lease, so an instance that
// was paused past its lease cannot act after another has taken over.
//
// An etcd member cut off from its peers still accepts requests, renewals
// and watches on its client port and answers none of them. A participant
// written in another language should do what the Go SDK does: when a
// lease renewal has no answer within a fraction of the TTL, send it again
// on a new keep-alive stream (which the client opens on another member),
// keeping the late one; send every request with the require-leader
// metadata (hasleader=true) and a deadline; and re-open its inbox watch
// through another member when the member serving it stays behind a
// revision read from the cluster (a progress request tells the member's
// revision).
//
// # Trace context
//
// The record may carry the W3C trace context (https://www.w3.org/TR/trace-context/)
// of the span that began the transaction, as the values of the traceparent
// and tracestate headers:
//
//	"trace": {"traceparent": "00-<trace id>-<span id>-<flags>", "tracestate": "<vendor entries>"}
//
// Every inbox message repeats the record, so a participant finds it at
// record.trace of the message it handles, prepare, commit or abort alike
// (a participant that missed the prepare still finds it in the decision),
// and a coordinator replica finds it in the record it recovers. Each
// continues the trace by making the span of its own work (a Prepare and its
// vote, a Commit or Abort and its acknowledgement, a recovery action) a
// child of that span context, so the initiator's trace holds the work of
// every party although no party ever calls another.
//
// It adds no etcd write and no watch: it rides in values the begin Txn
// writes anyway (about 100 bytes in the record and in each prepare
// message), and the decision copies it. It is not part of the record's
// digest, so a retried begin from another trace is the same request (the
// first begin's context stays). A tracestate over 512 characters is not
// stored. The field is advisory: it is absent when the initiator was not
// traced or the record predates it, and a reader ignores one that is not
// well formed (of the wrong JSON shape, or a traceparent the W3C parsing
// rules refuse) and starts a new trace; it never refuses the record or
// fails the transaction for it.
//
// # Outcome unknown
//
// Any etcd request may time out after it was applied. Every Txn above is
// harmless to run twice (its compares fail the second time), and a caller
// that did not see the answer re-reads before it acts again.
package protocol

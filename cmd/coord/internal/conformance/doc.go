// Package conformance checks a participant implementation, in any
// language, against the protocol (PROTOCOL.md §11): it starts an embedded
// etcd, runs the implementation as a command line in its own process group
// (which it stops, kills and restarts), acts as initiator with the real
// coordinator.Client, as a second participant with the Go SDK (the peer,
// whose votes it times), and as coordinator replica where a case needs one,
// and checks etcd's keys after each case.
//
// The cases observe only what the protocol makes visible in etcd: the
// record's states and their revisions (the record's version before the
// terminal one names the Txn that decided), the vote keys, the inbox keys and the registration. That
// is all a conforming participant promises; what it does inside its
// handlers is its own business.
//
// Rejected: a mock etcd or a recorded transcript of requests. The protocol
// allows several correct request sequences (batched Txns, hedged copies,
// nested guards), and only a real etcd judges them the way production
// will.
package conformance

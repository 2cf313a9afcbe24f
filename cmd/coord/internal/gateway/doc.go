// Package gateway lets a service in any language take part in Concord
// transactions with three HTTP endpoints and no etcd client. A Gateway is
// a participant (the Go SDK) whose Handler calls the service:
//
//	POST <prepare URL>, <commit URL>, <abort URL>
//	{"id", "revision", "participant", "phase", "participants", "deadline",
//	 "payload" | "payload_base64", "reason"}
//
// with an Idempotency-Key header (id:revision:phase) and, given a secret,
// an HMAC-SHA256 signature of the timestamp and the body. PROTOCOL.md §12
// is the service's side of the contract.
//
// Answers map to the participant handler contract: a 2xx to Prepare is a
// yes vote, and a 409 or 422 (with a reason) a no vote; anything else — a
// 5xx, a 4xx of another kind, a timeout, no connection — is not an answer
// the service gave, so Prepare is asked again until the deadline (after
// which the SDK does not vote and the coordinator aborts), never turned
// into a no vote. Commit and Abort are asked again until they succeed.
//
// The gateway's registration follows the service's health: it registers
// only while the health URL answers, and after a number of failed polls in
// a row it closes its participant, which revokes the lease. So "leases
// detect crashed participants" holds for the service behind it: a standby
// gateway (any number may run for one name; the SDK makes them standbys)
// takes over, and transactions the service had not voted in abort.
//
// Rejected: a gateway that keeps its registration while the service is
// down and answers Prepare with a no vote. A no vote the service did not
// give would abort transactions a healthy standby could have served, and
// a gateway that stays registered hides the crash the lease exists to
// reveal.
package gateway

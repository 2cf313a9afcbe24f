// Command coord is the Concord coordinator service.
//
//	coord serve                  run a coordinator replica and its HTTP API
//	coord tx list|show|abort     inspect and abort transactions of a running one
//	coord version                print the version
//
// `coord serve` runs one replica (coordinator.NewReplica) and the Go client
// (coordinator.NewClient) behind a JSON HTTP API. Without --etcd it starts
// an embedded, persistent single-node etcd in --data-dir, which
// participants and etcdctl reach at --embedded-client-url; with --etcd it
// joins the replicas already running against that cluster, any number of
// them, one of which leads recovery.
//
// HTTP API (states are lower case; errors are {"error": "..."}):
//
//	POST /v1/transactions              begin; waits for the decision (200) unless ?wait=false (202)
//	GET  /v1/transactions?state=&limit=&after=   list, paged: "next" feeds ?after= (state=unfinished: every state not terminal)
//	GET  /v1/transactions/{id}         one transaction with each branch's vote and ack
//	POST /v1/transactions/{id}/abort   abort if undecided; 409 if committed
//	GET  /healthz                      200 while etcd answers
//	GET  /metrics                      Prometheus
//
// Every flag can also be set from the environment: --lease-ttl from
// CONCORD_LEASE_TTL, and so on (bench's from CONCORD_BENCH_*); the etcd
// password only from CONCORD_ETCD_PASSWORD. `coord <command> --help`
// describes every flag.
package main

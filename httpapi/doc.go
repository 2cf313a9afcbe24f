// Package httpapi is the HTTP contract of `coord serve`: the JSON types of
// its routes, the server handler over a *coordinator.Client, and a Go
// client for it.
//
// Why one package: the wire format used to be written four times (the
// server, the demo's transfer tool, a fake server for the demo's tests and
// the chaos suite's traffic), and a copy could drift from the server while
// its own tests stayed green. Now every caller imports these types and this
// client, and tests run this handler over a real coordinator, so the
// contract has one place to change and one place to test.
//
// Why a separate client from coordinator.Client: a service that cannot (or
// must not) reach etcd still begins and inspects transactions, through a
// coordinator replica, with the same result types.
//
// The server side is a thin layer over coordinator.Client: it validates
// and decodes requests, maps the coordinator's errors to status codes, and
// never keeps transaction state of its own. In front of every route but
// /healthz sits one Gate (cross-site check, then bearer-token
// authentication, then the route's role), which other handlers of the same
// server (a console) reuse through Handler.Gate, so that the edge is
// written once. What it bounds per replica (undecided transactions begun
// through it, overall and per credential) is counted in memory: it limits
// what one replica lets callers make etcd hold, and each replica has its
// own count.
package httpapi

// Package flowcontrol holds the gRPC options Concord's binaries, benchmark
// and tests use on both ends of every etcd connection: fixed HTTP/2
// flow-control windows instead of gRPC's default, windows sized by
// bandwidth-delay-product (BDP) estimation; and message buffers in finer
// sizes than gRPC's default (see bufferPool).
//
// Why: the estimator answers every data frame that arrives on a quiet
// connection with a window update and a ping, and the peer answers the ping.
// Concord's traffic is many small messages spaced apart (a begin, a vote,
// a watch event per transaction and watcher), so almost every message costs
// a second write and a second read on each side: twice the packets for an
// etcd server to take in. Measured with one transaction at a time on the
// embedded etcd, fixing both sides cut the process's read and write system
// calls per transaction from 87 to 40, the clients' side alone to 57 (all
// an etcd run as its own process allows: its flags cannot set this);
// on this loopback that buys little latency (BENCHMARKS.md, "Flow-control
// windows").
//
// What it costs: a window no longer grows past its fixed size, so one
// stream can have at most StreamWindow bytes in flight. At 4 MiB per round
// trip that is 4 GiB/s on a 1ms network and 80 MiB/s on a 50ms one, far
// above what an etcd stream carries. Both ends need both windows: gRPC turns
// the estimator off for a connection as soon as either window is fixed, and
// a window left unset falls back to 64 KiB.
package flowcontrol

// Package flowcontrol holds the gRPC options Concord's binaries, benchmark
// and tests use on both ends of every etcd connection: fixed HTTP/2
// flow-control windows instead of gRPC's default, windows sized by
// bandwidth-delay-product (BDP) estimation.
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

import "google.golang.org/grpc"

const (
	// StreamWindow is each stream's receive window.
	StreamWindow = 4 << 20
	// ConnWindow is each connection's receive window, over all its streams.
	ConnWindow = 16 << 20
)

// DialOptions returns the client's side: pass them in
// clientv3.Config.DialOptions.
func DialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithStaticStreamWindowSize(StreamWindow),
		grpc.WithStaticConnWindowSize(ConnWindow),
	}
}

// ServerOptions returns the server's side: pass them in an embedded etcd's
// embed.Config.GRPCAdditionalServerOptions.
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.StaticStreamWindowSize(StreamWindow),
		grpc.StaticConnWindowSize(ConnWindow),
	}
}

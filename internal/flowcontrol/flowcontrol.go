package flowcontrol

import (
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/mem"
)

const (
	// StreamWindow is each stream's receive window.
	StreamWindow = 4 << 20
	// ConnWindow is each connection's receive window, over all its streams.
	ConnWindow = 16 << 20
)

// bufferPool returns the pool gRPC takes its message buffers from: its
// default tiers (256 B, 4, 16 and 32 KiB, 1 MiB) and every power of two
// between 32 KiB and 1 MiB. With the default tiers a batched Txn of 40 KiB
// takes a 1 MiB buffer, which the pool clears whole on every reuse, and
// which a small process's frequent GCs make it allocate anew. Profiled at
// 64 transactions in flight, clearing memory fell from 7.9% to 5.6% of a
// participant process's CPU, and the deployed benchmark's CPU per
// transaction by 1–4% (BENCHMARKS.md).
func bufferPool() mem.BufferPool {
	pool, err := mem.NewBinaryTieredBufferPool(8, 12, 14, 15, 16, 17, 18, 19, 20)
	if err != nil {
		panic(fmt.Sprintf("flowcontrol: buffer pool: %v", err)) // the exponents above are valid
	}
	return pool
}

// DialOptions returns the client's side: pass them in
// clientv3.Config.DialOptions.
func DialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithStaticStreamWindowSize(StreamWindow),
		grpc.WithStaticConnWindowSize(ConnWindow),
		experimental.WithBufferPool(bufferPool()),
	}
}

// ServerOptions returns the server's side: pass them in an embedded etcd's
// embed.Config.GRPCAdditionalServerOptions.
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.StaticStreamWindowSize(StreamWindow),
		grpc.StaticConnWindowSize(ConnWindow),
		experimental.BufferPool(bufferPool()),
	}
}

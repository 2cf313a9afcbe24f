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

package etcdtest

import (
	"net"
	"testing"

	"google.golang.org/grpc"
)

// SilentMember starts a gRPC server that takes every call and never
// answers, and returns its address, to list among a client's endpoints
// beside a real member. It stands for an etcd member whose process is
// frozen, or one that holds a write because its leader died after it took
// it (it answers when etcd's own request timeout, 7s by default, passes).
// It stops at cleanup.
func SilentMember(t testing.TB) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("etcdtest: %v", err)
	}
	srv := grpc.NewServer(grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
		<-stream.Context().Done()
		return stream.Context().Err()
	}))
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

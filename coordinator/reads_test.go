package coordinator

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/concord-tx/concord/internal/testkit/etcdtest"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// readRangeFixture writes n keys under a range of their own and returns
// the range and the keys in order.
func readRangeFixture(t *testing.T, cli *clientv3.Client, n int) (start, end string, want []string) {
	t.Helper()
	start, end = "/range/", "/range0"
	var ops []clientv3.Op
	for i := range n {
		k := fmt.Sprintf("/range/%06d", i)
		want = append(want, k)
		if ops = append(ops, clientv3.OpPut(k, "v")); len(ops) == 100 || i == n-1 {
			if _, err := cli.Txn(context.Background()).Then(ops...).Commit(); err != nil {
				t.Fatal(err)
			}
			ops = nil
		}
	}
	return start, end, want
}

func sameKeys(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d keys, want %d", what, len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: key %d is %s, want %s (each once, in order)", what, i, got[i], want[i])
		}
	}
}

// TestReadRange: a streamed read hands over every key once, in order. A
// compaction past the stream's revision restarts a read at recent
// revisions after the last key handed over, and ends a read at a fixed
// revision with ErrCompacted. Against an etcd that cannot stream a range,
// the same keys come in pages.
func TestReadRange(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	o, err := newClientOptions(nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	start, end, want := readRangeFixture(t, cli, 20_000)
	// read collects what readRange hands over, calling during after the
	// third chunk.
	read := func(c *clientv3.Client, rev int64, during func()) ([]string, int, error) {
		var got []string
		chunks := 0
		err := readRange(ctx, c, o, start, end, rev, nil, func(kvs []*mvccpb.KeyValue) (bool, error) {
			chunks++
			for _, kv := range kvs {
				got = append(got, string(kv.Key))
			}
			if chunks == 3 && during != nil {
				during()
			}
			return false, nil
		})
		return got, chunks, err
	}

	got, chunks, err := read(cli, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	sameKeys(t, "streamed", got, want)
	t.Logf("20,000 keys in %d chunks", chunks)

	// A client whose streams take 64 KiB in flight, not 4 MiB: etcd reads
	// the range as the test takes it, so a compaction after the third
	// chunk comes before the rest is read.
	opened := 0
	slow := srv.Client(t, grpc.WithStaticStreamWindowSize(64<<10), grpc.WithStaticConnWindowSize(64<<10),
		grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			if method == "/etcdserverpb.KV/RangeStream" {
				opened++
			}
			return streamer(ctx, desc, cc, method, opts...)
		}))
	compact := func() {
		if _, err := cli.Put(ctx, "/elsewhere", "moves the revision on"); err != nil {
			t.Fatal(err)
		}
		if _, err := srv.Compact(ctx, cli); err != nil {
			t.Fatal(err)
		}
	}
	got, _, err = read(slow, 0, compact)
	if err != nil {
		t.Fatalf("at recent revisions, with a compaction during the read: %v", err)
	}
	sameKeys(t, "at recent revisions, with a compaction during the read", got, want)
	if opened < 2 {
		t.Errorf("at recent revisions, with a compaction during the read: %d streams, want the read restarted", opened)
	}

	rev, err := currentRevision(ctx, cli, o)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := read(slow, rev, compact); !errors.Is(err, rpctypes.ErrCompacted) {
		t.Fatalf("at a fixed revision, with a compaction during the read: %v, want ErrCompacted", err)
	}

	// An etcd before 3.7 answers the stream's first receive with
	// Unimplemented; a proxy may refuse to open it.
	for _, at := range []string{"receive", "open"} {
		refused := 0
		old := srv.Client(t, grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			if method != "/etcdserverpb.KV/RangeStream" {
				return streamer(ctx, desc, cc, method, opts...)
			}
			refused++
			if at == "open" {
				return nil, status.Error(codes.Unimplemented, "unknown method RangeStream")
			}
			cs, err := streamer(ctx, desc, cc, method, opts...)
			return unimplementedStream{cs}, err
		}))
		got, chunks, err := read(old, 0, nil)
		if err != nil {
			t.Fatalf("from an etcd that cannot stream (refused at %s): %v", at, err)
		}
		sameKeys(t, "from an etcd that cannot stream (refused at "+at+")", got, want)
		if pages := (len(want) + scanChunk - 1) / scanChunk; refused != 1 || chunks != pages {
			t.Errorf("from an etcd that cannot stream (refused at %s): %d streams refused, %d pages; want 1, %d", at, refused, chunks, pages)
		}
	}
}

// unimplementedStream answers its first receive as an etcd without
// RangeStream does.
type unimplementedStream struct{ grpc.ClientStream }

func (unimplementedStream) RecvMsg(any) error {
	return status.Error(codes.Unimplemented, "unknown method RangeStream for service etcdserverpb.KV")
}

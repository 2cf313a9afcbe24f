package batch

import (
	"context"
	"errors"
	"testing"

	"github.com/concord-tx/concord/internal/testkit/etcdtest"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/namespace"
	"google.golang.org/protobuf/proto"
)

// The compares built here are the ones clientv3 builds, field for field.
func TestComparesMatchClientv3(t *testing.T) {
	for _, c := range []struct {
		name string
		ours *pb.Compare
		want clientv3.Cmp
	}{
		{"mod revision", ModRevisionIs("k", 7), clientv3.Compare(clientv3.ModRevision("k"), "=", 7)},
		{"absent", CreateRevisionIs("k", 0), clientv3.Compare(clientv3.CreateRevision("k"), "=", 0)},
		{"value", ValueIs("k", "yes"), clientv3.Compare(clientv3.Value("k"), "=", "yes")},
		{"lease", LeaseIs("k", 42), clientv3.Compare(clientv3.LeaseValue("k"), "=", clientv3.LeaseID(42))},
	} {
		if want := c.want.GetCompare(); !proto.Equal(c.ours, want) {
			t.Errorf("%s: %v, clientv3 builds %v", c.name, c.ours, want)
		}
	}
}

// A put holds its value without a copy. Each piece costs two allocations,
// its messages and its key's bytes, where building the messages one by one
// (and copying a put's value) cost three to five.
func TestPiecesAllocations(t *testing.T) {
	value := []byte(`{"v":1,"op":"commit"}`)
	op := Put("/tx/~inbox/a/1", value)
	if want := (&pb.PutRequest{Key: []byte("/tx/~inbox/a/1"), Value: value}); !proto.Equal(op.GetRequestPut(), want) {
		t.Errorf("put %v, want %v", op, want)
	}
	if got := op.GetRequestPut().Value; &got[0] != &value[0] {
		t.Error("the put holds a copy of its value")
	}
	for name, build := range map[string]func(){
		"put":    func() { _ = Put("/tx/~inbox/a/1", value) },
		"delete": func() { _ = Delete("/tx/~inbox/a/1") },
		"mod":    func() { _ = ModRevisionIs("/tx/1", 7) },
		"create": func() { _ = CreateRevisionIs("/tx/1", 0) },
	} {
		if n := testing.AllocsPerRun(100, build); n != 2 {
			t.Errorf("%s: %v allocations, want 2", name, n)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = Txn(nil, nil, nil) }); n != 1 {
		t.Errorf("txn: %v allocations, want 1", n)
	}
}

// A client whose KV is not clientv3's own (here a namespace) gets its
// writes through that KV: keys, compares, nested Txns, deletes and the
// guard all go through its rewriting.
func TestWritesThroughAClientsOwnKV(t *testing.T) {
	srv := etcdtest.Start(t)
	plain := srv.Client(t)
	ns := srv.Client(t)
	ns.KV = namespace.NewKV(ns.KV, "/ns/")
	ctx := context.Background()
	if _, err := ns.Put(ctx, "fence", "mine"); err != nil {
		t.Fatal(err)
	}
	w := New(ns, Config{Retry: policy, Guard: []*pb.Compare{ValueIs("fence", "mine")}})
	defer w.Close()
	if w.kv != nil {
		t.Fatal("a namespaced client's writes would bypass its namespace")
	}
	resp, _, err := w.Do(ctx, Op{
		Cmps: []*pb.Compare{CreateRevisionIs("a", 0), ModRevisionIs("b", 0)},
		Then: []*pb.RequestOp{Put("a", []byte("1")), Txn([]*pb.Compare{ValueIs("fence", "mine")}, []*pb.RequestOp{Put("c", []byte("3")), Delete("fence-old")}, nil)},
		Else: []*pb.RequestOp{Get("a")},
	})
	if err != nil || !resp.Succeeded || !resp.Responses[1].GetResponseTxn().Succeeded {
		t.Fatalf("write through the namespace: %v %v", resp, err)
	}
	for key, want := range map[string]int64{"/ns/a": 1, "/ns/c": 1, "a": 0, "c": 0} {
		got, err := plain.Get(ctx, key, clientv3.WithCountOnly())
		if err != nil || got.Count != want {
			t.Errorf("%s: %d keys, want %d (%v)", key, got.Count, want, err)
		}
	}
	resp, _, err = w.Do(ctx, Op{Cmps: []*pb.Compare{CreateRevisionIs("a", 0)}, Then: []*pb.RequestOp{Put("a", []byte("2"))}, Else: []*pb.RequestOp{Get("a")}})
	if err != nil || resp.Succeeded || string(resp.Responses[0].GetResponseRange().Kvs[0].Value) != "1" {
		t.Fatalf("the repeat should fail its compare and read a=1: %v %v", resp, err)
	}
	if _, err := ns.Put(ctx, "fence", "theirs"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := w.Do(ctx, Op{Then: []*pb.RequestOp{Put("d", []byte("4"))}}); !errors.Is(err, ErrGuardFailed) {
		t.Fatalf("guard through the namespace: %v, want ErrGuardFailed", err)
	}
	direct := New(plain, Config{})
	defer direct.Close()
	if direct.kv == nil {
		t.Error("a plain client's writes go through clientv3's builders")
	}
}

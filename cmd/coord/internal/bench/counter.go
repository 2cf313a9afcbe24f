package bench

import (
	"context"
	"maps"
	"path"
	"sync"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// Counter counts etcd requests by kind through a gRPC client interceptor.
// Counts are exact whatever the machine's load, which is why the benchmark
// reports them beside the clocks.
type Counter struct {
	mu     sync.Mutex
	counts map[string]int64
	bytes  int64 // of the requests that write, as encoded on the wire
	// In the Txns that write, at every level of nesting and in both
	// branches: compares, and operations (puts, deletes, reads).
	compares, ops int64
}

// NewCounter returns an empty counter.
func NewCounter() *Counter { return &Counter{counts: make(map[string]int64)} }

// Interceptor is the grpc.UnaryClientInterceptor that counts. A Txn is
// counted as "Txn" when it may write (a put or delete in any branch) and as
// "Txn(read)" otherwise.
func (c *Counter) Interceptor() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		kind := path.Base(method)
		if t, ok := req.(*pb.TxnRequest); ok && !writes(t) {
			kind = "Txn(read)"
		}
		var size, compares, ops int64
		if m, ok := req.(proto.Message); ok && writeKinds[kind] {
			size = int64(proto.Size(m))
		}
		if t, ok := req.(*pb.TxnRequest); ok && kind == "Txn" {
			compares, ops = txnShape(t)
		}
		c.mu.Lock()
		c.counts[kind]++
		c.bytes += size
		c.compares += compares
		c.ops += ops
		c.mu.Unlock()
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}

// Snapshot returns the counts so far.
func (c *Counter) Snapshot() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.counts)
}

// Bytes returns the bytes of the write requests counted so far, as
// encoded: what etcd's raft log, WAL and apply carry.
func (c *Counter) Bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes
}

// Shape returns the compares and operations of the Txns that wrote, so
// far, counted at every level of nesting and in both branches: what etcd
// checks and carries for them, whichever branch applies.
func (c *Counter) Shape() (compares, ops int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.compares, c.ops
}

func txnShape(t *pb.TxnRequest) (compares, ops int64) {
	compares = int64(len(t.Compare))
	for _, branch := range [][]*pb.RequestOp{t.Success, t.Failure} {
		for _, op := range branch {
			if r, ok := op.Request.(*pb.RequestOp_RequestTxn); ok {
				c, o := txnShape(r.RequestTxn)
				compares, ops = compares+c, ops+o
				continue
			}
			ops++
		}
	}
	return compares, ops
}

// writeKinds are the requests that write to etcd's raft log.
var writeKinds = map[string]bool{"Txn": true, "Put": true, "DeleteRange": true, "LeaseGrant": true, "LeaseRevoke": true, "Compact": true}

// Writes is how many of the counted requests write to etcd's raft log.
func Writes(counts map[string]int64) int64 {
	var n int64
	for k := range writeKinds {
		n += counts[k]
	}
	return n
}

// Diff returns after minus before.
func Diff(after, before map[string]int64) map[string]int64 {
	out := make(map[string]int64)
	for k, v := range after {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

func writes(t *pb.TxnRequest) bool {
	for _, ops := range [][]*pb.RequestOp{t.Success, t.Failure} {
		for _, op := range ops {
			switch r := op.Request.(type) {
			case *pb.RequestOp_RequestPut, *pb.RequestOp_RequestDeleteRange:
				return true
			case *pb.RequestOp_RequestTxn:
				if writes(r.RequestTxn) {
					return true
				}
			}
		}
	}
	return false
}

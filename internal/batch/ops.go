package batch

import (
	"github.com/concord-tx/concord/protocol"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// The pieces of an Op are etcd's own request messages, built here rather
// than with clientv3's Compare, OpTxn and Txn: those copy every compare
// with proto.Clone at each step (three to four copies of a nested one),
// which cost a participant process about a twelfth of its CPU. A Writer
// never changes what it is given, so the pieces can be shared: a guard is
// sent with every batch as it is.

// ModRevisionIs compares key's ModRevision to rev (0: the key is absent).
func ModRevisionIs(key string, rev int64) *pb.Compare {
	return &pb.Compare{Key: []byte(key), Target: pb.Compare_MOD, Result: pb.Compare_EQUAL, TargetUnion: &pb.Compare_ModRevision{ModRevision: rev}}
}

// CreateRevisionIs compares key's CreateRevision to rev (0: the key is
// absent).
func CreateRevisionIs(key string, rev int64) *pb.Compare {
	return &pb.Compare{Key: []byte(key), Target: pb.Compare_CREATE, Result: pb.Compare_EQUAL, TargetUnion: &pb.Compare_CreateRevision{CreateRevision: rev}}
}

// ValueIs compares key's value to value.
func ValueIs(key, value string) *pb.Compare {
	return &pb.Compare{Key: []byte(key), Target: pb.Compare_VALUE, Result: pb.Compare_EQUAL, TargetUnion: &pb.Compare_Value{Value: []byte(value)}}
}

// LeaseIs compares the lease key is attached to with lease.
func LeaseIs(key string, lease clientv3.LeaseID) *pb.Compare {
	return &pb.Compare{Key: []byte(key), Target: pb.Compare_LEASE, Result: pb.Compare_EQUAL, TargetUnion: &pb.Compare_Lease{Lease: int64(lease)}}
}

// Put writes value at key. The request holds value itself, not a copy:
// it must not change until the request is sent.
func Put(key string, value []byte) *pb.RequestOp {
	// One allocation for the three messages a put is made of, rather than
	// one each: a transaction's requests hold a few dozen puts.
	p := new(struct {
		op    pb.RequestOp
		oneof pb.RequestOp_RequestPut
		put   pb.PutRequest
	})
	p.put.Key, p.put.Value = []byte(key), value
	p.oneof.RequestPut = &p.put
	p.op.Request = &p.oneof
	return &p.op
}

// Delete deletes key.
func Delete(key string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: []byte(key)}}}
}

// Get reads key.
func Get(key string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte(key)}}}
}

// Txn nests If(cmps).Then(then).Else(els) in a Txn.
func Txn(cmps []*pb.Compare, then, els []*pb.RequestOp) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestTxn{RequestTxn: &pb.TxnRequest{Compare: cmps, Success: then, Failure: els}}}
}

// Puts turns protocol writes into puts.
func Puts(kvs []protocol.KeyValue) []*pb.RequestOp {
	ops := make([]*pb.RequestOp, len(kvs))
	for i, kv := range kvs {
		ops[i] = Put(kv.Key, kv.Value)
	}
	return ops
}

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
// sent with every batch as it is. Each piece is one allocation holding the
// messages it is made of (a put's operation, its oneof and its request),
// besides its key's bytes: a transaction's requests hold dozens of pieces.

// ModRevisionIs compares key's ModRevision to rev (0: the key is absent).
func ModRevisionIs(key string, rev int64) *pb.Compare {
	c := new(struct {
		cmp pb.Compare
		u   pb.Compare_ModRevision
	})
	c.u.ModRevision = rev
	c.cmp.Key, c.cmp.Target, c.cmp.Result, c.cmp.TargetUnion = []byte(key), pb.Compare_MOD, pb.Compare_EQUAL, &c.u
	return &c.cmp
}

// CreateRevisionIs compares key's CreateRevision to rev (0: the key is
// absent).
func CreateRevisionIs(key string, rev int64) *pb.Compare {
	c := new(struct {
		cmp pb.Compare
		u   pb.Compare_CreateRevision
	})
	c.u.CreateRevision = rev
	c.cmp.Key, c.cmp.Target, c.cmp.Result, c.cmp.TargetUnion = []byte(key), pb.Compare_CREATE, pb.Compare_EQUAL, &c.u
	return &c.cmp
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
// it must never change after the call (a writer may send it again).
func Put(key string, value []byte) *pb.RequestOp {
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
	d := new(struct {
		op    pb.RequestOp
		oneof pb.RequestOp_RequestDeleteRange
		del   pb.DeleteRangeRequest
	})
	d.del.Key = []byte(key)
	d.oneof.RequestDeleteRange = &d.del
	d.op.Request = &d.oneof
	return &d.op
}

// Get reads key.
func Get(key string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte(key)}}}
}

// Txn nests If(cmps).Then(then).Else(els) in a Txn.
func Txn(cmps []*pb.Compare, then, els []*pb.RequestOp) *pb.RequestOp {
	t := new(struct {
		op    pb.RequestOp
		oneof pb.RequestOp_RequestTxn
		txn   pb.TxnRequest
	})
	t.txn.Compare, t.txn.Success, t.txn.Failure = cmps, then, els
	t.oneof.RequestTxn = &t.txn
	t.op.Request = &t.oneof
	return &t.op
}

// Puts turns protocol writes into puts.
func Puts(kvs []protocol.KeyValue) []*pb.RequestOp {
	ops := make([]*pb.RequestOp, len(kvs))
	for i, kv := range kvs {
		ops[i] = Put(kv.Key, kv.Value)
	}
	return ops
}

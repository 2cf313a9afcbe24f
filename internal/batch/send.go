package batch

import (
	"context"
	"math"
	"reflect"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
)

// callOptions are clientv3's defaults for every request: wait for a
// connection rather than fail while the client reconnects, and its
// message size limits. (A client configured with other limits is not
// asked: clientv3 does not say. A batch stays within MaxBytes.)
var callOptions = []grpc.CallOption{
	grpc.WaitForReady(true),
	grpc.MaxCallSendMsgSize(2 << 20),
	grpc.MaxCallRecvMsgSize(math.MaxInt32),
}

// directKV returns the KV service of cli's connection, through which a
// Txn goes as clientv3's own KV sends it (the connection's interceptors,
// retries and credentials). nil when cli has no connection of its own
// (clientv3.NewCtxClient) or its KV is not clientv3's own (a namespace,
// say): then requests must go through cli.KV.
func directKV(cli *clientv3.Client) pb.KVClient {
	if cli.ActiveConnection() == nil || reflect.TypeOf(cli.KV) != reflect.TypeOf(clientv3.NewKV(cli)) {
		return nil
	}
	return clientv3.RetryKVClient(cli)
}

// sendTxn sends req once, with its errors as clientv3 returns them.
func (w *Writer) sendTxn(ctx context.Context, req *pb.TxnRequest) (*pb.TxnResponse, error) {
	if w.kv == nil {
		resp, err := w.cli.Txn(ctx).If(clientCmps(req.Compare)...).Then(clientOps(req.Success)...).Else(clientOps(req.Failure)...).Commit()
		return (*pb.TxnResponse)(resp), err
	}
	resp, err := w.kv.Txn(ctx, req, callOptions...)
	if err != nil {
		return nil, clientv3.ContextError(ctx, err)
	}
	return resp, nil
}

// clientCmps turns compares back into clientv3's, for a client whose KV
// needs them (it rewrites keys, for instance).
func clientCmps(cmps []*pb.Compare) []clientv3.Cmp {
	out := make([]clientv3.Cmp, len(cmps))
	for i, c := range cmps {
		out[i].WithKeyBytes(c.Key)
		pc := out[i].GetCompare()
		pc.Target, pc.Result, pc.TargetUnion, pc.RangeEnd = c.Target, c.Result, c.TargetUnion, c.RangeEnd
	}
	return out
}

// clientOps turns operations back into clientv3's.
func clientOps(ops []*pb.RequestOp) []clientv3.Op {
	out := make([]clientv3.Op, 0, len(ops))
	for _, o := range ops {
		switch r := o.Request.(type) {
		case *pb.RequestOp_RequestPut:
			out = append(out, clientv3.OpPut(string(r.RequestPut.Key), string(r.RequestPut.Value)))
		case *pb.RequestOp_RequestDeleteRange:
			out = append(out, clientv3.OpDelete(string(r.RequestDeleteRange.Key), rangeEnd(r.RequestDeleteRange.RangeEnd)...))
		case *pb.RequestOp_RequestRange:
			out = append(out, clientv3.OpGet(string(r.RequestRange.Key), rangeEnd(r.RequestRange.RangeEnd)...))
		case *pb.RequestOp_RequestTxn:
			t := r.RequestTxn
			out = append(out, clientv3.OpTxn(clientCmps(t.Compare), clientOps(t.Success), clientOps(t.Failure)))
		}
	}
	return out
}

func rangeEnd(end []byte) []clientv3.OpOption {
	if len(end) == 0 {
		return nil
	}
	return []clientv3.OpOption{clientv3.WithRange(string(end))}
}

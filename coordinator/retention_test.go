package coordinator

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"

	retrypkg "github.com/concord-tx/concord/internal/retry"
	"github.com/concord-tx/concord/internal/testkit/etcdtest"
	"github.com/concord-tx/concord/protocol"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
)

// Collection deletes inbox keys only where a terminal record can have left
// some: an abort a replica finished for participants that went away. A
// commit's last acknowledgement required them all gone.
func TestInboxesLeft(t *testing.T) {
	names := []string{"a", "b", "c"}
	for _, tc := range []struct {
		state protocol.State
		want  []string
	}{
		{protocol.StateCommitted, nil},
		{protocol.StateAborted, names},
	} {
		rec := protocol.Record{ID: "t1", State: tc.state, Participants: names}
		if got := inboxesLeft(rec); !slices.Equal(got, tc.want) {
			t.Errorf("%s: inbox keys to delete %v, want %v", tc.state, got, tc.want)
		}
		if got, want := gcOps(gcEntry{inboxesLeft: inboxesLeft(rec)}), 2+len(tc.want); got != want {
			t.Errorf("%s: %d operations counted, want %d", tc.state, got, want)
		}
	}
}

// Collection against an etcd whose --max-txn-ops is below the 128 it
// plans for: a refused chunk goes one record a Txn, later chunks are held
// to half the refused one's size, and within a few refusals none is.
func TestCollectUnderLowerTxnLimit(t *testing.T) {
	srv := etcdtest.Start(t, func(c *embed.Config) { c.MaxTxnOps = 16 })
	var refusals atomic.Int64
	cli := srv.Client(t, grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		err := invoker(ctx, method, req, reply, cc, opts...)
		if retrypkg.TooManyOps(err) {
			refusals.Add(1)
		}
		return err
	}))
	o, err := newReplicaOptions(nil)
	if err != nil {
		t.Fatal(err)
	}
	fence := clientv3.Compare(clientv3.CreateRevision("no-leader-key"), "=", 0)
	l := newLeadership(&Replica{cli: cli, opts: o, keys: o.keys, log: zaptest.NewLogger(t)}, fence)
	ctx := context.Background()
	// round queues n committed records, due, collects, and returns how
	// many Txns etcd refused meanwhile.
	round := func(name string, n int) int64 {
		before := refusals.Load()
		for i := range n {
			rec := protocol.Record{ID: fmt.Sprintf("%s-%03d", name, i), State: protocol.StateCommitted, Participants: []string{"a", "b"}}
			v, err := protocol.EncodeRecord(rec)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := cli.Put(ctx, o.keys.Record(rec.ID), string(v))
			if err != nil {
				t.Fatal(err)
			}
			l.gcQueue = append(l.gcQueue, gcEntry{id: rec.ID, rev: resp.Header.Revision, inboxesLeft: inboxesLeft(rec)})
		}
		l.collect(ctx)
		left, err := cli.Get(ctx, o.keys.Prefix()+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil || left.Count != 0 || len(l.gcQueue) != 0 {
			t.Fatalf("%s: %d keys left, %d queued, %v", name, left.Count, len(l.gcQueue), err)
		}
		return refusals.Load() - before
	}
	first, second, third := round("first", 100), round("second", 100), round("third", 100)
	t.Logf("refused %d, %d, %d times; chunks now of at most %d operations", first, second, third, l.gcMaxOps)
	if first == 0 || third != 0 || first+second > 5 {
		t.Errorf("refused %d, %d, then %d times: want some at first, none in the end", first, second, third)
	}
}

package byid

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/concord-tx/concord/internal/retry"
	"github.com/concord-tx/concord/internal/testkit/etcdtest"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
)

// TestReadUnderLowerTxnLimit: against an etcd that refuses Txns of more
// than 16 operations, 300 ids of two reads each come back in order, in
// Txns of at most 16 reads; and an error from use ends Read with it.
func TestReadUnderLowerTxnLimit(t *testing.T) {
	srv := etcdtest.Start(t, func(c *embed.Config) { c.MaxTxnOps = 16 })
	cli := srv.Client(t)
	ctx := context.Background()
	ids := make([]string, 300)
	for i := range ids {
		ids[i] = fmt.Sprintf("id-%03d", i)
		if _, err := cli.Put(ctx, "/k/"+ids[i], ids[i]); err != nil {
			t.Fatal(err)
		}
	}
	p := retry.Policy{Timeout: 5 * time.Second, MinBackoff: 10 * time.Millisecond, MaxBackoff: time.Second}
	reads := func(id string) []clientv3.Op {
		return []clientv3.Op{clientv3.OpGet("/k/" + id), clientv3.OpGet("/absent/" + id)}
	}
	var got []string
	txns, widest := 0, 0
	err := Read(ctx, cli, p, ids, reads, func(resps []*etcdserverpb.ResponseOp) error {
		txns++
		widest = max(widest, len(resps))
		for i := 0; i < len(resps); i += 2 {
			kvs := resps[i].GetResponseRange().GetKvs()
			if len(kvs) != 1 || len(resps[i+1].GetResponseRange().GetKvs()) != 0 {
				return fmt.Errorf("response %d of a Txn: %v", i, kvs)
			}
			got = append(got, string(kvs[0].Value))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(ids) || widest > 16 {
		t.Fatalf("%d ids read in %d Txns of at most %d reads; want %d, at most 16", len(got), txns, widest, len(ids))
	}
	for i := range ids {
		if got[i] != ids[i] {
			t.Fatalf("read %d is %s, want %s (in order)", i, got[i], ids[i])
		}
	}
	stop := errors.New("enough")
	txns = 0
	if err := Read(ctx, cli, p, ids, reads, func([]*etcdserverpb.ResponseOp) error { txns++; return stop }); !errors.Is(err, stop) || txns != 1 {
		t.Errorf("use's error: %v after %d Txns, want it after 1", err, txns)
	}
}

package bench

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/concord-tx/concord/internal/testkit/etcdtest"
	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// BenchmarkTwoVotes measures what etcd does with two participants' votes
// sent at the same instant from two clients: their latency against one
// Txn's, and the WAL fsyncs they cost (from the embedded etcd's own
// metrics). Two fsyncs mean two raft rounds: the second vote waits for the
// round the first one started.
func BenchmarkTwoVotes(b *testing.B) {
	srv := etcdtest.Start(b)
	a, c, one := srv.Client(b), srv.Client(b), srv.Client(b)
	ctx := context.Background()
	txn := func(cli *clientv3.Client, key string) {
		if _, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), ">", -1)).Then(clientv3.OpPut(key, "yes")).Commit(); err != nil {
			b.Error(err)
		}
	}
	for range 20 { // warm up the connections
		txn(one, "one")
	}
	var singles, pairs []time.Duration
	f0 := walFsyncs(b)
	b.ResetTimer()
	for i := range b.N {
		t0 := time.Now()
		txn(one, "one")
		singles = append(singles, time.Since(t0))
		var wg sync.WaitGroup
		wg.Add(2)
		t0 = time.Now()
		go func() { defer wg.Done(); txn(a, fmt.Sprint("a", i)) }()
		go func() { defer wg.Done(); txn(c, fmt.Sprint("b", i)) }()
		wg.Wait()
		pairs = append(pairs, time.Since(t0))
	}
	b.StopTimer()
	b.ReportMetric(percentile(singles, 50), "one-p50-ms")
	b.ReportMetric(percentile(pairs, 50), "two-p50-ms")
	// Each iteration is one Txn alone, then the two together: take the
	// lone one's fsync away.
	b.ReportMetric((walFsyncs(b)-f0)/float64(b.N)-1, "fsyncs/two")
}

// walFsyncs reads how many WAL fsyncs the embedded etcd of this process
// has done.
func walFsyncs(b *testing.B) float64 {
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "etcd_disk_wal_fsync_duration_seconds" && len(mf.Metric) > 0 {
			return float64(mf.Metric[0].GetHistogram().GetSampleCount())
		}
	}
	b.Fatal("etcd_disk_wal_fsync_duration_seconds not registered")
	return 0
}

package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/concord-tx/concord/coordinator"
	"github.com/concord-tx/concord/internal/flowcontrol"
	"github.com/concord-tx/concord/protocol"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Memory is what a coordinator holds with many undecided transactions.
type Memory struct {
	Undecided        int     `json:"undecided"`
	RSSBytes         int64   `json:"rss_bytes"`         // of this process, after a GC
	HeapBytes        uint64  `json:"heap_inuse_bytes"`  // Go heap in use, after a GC
	HeapPerTxBytes   float64 `json:"heap_per_tx_bytes"` // growth of the heap in use per transaction
	GoroutinesBefore int     `json:"goroutines_before"` // with the client and replica idle
	GoroutinesAfter  int     `json:"goroutines_after"`  // with every transaction undecided
	LeasesAfter      int     `json:"etcd_leases_after"` // leases in etcd with them undecided
	Embedded         bool    `json:"embedded_etcd"`     // if so, RSS and heap include etcd's
}

// countingObserver remembers the replica's count of active transactions.
type countingObserver struct {
	coordinator.NopObserver
	active atomic.Int64
}

func (o *countingObserver) Active(n int) { o.active.Store(int64(n)) }

// Undecided begins n transactions whose only participant is registered but
// never answers, so all stay undecided, and measures the process hosting
// the coordinator client and replica once the replica tracks them all. With
// endpoints empty, an embedded etcd runs in the same process and is counted.
func Undecided(ctx context.Context, endpoints []string, n int) (Memory, error) {
	m := Memory{Undecided: n, Embedded: len(endpoints) == 0}
	endpoints, stopEtcd, err := etcdFor(endpoints)
	if err != nil {
		return m, err
	}
	defer stopEtcd()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, DialOptions: flowcontrol.DialOptions(), Logger: zap.NewNop()})
	if err != nil {
		return m, err
	}
	defer cli.Close()
	prefix := fmt.Sprintf("/concord-bench-%08x", rand.Uint32())
	keys, err := protocol.NewKeys(prefix)
	if err != nil {
		return m, err
	}
	defer cli.Delete(context.Background(), prefix+"/", clientv3.WithPrefix())

	// A participant that is registered and never answers: a registration
	// key on a lease, with nobody reading its inbox.
	lease, err := cli.Grant(ctx, 60)
	if err != nil {
		return m, err
	}
	defer cli.Revoke(context.Background(), lease.ID)
	if _, err := cli.Put(ctx, keys.Participant("silent"), "bench", clientv3.WithLease(lease.ID)); err != nil {
		return m, err
	}
	obs := &countingObserver{}
	replica, err := coordinator.NewReplica(cli, coordinator.WithPrefix(prefix), coordinator.WithObserver(obs))
	if err != nil {
		return m, err
	}
	defer replica.Close()
	c, err := coordinator.NewClient(ctx, cli, coordinator.WithPrefix(prefix))
	if err != nil {
		return m, err
	}
	defer c.Close()
	for !replica.IsLeader() {
		if err := sleep(ctx, 10*time.Millisecond); err != nil {
			return m, err
		}
	}
	heapBefore := heapInuse()
	m.GoroutinesBefore = runtime.NumGoroutine()

	var wg sync.WaitGroup
	var failed atomic.Int64
	next := atomic.Int64{}
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				_, err := c.Begin(ctx, coordinator.Request{Branches: []protocol.Branch{{Participant: "silent", Payload: []byte(`{"account":"alice","amount":-10}`)}}, Timeout: time.Hour})
				if err != nil {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		return m, fmt.Errorf("%d begins failed", f)
	}
	for obs.active.Load() < int64(n) {
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return m, fmt.Errorf("replica tracks %d of %d: %w", obs.active.Load(), n, err)
		}
	}
	m.HeapBytes = heapInuse()
	m.HeapPerTxBytes = (float64(m.HeapBytes) - float64(heapBefore)) / float64(n)
	m.RSSBytes = rss()
	m.GoroutinesAfter = runtime.NumGoroutine()
	leases, err := cli.Leases(ctx)
	if err != nil {
		return m, err
	}
	m.LeasesAfter = len(leases.Leases)
	return m, nil
}

func heapInuse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// rss reads this process's resident set size from /proc; 0 where there is
// no /proc.
func rss() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

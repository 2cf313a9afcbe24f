package bench

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// pathFloor measures the commit path's shape with bare etcd calls, one
// transaction at a time for d: a Txn that writes a record and one inbox key
// per participant; n watchers, each answering its inbox key at once with a
// guarded vote Txn; and the initiator's watch seeing the last vote. No
// encoding, fencing, acknowledgement or decision record: this is what etcd
// itself permits for "begin, then the votes", the lower bound of the p50 a
// coordinator of this shape can reach on the same etcd and machine.
//
// The keys live under prefix/bare/ and are built here by hand on purpose:
// this is not the protocol.
func pathFloor(ctx context.Context, initiator *clientv3.Client, voters []*clientv3.Client, prefix string, value []byte, d time.Duration) ([]time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	base := prefix + "/bare/"
	head, err := initiator.Get(ctx, base, clientv3.WithCountOnly())
	if err != nil {
		cancel()
		return nil, err
	}
	from := clientv3.WithRev(head.Header.Revision + 1)

	var (
		mu      sync.Mutex
		waiting = map[string]chan struct{}{}
		votes   = map[string]int{}
		wg      sync.WaitGroup
		voteErr = make(chan error, 1) // the first vote that failed
	)
	defer wg.Wait()
	defer cancel() // before the wait: it ends the watches
	for i, cli := range voters {
		inbox := fmt.Sprintf("%sinbox/%d/", base, i)
		wch := cli.Watch(ctx, inbox, clientv3.WithPrefix(), from)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for resp := range wch {
				for _, ev := range resp.Events {
					id := strings.TrimPrefix(string(ev.Kv.Key), inbox)
					vote := fmt.Sprintf("%svote/%s/%d", base, id, i)
					_, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(vote), "=", 0)).Then(clientv3.OpPut(vote, "yes")).Commit()
					if err != nil && ctx.Err() == nil {
						select {
						case voteErr <- err:
						default:
						}
					}
				}
			}
		}()
	}
	wch := initiator.Watch(ctx, base+"vote/", clientv3.WithPrefix(), from)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for resp := range wch {
			for _, ev := range resp.Events {
				id, _, _ := strings.Cut(strings.TrimPrefix(string(ev.Kv.Key), base+"vote/"), "/")
				mu.Lock()
				votes[id]++
				if votes[id] == len(voters) {
					close(waiting[id])
					delete(waiting, id)
				}
				mu.Unlock()
			}
		}
	}()

	var lats []time.Duration
	end := time.Now().Add(d)
	for i := 0; time.Now().Before(end); i++ {
		id := fmt.Sprintf("t%d", i)
		done := make(chan struct{})
		mu.Lock()
		waiting[id] = done
		mu.Unlock()
		ops := []clientv3.Op{clientv3.OpPut(base+"record/"+id, string(value))}
		for v := range voters {
			ops = append(ops, clientv3.OpPut(fmt.Sprintf("%sinbox/%d/%s", base, v, id), string(value)))
		}
		t0 := time.Now()
		if _, err := initiator.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(base+"record/"+id), "=", 0)).Then(ops...).Commit(); err != nil {
			return nil, err
		}
		select {
		case <-done:
		case err := <-voteErr:
			return nil, fmt.Errorf("bare commit path: vote on %s: %w", id, err)
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Second):
			return nil, fmt.Errorf("bare commit path: transaction %s not voted on after 10s", id)
		}
		if i > 0 { // the first one warms the watches
			lats = append(lats, time.Since(t0))
		}
	}
	if len(lats) == 0 {
		return nil, fmt.Errorf("bare commit path: no transaction finished in %v", d)
	}
	return lats, nil
}

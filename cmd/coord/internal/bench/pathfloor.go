package bench

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// barePath is the commit path's shape with bare etcd calls, one
// transaction at a time: a Txn that writes a record and one inbox key per
// participant; n watchers, each answering its inbox key at once with a
// guarded vote Txn; and the initiator's watch seeing the last vote. No
// encoding, fencing, acknowledgement or decision record: this is what etcd
// itself permits for "begin, then the votes", the lower bound of the p50 a
// coordinator of this shape can reach on the same etcd and machine.
//
// The keys live under prefix/bare/ and are built here by hand on purpose:
// this is not the protocol.
type barePath struct {
	initiator *clientv3.Client
	voters    int
	base      string
	value     string
	next      int // the next transaction's number
	cancel    context.CancelFunc
	closing   sync.Once
	wg        sync.WaitGroup
	voteErr   chan error // the first vote that failed

	mu      sync.Mutex
	waiting map[string]chan struct{}
	votes   map[string]int
}

// startBarePath opens the watches; close ends them.
func startBarePath(ctx context.Context, initiator *clientv3.Client, voters []*clientv3.Client, prefix string, value []byte) (*barePath, error) {
	base := prefix + "/bare/"
	head, err := initiator.Get(ctx, base, clientv3.WithCountOnly())
	if err != nil {
		return nil, err
	}
	from := clientv3.WithRev(head.Header.Revision + 1)
	ctx, cancel := context.WithCancel(ctx)
	p := &barePath{
		initiator: initiator, voters: len(voters), base: base, value: string(value), cancel: cancel,
		voteErr: make(chan error, 1), waiting: map[string]chan struct{}{}, votes: map[string]int{},
	}
	for i, cli := range voters {
		inbox := fmt.Sprintf("%sinbox/%d/", base, i)
		wch := cli.Watch(ctx, inbox, clientv3.WithPrefix(), from)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for resp := range wch {
				for _, ev := range resp.Events {
					if ev.Type != clientv3.EventTypePut {
						continue
					}
					id := strings.TrimPrefix(string(ev.Kv.Key), inbox)
					vote := fmt.Sprintf("%svote/%s/%d", base, id, i)
					_, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(vote), "=", 0)).Then(clientv3.OpPut(vote, "yes")).Commit()
					if err != nil && ctx.Err() == nil {
						select {
						case p.voteErr <- err:
						default:
						}
					}
				}
			}
		}()
	}
	wch := initiator.Watch(ctx, base+"vote/", clientv3.WithPrefix(), from)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for resp := range wch {
			for _, ev := range resp.Events {
				id, _, _ := strings.Cut(strings.TrimPrefix(string(ev.Kv.Key), base+"vote/"), "/")
				p.mu.Lock()
				if ev.Type != clientv3.EventTypePut || p.waiting[id] == nil {
					p.mu.Unlock() // the run's keys deleted at its end
					continue
				}
				p.votes[id]++
				if p.votes[id] == len(voters) {
					close(p.waiting[id])
					delete(p.waiting, id)
					delete(p.votes, id)
				}
				p.mu.Unlock()
			}
		}
	}()
	return p, nil
}

// close ends the watches and waits for their goroutines. It may be
// called more than once.
func (p *barePath) close() {
	p.closing.Do(func() {
		p.cancel()
		p.wg.Wait()
	})
}

// run runs transactions one at a time until n are done (n > 0) or d has
// passed (d > 0), and returns each one's latency. The first transaction
// of a barePath warms its watches and is not counted.
func (p *barePath) run(ctx context.Context, n int, d time.Duration) ([]time.Duration, error) {
	var lats []time.Duration
	end := time.Now().Add(d)
	for (n <= 0 || len(lats) < n) && (d <= 0 || time.Now().Before(end)) {
		id := fmt.Sprintf("t%d", p.next)
		p.next++
		done := make(chan struct{})
		p.mu.Lock()
		p.waiting[id] = done
		p.mu.Unlock()
		ops := []clientv3.Op{clientv3.OpPut(p.base+"record/"+id, p.value)}
		for v := range p.voters {
			ops = append(ops, clientv3.OpPut(fmt.Sprintf("%sinbox/%d/%s", p.base, v, id), p.value))
		}
		t0 := time.Now()
		if _, err := p.initiator.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(p.base+"record/"+id), "=", 0)).Then(ops...).Commit(); err != nil {
			return nil, err
		}
		select {
		case <-done:
		case err := <-p.voteErr:
			return nil, fmt.Errorf("bare commit path: vote on %s: %w", id, err)
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Second):
			return nil, fmt.Errorf("bare commit path: transaction %s not voted on after 10s", id)
		}
		if p.next > 1 {
			lats = append(lats, time.Since(t0))
		}
	}
	if len(lats) == 0 {
		return nil, fmt.Errorf("bare commit path: no transaction finished in %v", d)
	}
	return lats, nil
}

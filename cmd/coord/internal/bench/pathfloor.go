package bench

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// barePath is the commit path's shape with bare etcd calls, at a given
// concurrency: a Txn that writes a record and one inbox key per
// participant; n watchers, each answering its inbox key at once with a
// guarded vote Txn; and the initiator's watch seeing the last vote. No
// encoding, fencing, acknowledgement or decision record: this is what etcd
// itself permits for "begin, then the votes", the lower bound of the p50 a
// coordinator of this shape can reach on the same etcd and machine.
//
// The keys live under prefix/bare/ and are built here by hand on purpose:
// this is not the protocol.
//
// With a protocolShape (startProtocolPath) the same loop writes what the
// protocol's commit path writes instead, see protocolShape; and with its
// finisher, what the design's whole transaction writes, see finisher.
type barePath struct {
	initiator *clientv3.Client
	voters    int
	base      string
	value     string
	shape     *protocolShape // nil: the path floor's own writes
	next      atomic.Int64   // the next transaction's number
	// concurrent: each vote goes out on a goroutine of its own, so that a
	// voter's votes do not wait for each other (as Concord's participants'
	// do not); false, at concurrency 1, votes go out from the watch's
	// goroutine, at once.
	concurrent bool
	cancel     context.CancelFunc
	closing    sync.Once
	wg         sync.WaitGroup
	bgErr      chan error // the first error of the background work: votes, acknowledgements, cleanup

	// counter, if set, counts the voters' and the initiator's requests;
	// run adds the bytes they wrote, and their compares and operations.
	counter              *Counter
	bytes, compares, ops int64

	mu      sync.Mutex
	waiting map[string]chan struct{}
	votes   map[string]int
}

// startBarePath opens the watches; close ends them. concurrent: see
// barePath.
func startBarePath(ctx context.Context, initiator *clientv3.Client, voters []*clientv3.Client, prefix string, value []byte, concurrent bool) (*barePath, error) {
	return startPath(ctx, initiator, voters, prefix+"/bare/", string(value), nil, concurrent)
}

func startPath(ctx context.Context, initiator *clientv3.Client, voters []*clientv3.Client, base, value string, shape *protocolShape, concurrent bool) (*barePath, error) {
	head, err := initiator.Get(ctx, base, clientv3.WithCountOnly())
	if err != nil {
		return nil, err
	}
	from := clientv3.WithRev(head.Header.Revision + 1)
	ctx, cancel := context.WithCancel(ctx)
	p := &barePath{
		initiator: initiator, voters: len(voters), base: base, value: value, shape: shape, concurrent: concurrent, cancel: cancel,
		bgErr: make(chan error, 1), waiting: map[string]chan struct{}{}, votes: map[string]int{},
	}
	for i, cli := range voters {
		inbox := p.inboxKey(i, "") // the voter's prefix
		wch := cli.Watch(ctx, inbox, clientv3.WithPrefix(), from)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for resp := range wch {
				for _, ev := range resp.Events {
					// With the protocol's shape the decision rewrites
					// the inbox key: only its creation is a prepare.
					if ev.Type != clientv3.EventTypePut {
						continue
					}
					id := strings.TrimPrefix(string(ev.Kv.Key), inbox)
					if shape != nil && !ev.IsCreate() {
						if shape.fin != nil { // the decision, to acknowledge
							shape.fin.acks[i].add(pendingAck{id, ev.Kv.ModRevision, time.Now()})
						}
						continue
					}
					begun := ev.Kv.ModRevision
					if !concurrent {
						p.vote(ctx, cli, i, id, begun)
						continue
					}
					p.wg.Add(1)
					go func() {
						defer p.wg.Done()
						p.vote(ctx, cli, i, id, begun)
					}()
				}
			}
		}()
	}
	// The path floor's initiator counts the votes; the protocol's waits
	// for the record's decision, the record's first change.
	watched, need := base+"vote/", len(voters)
	if shape != nil {
		watched, need = base+"record/", 1
	}
	wch := initiator.Watch(ctx, watched, clientv3.WithPrefix(), from)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for resp := range wch {
			for _, ev := range resp.Events {
				id, _, _ := strings.Cut(strings.TrimPrefix(string(ev.Kv.Key), watched), "/")
				if shape != nil && shape.fin != nil && ev.Type == clientv3.EventTypePut && ev.Kv.Version == 3 {
					shape.fin.sawTerminal(id, ev.Kv.ModRevision)
					continue
				}
				p.mu.Lock()
				if ev.Type != clientv3.EventTypePut || shape != nil && ev.IsCreate() || p.waiting[id] == nil {
					p.mu.Unlock() // the run's keys deleted at its end, or a begin
					continue
				}
				p.votes[id]++
				if p.votes[id] == need {
					close(p.waiting[id])
					delete(p.waiting, id)
					delete(p.votes, id)
				}
				p.mu.Unlock()
			}
		}
	}()
	if shape != nil && shape.fin != nil {
		shape.fin.start(ctx, p)
	}
	return p, nil
}

// vote writes voter i's yes vote on transaction id unless it is there;
// with the protocol's shape, as a participant's vote Txn (see
// protocolShape.vote). begun is the revision of the prepare.
func (p *barePath) vote(ctx context.Context, cli *clientv3.Client, i int, id string, begun int64) {
	var err error
	if p.shape != nil {
		err = p.shape.vote(ctx, cli, p, i, id, begun)
	} else {
		key := p.voteKey(id, i)
		_, err = cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).Then(clientv3.OpPut(key, "yes")).Commit()
	}
	if err != nil && ctx.Err() == nil {
		p.report(fmt.Errorf("vote on %s: %w", id, err))
	}
}

// report keeps err, if not nil, as the first error of the path's
// background work, which fails the transaction waiting, or the next.
func (p *barePath) report(err error) {
	if err == nil {
		return
	}
	select {
	case p.bgErr <- err:
	default:
	}
}

// The floors' keys, built by hand (see barePath).
func (p *barePath) recordKey(id string) string { return p.base + "record/" + id }
func (p *barePath) voteKey(id string, i int) string {
	return fmt.Sprintf("%s%d", p.votePrefix(id), i)
}
func (p *barePath) votePrefix(id string) string { return p.base + "vote/" + id + "/" }
func (p *barePath) inboxKey(i int, id string) string {
	return fmt.Sprintf("%sinbox/%d/%s", p.base, i, id)
}

// close ends the watches and waits for their goroutines. It may be
// called more than once.
func (p *barePath) close() {
	p.closing.Do(func() {
		p.cancel()
		p.wg.Wait()
		if p.shape != nil {
			p.shape.release()
		}
	})
}

// run runs transactions, c at a time, until n are done (n > 0) or d has
// passed (d > 0), and returns each one's latency and the wall time they
// took. Call warm first.
func (p *barePath) run(ctx context.Context, c, n int, d time.Duration) ([]time.Duration, time.Duration, error) {
	var (
		mu       sync.Mutex
		lats     []time.Duration
		firstErr error
		started  atomic.Int64
		wg       sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if p.counter != nil {
		// Every vote of a transaction run counts is written before run
		// returns: its initiator waits for them.
		b0 := p.counter.Bytes()
		c0, o0 := p.counter.Shape()
		defer func() {
			c1, o1 := p.counter.Shape()
			p.bytes, p.compares, p.ops = p.bytes+p.counter.Bytes()-b0, p.compares+c1-c0, p.ops+o1-o0
		}()
	}
	end := time.Now().Add(d)
	start := time.Now()
	worker := func() {
		for ctx.Err() == nil && (n <= 0 || started.Add(1) <= int64(n)) && (d <= 0 || time.Now().Before(end)) {
			took, err := p.once(ctx)
			mu.Lock()
			if err != nil && firstErr == nil {
				firstErr = err
				cancel()
			}
			if err == nil {
				lats = append(lats, took)
			}
			mu.Unlock()
		}
	}
	if c == 1 {
		worker() // no goroutine of its own, so none is counted
	} else {
		for range c {
			wg.Add(1)
			go func() {
				defer wg.Done()
				worker()
			}()
		}
		wg.Wait()
	}
	elapsed := time.Since(start)
	if firstErr == nil && p.shape != nil && p.shape.fin != nil {
		// Outside the elapsed time, inside the CPU and the counts.
		firstErr = p.shape.fin.drain(ctx, p)
	}
	if firstErr != nil {
		return nil, elapsed, firstErr
	}
	if len(lats) == 0 {
		return nil, elapsed, fmt.Errorf("bare commit path: no transaction finished in %v", d)
	}
	return lats, elapsed, nil
}

// warm runs p's first transaction, which warms its watches, unless it has
// run: neither its time, its CPU nor its requests are measured.
func (p *barePath) warm(ctx context.Context) error {
	if p.next.Load() > 0 {
		return nil
	}
	if _, err := p.once(ctx); err != nil {
		return err
	}
	if p.shape != nil && p.shape.fin != nil {
		return p.shape.fin.drain(ctx, p) // so that runs count only their own
	}
	return nil
}

// once runs one transaction and returns its latency.
func (p *barePath) once(ctx context.Context) (time.Duration, error) {
	num := p.next.Add(1) - 1
	id := fmt.Sprintf("t%d", num)
	done := make(chan struct{})
	p.mu.Lock()
	p.waiting[id] = done
	p.mu.Unlock()
	record, message := p.value, p.value
	if p.shape != nil {
		record, message = p.shape.record, p.shape.prepare
	}
	ops := []clientv3.Op{clientv3.OpPut(p.recordKey(id), record)}
	for v := range p.voters {
		ops = append(ops, clientv3.OpPut(p.inboxKey(v, id), message))
	}
	t0 := time.Now()
	if _, err := p.initiator.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(p.recordKey(id)), "=", 0)).Then(ops...).Commit(); err != nil {
		return 0, err
	}
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	select {
	case <-done:
	case err := <-p.bgErr:
		return 0, fmt.Errorf("bare commit path, while %s ran: %w", id, err)
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-timeout.C:
		return 0, fmt.Errorf("bare commit path: transaction %s not voted on after 10s", id)
	}
	return time.Since(t0), nil
}

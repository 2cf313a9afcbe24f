package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// finisher makes a bare path with the protocol's shape do what the design
// asks of a transaction after its decision, the way Concord does it, so
// that the path is the design's whole transaction, not only its commit
// path: the design floor.
//
//   - Each voter acknowledges a decision as a participant does: a Txn
//     guarded by its inbox key's revision deletes the key and, if every
//     other inbox key of the transaction is gone, writes the terminal
//     record. The acknowledgement rides with the voter's next vote, in the
//     same Txn, or goes alone after ackDelay (a participant's lazy
//     acknowledgement).
//   - The initiator, as the leading replica, deletes finished records and
//     their votes, many to a fenced Txn, every gcInterval. It does not
//     keep them for a retention first: when it deletes them costs etcd the
//     same.
//   - A run ends with its transactions finished and deleted, and what that
//     costs is charged to the run.
//
// At concurrency 1 nothing else could be shared between transactions, so
// this is the least any implementation of the design spends on a whole
// transaction. Above it the floor's requests are not batched across
// transactions, as Concord's are: there it is not a floor.
type finisher struct {
	terminal string   // the committed record's value
	acks     []*queue // each voter's acknowledgements waiting to go

	mu       sync.Mutex
	done     []finished    // terminal records seen, not yet deleted
	seen     int64         // terminal records seen
	changed  chan struct{} // closed when seen grows
	deleting sync.Mutex    // one cleanup at a time
}

const (
	// ackDelay is how long an acknowledgement waits for a vote to ride
	// with: a participant's default.
	ackDelay = 10 * time.Millisecond
	// gcInterval is how often the leading replica deletes: its shortest.
	gcInterval = 100 * time.Millisecond
	// gcRecords is how many records one cleanup Txn deletes, with their
	// votes: two operations each, within etcd's default 128.
	gcRecords = 64
)

// A pending acknowledgement: of transaction id, whose decision was written
// at rev.
type pendingAck struct {
	id  string
	rev int64
}

// A finished transaction: its terminal record was written at rev.
type finished struct {
	id  string
	rev int64
}

// queue holds a voter's acknowledgements until a vote or ackDelay takes
// them.
type queue struct {
	mu      sync.Mutex
	pending []pendingAck
	wake    chan struct{} // holds a token while an acknowledgement waits
}

func newFinisher(terminal string, voters int) *finisher {
	f := &finisher{terminal: terminal, changed: make(chan struct{})}
	for range voters {
		f.acks = append(f.acks, &queue{wake: make(chan struct{}, 1)})
	}
	return f
}

func (q *queue) add(a pendingAck) {
	q.mu.Lock()
	q.pending = append(q.pending, a)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *queue) take() []pendingAck {
	q.mu.Lock()
	defer q.mu.Unlock()
	taken := q.pending
	q.pending = nil
	return taken
}

// start runs, until ctx ends, each voter's sender of acknowledgements
// that found no vote to ride with, and the cleanup.
func (f *finisher) start(ctx context.Context, p *barePath) {
	for i, cli := range p.shape.voters {
		q := f.acks[i]
		p.wg.Go(func() {
			timer := time.NewTimer(ackDelay)
			timer.Stop()
			defer timer.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-q.wake:
				}
				timer.Reset(ackDelay)
				select {
				case <-ctx.Done():
					return
				case <-timer.C:
				}
				p.report(f.ackAlone(ctx, cli, p, i, q.take()))
			}
		})
	}
	p.wg.Go(func() {
		ticker := time.NewTicker(gcInterval)
		defer ticker.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
				p.report(f.collect(ctx, p))
			}
		}
	})
}

// ack is voter i's acknowledgement of a, as a participant writes it.
func (f *finisher) ack(p *barePath, i int, a pendingAck) clientv3.Op {
	record, inbox := p.recordKey(a.id), p.inboxKey(i, a.id)
	last := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(record), "=", a.rev)}
	for v := range p.voters {
		if v != i {
			last = append(last, clientv3.Compare(clientv3.CreateRevision(p.inboxKey(v, a.id)), "=", 0))
		}
	}
	return clientv3.OpTxn(
		[]clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(inbox), "=", a.rev)},
		[]clientv3.Op{clientv3.OpDelete(inbox), clientv3.OpTxn(last, []clientv3.Op{clientv3.OpPut(record, f.terminal)}, nil)},
		nil)
}

// ackAlone sends acknowledgements that found no vote to ride with, in one
// Txn fenced by voter i's registration.
func (f *finisher) ackAlone(ctx context.Context, cli *clientv3.Client, p *barePath, i int, acks []pendingAck) error {
	if len(acks) == 0 {
		return nil
	}
	ops := make([]clientv3.Op, len(acks))
	for k, a := range acks {
		ops[k] = f.ack(p, i, a)
	}
	_, err := cli.Txn(ctx).If(p.shape.fence(i)).Then(ops...).Commit()
	return err
}

// sawTerminal records that transaction id's terminal record was written
// at rev.
func (f *finisher) sawTerminal(id string, rev int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.done = append(f.done, finished{id, rev})
	f.seen++
	close(f.changed)
	f.changed = make(chan struct{})
}

// collect deletes the finished records seen so far with their votes, as
// the leading replica does: fenced, each record guarded by its revision.
func (f *finisher) collect(ctx context.Context, p *barePath) error {
	f.deleting.Lock()
	defer f.deleting.Unlock()
	f.mu.Lock()
	due := f.done
	f.done = nil
	f.mu.Unlock()
	for len(due) > 0 {
		chunk := due[:min(len(due), gcRecords)]
		due = due[len(chunk):]
		cmps := []clientv3.Cmp{p.shape.fence(0)}
		var ops []clientv3.Op
		for _, d := range chunk {
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(p.recordKey(d.id)), "=", d.rev))
			ops = append(ops, clientv3.OpDelete(p.recordKey(d.id)), clientv3.OpDelete(p.votePrefix(d.id), clientv3.WithPrefix()))
		}
		resp, err := p.initiator.Txn(ctx).If(cmps...).Then(ops...).Commit()
		if err != nil {
			return err
		}
		if !resp.Succeeded {
			return fmt.Errorf("design floor: cleanup of %d finished transactions failed its compares", len(chunk))
		}
	}
	return nil
}

// drain finishes what a run started: it sends the acknowledgements still
// waiting, waits until every transaction begun so far has its terminal
// record, and deletes them.
func (f *finisher) drain(ctx context.Context, p *barePath) error {
	for i, cli := range p.shape.voters {
		if err := f.ackAlone(ctx, cli, p, i, f.acks[i].take()); err != nil {
			return err
		}
	}
	want := p.next.Load()
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for {
		f.mu.Lock()
		seen, changed := f.seen, f.changed
		f.mu.Unlock()
		if seen >= want {
			break
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		case <-timeout.C:
			return fmt.Errorf("design floor: %d of %d transactions finished after 10s", seen, want)
		}
	}
	return f.collect(ctx, p)
}

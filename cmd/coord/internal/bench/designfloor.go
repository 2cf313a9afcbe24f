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
//     same Txn, or goes alone once it has waited ackDelay (a participant's
//     lazy acknowledgement).
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
	// votes: two operations each, within etcd's default 128 operations a
	// Txn. ackOps is what an acknowledgement counts against that limit:
	// a deletion and a put.
	gcRecords = 64
	ackOps    = 2
	maxOps    = 128
)

// A pending acknowledgement: of transaction id, whose decision was written
// at rev, queued at at.
type pendingAck struct {
	id  string
	rev int64
	at  time.Time
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

// take takes the first n acknowledgements waiting, or all of them if
// fewer.
func (q *queue) take(n int) []pendingAck {
	q.mu.Lock()
	defer q.mu.Unlock()
	n = min(n, len(q.pending))
	taken := q.pending[:n:n]
	q.pending = q.pending[n:]
	return taken
}

// due is when the oldest acknowledgement waiting has waited ackDelay; false:
// none waits.
func (q *queue) due() (time.Time, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.pending) == 0 {
		return time.Time{}, false
	}
	return q.pending[0].at.Add(ackDelay), true
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
				// As a participant's lazy acknowledgement: it goes alone
				// once it has waited ackDelay; a vote that takes it first
				// takes its wait along.
				for {
					due, ok := q.due()
					if !ok {
						break
					}
					if wait := time.Until(due); wait > 0 {
						timer.Reset(wait)
						select {
						case <-ctx.Done():
							return
						case <-timer.C:
						}
						continue
					}
					p.report(f.ackAlone(ctx, cli, p, i, q.take(maxOps/ackOps)))
				}
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
				if err := f.collect(ctx, p); err != nil && ctx.Err() == nil {
					p.report(fmt.Errorf("design floor: cleanup: %w", err))
				}
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
	resp, err := cli.Txn(ctx).If(p.shape.fence(i)).Then(ops...).Commit()
	switch {
	case err != nil && ctx.Err() == nil:
		return fmt.Errorf("design floor: voter %d's acknowledgements: %w", i, err)
	case err == nil && !resp.Succeeded:
		return fmt.Errorf("design floor: voter %d's acknowledgements: its registration was lost", i)
	}
	return nil
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
		for {
			acks := f.acks[i].take(maxOps / ackOps)
			if len(acks) == 0 {
				break
			}
			if err := f.ackAlone(ctx, cli, p, i, acks); err != nil {
				return err
			}
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
	if err := f.collect(ctx, p); err != nil {
		return fmt.Errorf("design floor: cleanup: %w", err)
	}
	return nil
}

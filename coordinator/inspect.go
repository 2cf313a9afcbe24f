package coordinator

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/concord-tx/concord/internal/byid"
	"github.com/concord-tx/concord/protocol"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Transaction is a record as read at one revision: what Get (with the
// state of each branch), List and Abort (without it) return.
type Transaction struct {
	protocol.Record
	Revision int64 // the record's ModRevision
	// BeginRevision is the begin's revision R, the record's
	// CreateRevision (Get and List; 0 from Abort). Later begins have
	// higher ones.
	BeginRevision int64
	Branches      []BranchStatus // Get only; nil from List and Abort
	// Failures: participants reporting that their Commit or Abort handler
	// keeps failing (Get only), in the order of Participants.
	Failures []BranchFailure
}

// BranchFailure is a participant's report that its Commit or Abort
// handler keeps failing for the transaction: since when, how many
// attempts, the last error (see protocol.Failure).
type BranchFailure = protocol.Failure

// BranchStatus is what one participant has done in a transaction.
type BranchStatus struct {
	Participant string
	Vote        *protocol.Vote // nil: not voted
	Acked       bool           // applied the decision
}

// Get reads transaction id with its votes and acknowledgements.
func (c *Client) Get(ctx context.Context, id string) (Transaction, error) {
	if err := protocol.ValidateID(id); err != nil {
		return Transaction{}, fmt.Errorf("%w: id: %w", ErrInvalidRequest, err)
	}
	key := c.keys.Record(id)
	resp, err := retry(ctx, c.opts, "txn", func(ctx context.Context) (*clientv3.TxnResponse, error) {
		return c.cli.Txn(ctx).Then(
			clientv3.OpGet(key),
			clientv3.OpGet(c.keys.TxPrefix(id), clientv3.WithPrefix()),
		).Commit()
	})
	if err != nil {
		return Transaction{}, fmt.Errorf("coordinator: get %s: %w", id, err)
	}
	recKVs := resp.Responses[0].GetResponseRange().Kvs
	if len(recKVs) == 0 {
		return Transaction{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	rec, err := protocol.DecodeRecord(recKVs[0].Value)
	if err != nil {
		return Transaction{}, fmt.Errorf("coordinator: get %s: %w", id, err)
	}
	votes := make(map[string]protocol.Vote)
	failures := make(map[string]BranchFailure)
	for _, kv := range resp.Responses[1].GetResponseRange().Kvs {
		k := c.keys.Parse(string(kv.Key))
		switch k.Kind {
		case protocol.KindVote:
			if v, err := protocol.ParseVote(string(kv.Value)); err == nil {
				votes[k.Participant] = v
			}
		case protocol.KindFailure:
			if f, err := protocol.DecodeFailure(kv.Value); err == nil {
				failures[k.Participant] = f
			}
		}
	}
	// Acknowledged means the inbox key is gone after the decision.
	inboxOps := make([]clientv3.Op, len(rec.Participants))
	for i, p := range rec.Participants {
		inboxOps[i] = clientv3.OpGet(c.keys.Inbox(p, id), clientv3.WithCountOnly(), clientv3.WithRev(resp.Header.Revision))
	}
	inboxes, err := retry(ctx, c.opts, "txn", func(ctx context.Context) (*clientv3.TxnResponse, error) {
		return c.cli.Txn(ctx).Then(inboxOps...).Commit()
	})
	if err != nil {
		return Transaction{}, fmt.Errorf("coordinator: get %s: %w", id, err)
	}
	tx := Transaction{Record: rec, Revision: recKVs[0].ModRevision, BeginRevision: recKVs[0].CreateRevision, Branches: make([]BranchStatus, len(rec.Participants))}
	for i, p := range rec.Participants {
		b := BranchStatus{Participant: p}
		if v, ok := votes[p]; ok {
			b.Vote = &v
		}
		// A terminal abort may leave the inbox of a participant that never
		// voted and is gone (see Replica): it has not acknowledged.
		b.Acked = rec.State.Decided() && inboxes.Responses[i].GetResponseRange().Count == 0
		tx.Branches[i] = b
		if f, ok := failures[p]; ok && !b.Acked {
			tx.Failures = append(tx.Failures, f)
		}
	}
	return tx, nil
}

// ListOptions selects and pages records.
type ListOptions struct {
	State protocol.State // StateInvalid: every state
	// Unfinished lists every transaction not yet terminal, whatever its
	// state (State must then be StateInvalid).
	Unfinished bool
	Limit      int    // records per page; 0: 100
	After      string // continuation: the Next of the previous page
}

// listScan bounds the keys (records and votes) one List call reads: a
// state that few records are in (aborted, among many transactions kept
// for the retention window) is found over several calls, one read each,
// rather than in one call that reads every record kept, longer than any
// request deadline.
const listScan = scanChunk

// Page is one page of transactions, in id order, without their Branches.
type Page struct {
	Transactions []Transaction
	// Next is where the listing goes on (ListOptions.After); empty on the
	// last page. A page may hold fewer than Limit transactions, even none,
	// and still have a Next: each call reads a bounded number of keys.
	Next string
	// Revision is the one the page was read at: a watch from the next one
	// misses no change after the page.
	Revision int64
}

// List returns records in id order, filtered by state, one page at a time.
// It reads at one revision per call; pages of one listing may come from
// different revisions.
func (c *Client) List(ctx context.Context, opt ListOptions) (Page, error) {
	if opt.Limit <= 0 {
		opt.Limit = 100
	}
	if opt.State != protocol.StateInvalid && !opt.State.Valid() {
		return Page{}, fmt.Errorf("%w: state %v", ErrInvalidRequest, opt.State)
	}
	if opt.After != "" {
		if err := protocol.ValidateID(opt.After); err != nil {
			return Page{}, fmt.Errorf("%w: after: %w", ErrInvalidRequest, err)
		}
	}
	if opt.Unfinished && opt.State != protocol.StateInvalid {
		return Page{}, fmt.Errorf("%w: state %v with unfinished: give one or the other", ErrInvalidRequest, opt.State)
	}
	if opt.Unfinished || opt.State != protocol.StateInvalid && !opt.State.Terminal() {
		return c.listUnfinished(ctx, opt)
	}
	start, end := c.keys.Records()
	if opt.After != "" {
		// The first key after the record: ids sharing its prefix follow it.
		start = c.keys.Record(opt.After) + "\x00"
	}
	var page Page
	var err error
	if page.Revision, err = currentRevision(ctx, c.cli, c.opts); err != nil {
		return Page{}, fmt.Errorf("coordinator: list: %w", err)
	}
	scanned, last := 0, "" // keys read, and the id of the last record among them
	err = pageRange(ctx, c.cli, c.opts, start, end, page.Revision, nil, func(kvs []*mvccpb.KeyValue) (bool, error) {
		for _, kv := range kvs {
			k := c.keys.Parse(string(kv.Key))
			if k.Kind != protocol.KindRecord {
				continue
			}
			last = k.ID
			rec, err := protocol.DecodeRecord(kv.Value)
			if err != nil {
				return true, fmt.Errorf("%s: %w", kv.Key, err)
			}
			if page.add(opt, rec, kv) {
				return true, nil
			}
		}
		// Going on after the last record read reads its votes again, but
		// no record twice: an id the last one is a prefix of sorts between
		// that record and its votes.
		if scanned += len(kvs); scanned >= listScan && last != "" {
			page.Next = last
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		return Page{}, fmt.Errorf("coordinator: list: %w", err)
	}
	return page, nil
}

// add appends rec to the page if it is in the state opt asks for, and
// reports whether that filled the page.
func (p *Page) add(opt ListOptions, rec protocol.Record, kv *mvccpb.KeyValue) bool {
	if opt.State != protocol.StateInvalid && rec.State != opt.State || opt.Unfinished && rec.State.Terminal() {
		return false
	}
	p.Transactions = append(p.Transactions, Transaction{Record: rec, Revision: kv.ModRevision, BeginRevision: kv.CreateRevision})
	if len(p.Transactions) == opt.Limit {
		p.Next = rec.ID
		return true
	}
	return false
}

// listUnfinished is List for a state that is not terminal, or for all of
// them (Unfinished). Such a transaction always has an inbox key (see
// unfinishedIDs), so the candidates are the ids of the inbox keys, which
// under a steady load are a few in-flight transactions (and whatever is
// stuck), rather than every record and vote kept for the retention
// window, which a scan would read to find the few it wants.
func (c *Client) listUnfinished(ctx context.Context, opt ListOptions) (Page, error) {
	ids, rev, err := unfinishedIDs(ctx, c.cli, c.opts, true)
	if err != nil {
		return Page{}, fmt.Errorf("coordinator: list: %w", err)
	}
	ids = ids[sort.SearchStrings(ids, opt.After+"\x00"):]
	// The records, in id order, at the same revision.
	page := Page{Revision: rev}
	full := errors.New("page full")
	err = byid.Read(ctx, c.cli, policy(c.opts, "txn"), ids, func(id string) []clientv3.Op {
		return []clientv3.Op{clientv3.OpGet(c.keys.Record(id), clientv3.WithRev(rev))}
	}, func(resps []*etcdserverpb.ResponseOp) error {
		for _, r := range resps {
			kvs := r.GetResponseRange().Kvs
			if len(kvs) == 0 {
				continue // an inbox key without its record (only a hand could do that): nothing to list
			}
			rec, err := protocol.DecodeRecord(kvs[0].Value)
			if err != nil {
				return fmt.Errorf("%s: %w", kvs[0].Key, err)
			}
			if page.add(opt, rec, kvs[0]) {
				return full
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, full) {
		return Page{}, fmt.Errorf("coordinator: list: %w", err)
	}
	return page, nil
}

package console

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/concord-tx/concord/coordinator"
	"github.com/concord-tx/concord/internal/byid"
	"github.com/concord-tx/concord/internal/retry"
	"github.com/concord-tx/concord/protocol"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Bounds of one list page.
const (
	pageSize = 50
	// listBatch is how many keys one etcd read returns; a page takes
	// several when filters skip records.
	listBatch = 500
	// maxScan bounds the keys one page reads: a filter that matches
	// little shows what it found so far and a link to look further back.
	maxScan = 5000
)

// Filter selects transactions for the list. Zero fields select all.
type Filter struct {
	State       protocol.State
	Participant string
	IDPrefix    string
	Since       time.Time // created at or after
	Until       time.Time // created before
	// Before pages: only records created before this revision (the Next
	// of the previous page).
	Before int64
}

// ListPage is one page of the list, newest first.
type ListPage struct {
	Rows    []TxSummary
	Next    int64 // Before of the next page; 0: no more
	Scanned int   // keys read to fill the page (by state not terminal: records read by id)
}

// newest reads one page newest first: from the begins the Console has
// seen (see recent) as far as they reach, then from etcd's sorted read
// (list) for the records created before them. A console that has run for
// a while serves its first pages by reading their records by id, where
// the sorted read has etcd read and sort every record kept for the
// retention window, for each batch.
func (c *Console) newest(ctx context.Context, f Filter) (ListPage, error) {
	s, ok := c.hub.newest(f.Before, maxScan, f.IDPrefix)
	if !ok {
		return list(ctx, c.cli, c.opts.keys, f, ListPage{})
	}
	// Reads are retried within the request's time, as the client's are.
	p := retry.Policy{Timeout: c.opts.requestTimeout, MinBackoff: 10 * time.Millisecond, MaxBackoff: time.Second}
	page, done, err := listBegins(ctx, c.cli, p, c.opts.keys, f, s)
	if err != nil || done {
		return page, err
	}
	f.Before = s.low
	return list(ctx, c.cli, c.opts.keys, f, page)
}

// listBegins fills a page from the begins of s, newest first, reading
// their records by id (a record deleted since, or an id begun again, is
// skipped: the newer one has a begin of its own). done is false when
// every begin was read, s is whole and the page has room: the records
// created before them come next. Like list's, a page never ends inside a
// revision.
func listBegins(ctx context.Context, cli *clientv3.Client, p retry.Policy, keys protocol.Keys, f Filter, s span) (page ListPage, done bool, err error) {
	bs := s.begins
	ids := make([]string, len(bs))
	for i, b := range bs {
		ids[i] = b.id
	}
	var last int64 // the revision of the begins read so far, all of it
	next := 0      // the begin the next response is for
	stop := errors.New("the page is done")
	err = byid.Read(ctx, cli, p, ids, func(id string) []clientv3.Op {
		return []clientv3.Op{clientv3.OpGet(keys.Record(id))}
	}, func(resps []*etcdserverpb.ResponseOp) error {
		for _, r := range resps {
			b := bs[next]
			next++
			if b.rev != last {
				if last != 0 && (len(page.Rows) >= pageSize || page.Scanned >= maxScan) {
					page.Next = last
					return stop
				}
				last = b.rev
			}
			page.Scanned++
			kvs := r.GetResponseRange().GetKvs()
			if len(kvs) == 0 || kvs[0].CreateRevision != b.rev {
				continue
			}
			rec, err := protocol.DecodeRecord(kvs[0].Value)
			if err != nil {
				continue
			}
			if !f.Since.IsZero() && rec.Created.Before(f.Since) {
				return stop // older ones follow: no more pages
			}
			if f.matches(rec) {
				page.Rows = append(page.Rows, summarize(rec))
			}
		}
		return nil
	})
	switch {
	case errors.Is(err, stop):
		return page, true, nil
	case err != nil:
		return page, true, fmt.Errorf("list: %w", err)
	case len(page.Rows) >= pageSize || page.Scanned >= maxScan:
		page.Next = last
	case !s.whole:
		page.Next = s.low // every revision from low up was looked at
	default:
		return page, false, nil
	}
	return page, true, nil
}

// list reads one page newest first, going on from page: records sorted by
// creation revision, descending, in batches below the cursor, filtered
// here. Several records share a revision when their begins were committed
// together; a page never ends inside a revision, so the next one can
// start below it.
func list(ctx context.Context, cli *clientv3.Client, keys protocol.Keys, f Filter, page ListPage) (ListPage, error) {
	start, end := keys.Records()
	if f.IDPrefix != "" {
		start = keys.Record(f.IDPrefix)
		end = clientv3.GetPrefixRangeEnd(start)
	}
	top := f.Before - 1 // the highest creation revision still to read; -1: any
	var (
		rev  int64               // the store revision every batch reads at
		cut  int64               // once the page is full, the revision it ends with
		last int64               // the creation revision of the last key read
		seen = map[string]bool{} // keys of revision last already read
	)
	for page.Scanned < maxScan {
		opts := []clientv3.OpOption{
			clientv3.WithRange(end), clientv3.WithLimit(listBatch),
			clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortDescend),
		}
		if top >= 0 {
			opts = append(opts, clientv3.WithMaxCreateRev(top))
		}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := cli.Get(ctx, start, opts...)
		if err != nil {
			return page, fmt.Errorf("list: %w", err)
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		progress := false
		for _, kv := range resp.Kvs {
			key := string(kv.Key)
			if kv.CreateRevision == last && seen[key] {
				continue // read by the previous batch
			}
			if cut != 0 && kv.CreateRevision != cut {
				page.Next = cut
				return page, nil
			}
			if kv.CreateRevision != last {
				last = kv.CreateRevision
				clear(seen)
			}
			seen[key] = true
			progress = true
			page.Scanned++
			if keys.Parse(key).Kind != protocol.KindRecord {
				continue
			}
			rec, err := protocol.DecodeRecord(kv.Value)
			if err != nil {
				continue
			}
			if !f.Since.IsZero() && rec.Created.Before(f.Since) {
				return page, nil // older ones follow: no more pages
			}
			if !f.matches(rec) {
				continue
			}
			page.Rows = append(page.Rows, summarize(rec))
			if len(page.Rows) == pageSize {
				cut = kv.CreateRevision
			}
		}
		if !resp.More || !progress {
			return page, nil
		}
		top = last // inclusive: the rest of revision last may follow
	}
	// Scanned enough: the next page starts at the revision this one stopped
	// in, which may show a record of it twice rather than skip one.
	page.Next = last + 1
	return page, nil
}

// listUnfinished is list for a state that is not terminal. The
// transactions in it are read from the inbox keys (see
// coordinator.ListOptions): reads that grow with the work in flight,
// where list would sort every record kept for the retention window in
// etcd for each batch. They are sorted here, newest first, and a page
// ends between two begin revisions, as list's do.
func listUnfinished(ctx context.Context, client *coordinator.Client, f Filter) (ListPage, error) {
	all, err := client.List(ctx, coordinator.ListOptions{State: f.State, Limit: math.MaxInt32})
	if err != nil {
		return ListPage{}, fmt.Errorf("list: %w", err)
	}
	txs := all.Transactions
	slices.SortStableFunc(txs, func(a, b coordinator.Transaction) int { return cmp.Compare(b.BeginRevision, a.BeginRevision) })
	page := ListPage{Scanned: len(txs)}
	var last int64
	for _, tx := range txs {
		switch {
		case f.Before > 0 && tx.BeginRevision >= f.Before,
			!strings.HasPrefix(tx.ID, f.IDPrefix),
			!f.Since.IsZero() && tx.Created.Before(f.Since),
			!f.matches(tx.Record):
			continue
		case len(page.Rows) >= pageSize && tx.BeginRevision != last:
			page.Next = last
			return page, nil
		}
		page.Rows = append(page.Rows, summarize(tx.Record))
		last = tx.BeginRevision
	}
	return page, nil
}

func (f Filter) matches(rec protocol.Record) bool {
	switch {
	case f.State != protocol.StateInvalid && rec.State != f.State:
		return false
	case f.Participant != "" && !rec.Has(f.Participant):
		return false
	case !f.Until.IsZero() && !rec.Created.Before(f.Until):
		return false
	}
	return true
}

// query is f as URL query values, for links to other pages of the list.
func (f Filter) query(before int64) string {
	v := url.Values{}
	if f.State != protocol.StateInvalid {
		v.Set("state", f.State.String())
	}
	if f.Participant != "" {
		v.Set("participant", f.Participant)
	}
	if f.IDPrefix != "" {
		v.Set("id", f.IDPrefix)
	}
	if !f.Since.IsZero() {
		v.Set("since", f.Since.Format(time.RFC3339))
	}
	if !f.Until.IsZero() {
		v.Set("until", f.Until.Format(time.RFC3339))
	}
	if before > 0 {
		v.Set("before", strconv.FormatInt(before, 10))
	}
	return v.Encode()
}

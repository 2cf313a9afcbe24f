package integration

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/concord-tx/concord/coordinator"
	"github.com/concord-tx/concord/internal/testkit/etcdtest"
	"github.com/concord-tx/concord/protocol"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"google.golang.org/grpc"
)

func TestCommit(t *testing.T) {
	for _, n := range []int{2, 5} {
		t.Run(fmt.Sprintf("%d participants", n), func(t *testing.T) {
			e := newEnv(t)
			names := make([]string, n)
			recs := make([]*recorder, n)
			for i := range names {
				names[i] = fmt.Sprintf("p%d", i)
				recs[i] = newRecorder(names[i])
				e.participant(names[i], recs[i], false)
			}
			out, err := e.c.Do(e.ctx, coordinator.Request{Branches: branches(names...)})
			if err != nil {
				t.Fatal(err)
			}
			if !out.Committed() || out.Cause != protocol.CauseNone {
				t.Fatalf("outcome %+v, want committed", out)
			}
			tx := e.terminal(out.ID, 10*time.Second)
			if tx.State != protocol.StateCommitted || tx.Finished.IsZero() || tx.Decided.IsZero() {
				t.Fatalf("record %+v", tx.Record)
			}
			for i, b := range tx.Branches {
				if b.Participant != names[i] || b.Vote == nil || !b.Vote.Yes || !b.Acked {
					t.Errorf("branch %d: %+v", i, b)
				}
				if got := recs[i].phases(out.ID); !equal(got, "prepare", "commit") {
					t.Errorf("%s saw %v, want [prepare commit]", names[i], got)
				}
			}
			if n := e.inboxCount(); n != 0 {
				t.Errorf("%d inbox keys left after commit", n)
			}
		})
	}
}

func TestNoVoteAbortsAll(t *testing.T) {
	e := newEnv(t)
	a, b, c := newRecorder("a"), newRecorder("b"), newRecorder("c")
	c.refuse["*"] = errors.New("insufficient funds")
	for _, r := range []*recorder{a, b, c} {
		e.participant(r.name, r, false)
	}
	out, err := e.c.Do(e.ctx, coordinator.Request{Branches: branches("a", "b", "c")})
	if err != nil {
		t.Fatal(err)
	}
	if out.Committed() || out.Cause != protocol.CauseVoteNo || !strings.Contains(out.Reason, "c: insufficient funds") {
		t.Fatalf("outcome %+v, want aborted by c's no vote", out)
	}
	tx := e.terminal(out.ID, 10*time.Second)
	if tx.State != protocol.StateAborted {
		t.Fatalf("state %v", tx.State)
	}
	if v := tx.Branches[2].Vote; v == nil || v.Yes || v.Reason != "insufficient funds" {
		t.Errorf("c's vote %+v", v)
	}
	for _, r := range []*recorder{a, b, c} {
		got := r.phases(out.ID)
		if r.count(out.ID, "commit") != 0 || r.count(out.ID, "abort") != 1 {
			t.Errorf("%s saw %v, want one abort and no commit", r.name, got)
		}
	}
	if !equal(c.phases(out.ID), "prepare", "abort") {
		t.Errorf("c saw %v", c.phases(out.ID))
	}
}

// A participant that was down while the others decided gets Abort with no
// Prepare before it, and its acknowledgement finalises the transaction.
func TestAbortWithoutPrepare(t *testing.T) {
	e := newEnv(t)
	a, late := newRecorder("a"), newRecorder("late")
	a.refuse["*"] = errors.New("account closed")
	e.participant("a", a, false)
	out, err := e.c.Do(e.ctx, coordinator.Request{Branches: branches("a", "late")})
	if err != nil {
		t.Fatal(err)
	}
	if out.Committed() {
		t.Fatalf("committed without late's vote: %+v", out)
	}
	tx, err := e.c.Get(e.ctx, out.ID)
	if err != nil || tx.State != protocol.StateAborting || tx.Branches[1].Acked {
		t.Fatalf("before late starts: %+v, %v", tx, err)
	}
	e.participant("late", late, false)
	tx = e.terminal(out.ID, 10*time.Second)
	if tx.State != protocol.StateAborted {
		t.Fatalf("state %v", tx.State)
	}
	if got := late.phases(out.ID); !equal(got, "abort") {
		t.Errorf("late saw %v, want [abort]", got)
	}
}

func TestBeginIdempotent(t *testing.T) {
	e := newEnv(t)
	req := coordinator.Request{ID: "order-42", Branches: branches("a", "b")}
	first, err := e.c.Begin(e.ctx, req)
	if err != nil || !first.Created || first.ID != "order-42" {
		t.Fatalf("first begin: %+v, %v", first, err)
	}
	again, err := e.c.Begin(e.ctx, req)
	if err != nil || again.Created || again.Revision != first.Revision {
		t.Fatalf("second begin: %+v, %v (first %+v)", again, err, first)
	}
	other := coordinator.Request{ID: "order-42", Branches: branches("a", "c")}
	if _, err := e.c.Begin(e.ctx, other); !errors.Is(err, coordinator.ErrConflict) {
		t.Fatalf("begin with other branches: %v, want ErrConflict", err)
	}
	keys := e.keys()
	records := 0
	for k := range keys {
		if protocol.DefaultKeys().Parse(k).Kind == protocol.KindRecord {
			records++
		}
	}
	if records != 1 || len(keys) != 3 {
		t.Errorf("keys after three begins: %v", keys)
	}
	// Nobody votes; the participants start later and commit it.
	a, b := newRecorder("a"), newRecorder("b")
	e.participant("a", a, false)
	e.participant("b", b, false)
	out, err := e.c.Wait(e.ctx, "order-42")
	if err != nil || !out.Committed() {
		t.Fatalf("wait: %+v, %v", out, err)
	}
	if a.count("order-42", "prepare") != 1 || b.count("order-42", "prepare") != 1 {
		t.Errorf("prepares: a %v, b %v", a.phases("order-42"), b.phases("order-42"))
	}
}

func TestBadInput(t *testing.T) {
	e := newEnv(t)
	big := make([]byte, protocol.DefaultMaxPayload+1)
	tests := []struct {
		name string
		req  coordinator.Request
		want error
	}{
		{"empty branches", coordinator.Request{}, protocol.ErrNoBranches},
		{"duplicate participant", coordinator.Request{Branches: branches("a", "a")}, protocol.ErrDuplicateParticipant},
		{"oversized payload", coordinator.Request{Branches: []protocol.Branch{{Participant: "a", Payload: big}}}, protocol.ErrPayloadTooLarge},
		{"bad name", coordinator.Request{Branches: branches("Bank A")}, protocol.ErrInvalidName},
		{"bad id", coordinator.Request{ID: "a/b", Branches: branches("a")}, protocol.ErrInvalidID},
		{"timeout too short", coordinator.Request{Branches: branches("a"), Timeout: time.Millisecond}, protocol.ErrInvalidTimeout},
	}
	for _, tt := range tests {
		_, err := e.c.Begin(e.ctx, tt.req)
		if !errors.Is(err, coordinator.ErrInvalidRequest) || !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want ErrInvalidRequest and %v", tt.name, err, tt.want)
		}
	}
	if _, err := protocol.ParseState("finished"); !errors.Is(err, protocol.ErrInvalidState) {
		t.Errorf("unknown state: %v", err)
	}
	if _, err := e.c.List(e.ctx, coordinator.ListOptions{State: protocol.State(42)}); !errors.Is(err, coordinator.ErrInvalidRequest) {
		t.Errorf("list with unknown state: %v", err)
	}
	if _, err := e.c.Get(e.ctx, "nope"); !errors.Is(err, coordinator.ErrNotFound) {
		t.Errorf("get unknown: %v", err)
	}
	if _, err := e.c.Abort(e.ctx, "nope", ""); !errors.Is(err, coordinator.ErrNotFound) {
		t.Errorf("abort unknown: %v", err)
	}
	if keys := e.keys(); len(keys) != 0 {
		t.Errorf("bad input wrote %v", keys)
	}
}

// Listing the transactions in a state that is not terminal, or in any
// such state, reads the inbox keys, which only unfinished transactions
// hold, and their records: not every record kept for the retention
// window. Here 2,000 finished transactions are kept, and each such
// listing takes two requests (a scan would take a dozen pages of their
// records and votes); terminal states are still listed by scanning.
func TestListUnfinishedReadsInboxes(t *testing.T) {
	e := newEnv(t)
	a, b := newRecorder("a"), newRecorder("b")
	a.stuck["c1"], a.stuck["c2"] = true, true // committing: a's Commit keeps failing
	a.block["p1"] = make(chan struct{})       // preparing: a never votes
	a.refuse["x1"] = errors.New("no funds")   // aborting: a votes no, then its Abort keeps failing
	a.stuck["x1"] = true
	e.participant("a", a, false)
	e.participant("b", b, false)

	writeKept(t, e.cli, protocol.DefaultKeys(), 2000, time.Now().UTC())
	for _, id := range []string{"c1", "c2", "x1"} {
		if _, err := e.c.Do(e.ctx, coordinator.Request{ID: id, Branches: branches("a", "b")}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.c.Begin(e.ctx, coordinator.Request{ID: "p1", Branches: branches("a", "b")}); err != nil {
		t.Fatal(err)
	}

	var requests atomic.Int64
	count := grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		requests.Add(1)
		return invoker(ctx, method, req, reply, cc, opts...)
	})
	countStreams := grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		if method == "/etcdserverpb.KV/RangeStream" {
			requests.Add(1)
		}
		return streamer(ctx, desc, cc, method, opts...)
	})
	c, err := coordinator.NewClient(e.ctx, e.srv.Client(t, count, countStreams))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	list := func(opt coordinator.ListOptions) (ids []string, next string, n int64) {
		t.Helper()
		before := requests.Load()
		page, err := c.List(e.ctx, opt)
		if err != nil {
			t.Fatalf("list %+v: %v", opt, err)
		}
		if page.Revision == 0 {
			t.Errorf("list %+v: no revision", opt)
		}
		for _, tx := range page.Transactions {
			if opt.Unfinished && tx.State.Terminal() || !opt.Unfinished && tx.State != opt.State {
				t.Errorf("list %+v: %s is %v", opt, tx.ID, tx.State)
			}
			ids = append(ids, tx.ID)
		}
		return ids, page.Next, requests.Load() - before
	}
	for _, tc := range []struct {
		state protocol.State
		want  string
	}{
		{protocol.StateCommitting, "c1 c2"},
		{protocol.StatePreparing, "p1"},
		{protocol.StateAborting, "x1"},
		{protocol.StateInvalid, "c1 c2 p1 x1"}, // every unfinished state
	} {
		ids, next, n := list(coordinator.ListOptions{State: tc.state, Unfinished: tc.state == protocol.StateInvalid})
		// The revision to read at, the inbox keys (one page), and the
		// records by id (one Txn). A streamed read would count too.
		if strings.Join(ids, " ") != tc.want || next != "" || n != 3 {
			t.Errorf("%v: %v (next %q) in %d requests, want %s in 3", tc.state, ids, next, n, tc.want)
		}
	}
	// Pages, as for any listing: Next is the last id of a full page.
	if ids, next, _ := list(coordinator.ListOptions{State: protocol.StateCommitting, Limit: 1}); strings.Join(ids, " ") != "c1" || next != "c1" {
		t.Errorf("first page: %v, next %q", ids, next)
	}
	if ids, next, _ := list(coordinator.ListOptions{State: protocol.StateCommitting, Limit: 1, After: "c1"}); strings.Join(ids, " ") != "c2" || next != "c2" {
		t.Errorf("second page: %v, next %q", ids, next)
	}
	if ids, next, _ := list(coordinator.ListOptions{State: protocol.StateCommitting, Limit: 1, After: "c2"}); len(ids) != 0 || next != "" {
		t.Errorf("past the last: %v, next %q", ids, next)
	}
	if ids, next, _ := list(coordinator.ListOptions{State: protocol.StateCommitted, Limit: 3}); strings.Join(ids, " ") != "done-0000000 done-0000001 done-0000002" || next != "done-0000002" {
		t.Errorf("committed: %v, next %q", ids, next)
	}
}

// Against an etcd that refuses Txns of more than 16 operations, the
// records of unfinished transactions are read in smaller Txns: all 40
// are listed.
func TestListUnfinishedUnderLowerTxnLimit(t *testing.T) {
	e := newEnvOn(t, etcdtest.Start(t, func(c *embed.Config) { c.MaxTxnOps = 16 }), "")
	// No participant and no replica runs: each stays preparing.
	for i := range 40 {
		if _, err := e.c.Begin(e.ctx, coordinator.Request{ID: fmt.Sprintf("t%02d", i), Branches: branches("a", "b")}); err != nil {
			t.Fatal(err)
		}
	}
	page, err := e.c.List(e.ctx, coordinator.ListOptions{State: protocol.StatePreparing})
	if err != nil || len(page.Transactions) != 40 || page.Transactions[0].ID != "t00" || page.Transactions[39].ID != "t39" {
		t.Fatalf("%d listed, %v", len(page.Transactions), err)
	}
}

// TestListBoundsItsReads: a state few records are in is listed over
// several calls, each reading a bounded number of keys, and following Next
// lists each once, though every aborted id here sorts between a committed
// record and that record's votes (done-1 < done-1-a < done-1/vote/a).
func TestListBoundsItsReads(t *testing.T) {
	e := newEnv(t)
	const n = 3000
	keys := protocol.DefaultKeys()
	at := time.Now().UTC()
	writeKept(t, e.cli, keys, n, at)
	var puts []clientv3.Op
	for i := range n {
		id := fmt.Sprintf("done-%07d-a", i)
		v, err := protocol.EncodeRecord(protocol.Record{ID: id, State: protocol.StateAborted, Participants: []string{"a", "b"},
			Created: at, Deadline: at.Add(time.Minute), Decided: at, Finished: at, Cause: protocol.CauseOperator, Digest: protocol.Digest(branches("a", "b"))})
		if err != nil {
			t.Fatal(err)
		}
		if puts = append(puts, clientv3.OpPut(keys.Record(id), string(v))); len(puts) == 100 || i == n-1 {
			if _, err := e.cli.Txn(e.ctx).Then(puts...).Commit(); err != nil {
				t.Fatal(err)
			}
			puts = nil
		}
	}
	seen := map[string]int{}
	var sizes []int
	for after := ""; ; {
		page, err := e.c.List(e.ctx, coordinator.ListOptions{State: protocol.StateAborted, Limit: 2 * n, After: after})
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(page.Transactions))
		for _, tx := range page.Transactions {
			seen[tx.ID]++
			if tx.State != protocol.StateAborted {
				t.Errorf("%s is %v", tx.ID, tx.State)
			}
		}
		if after = page.Next; after == "" {
			break
		}
		if len(sizes) > 10 {
			t.Fatalf("more than 10 calls: %v", sizes)
		}
	}
	// 4 keys a pair (record, aborted sibling, two votes): about 1,024
	// pairs in the 4,096 keys a call reads, give or take etcd's last chunk.
	if len(sizes) < 2 || slices.Max(sizes) > 2048 {
		t.Errorf("pages of %v aborted transactions, want several of about 1,024", sizes)
	}
	if len(seen) != n {
		t.Errorf("%d aborted ids listed, want %d", len(seen), n)
	}
	for id, c := range seen {
		if c != 1 {
			t.Errorf("%s listed %d times", id, c)
		}
	}
}

func TestListAndOperatorAbort(t *testing.T) {
	e := newEnv(t)
	a := newRecorder("a")
	a.block["*"] = make(chan struct{}) // never votes
	e.participant("a", a, false)
	e.participant("b", newRecorder("b"), false)
	var ids []string
	for i := range 5 {
		b, err := e.c.Begin(e.ctx, coordinator.Request{ID: fmt.Sprintf("t%d", i), Branches: branches("a", "b")})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, b.ID)
	}
	page, err := e.c.List(e.ctx, coordinator.ListOptions{State: protocol.StatePreparing, Limit: 3})
	if err != nil || len(page.Transactions) != 3 || page.Next != "t2" {
		t.Fatalf("first page: %+v, %v", page, err)
	}
	page, err = e.c.List(e.ctx, coordinator.ListOptions{State: protocol.StatePreparing, Limit: 3, After: page.Next})
	if err != nil || len(page.Transactions) != 2 || page.Transactions[0].ID != "t3" || page.Next != "" {
		t.Fatalf("second page: %+v, %v", page, err)
	}
	rec, err := e.c.Abort(e.ctx, "t0", "")
	if err != nil || rec.State != protocol.StateAborting || rec.Cause != protocol.CauseOperator {
		t.Fatalf("abort: %+v, %v", rec, err)
	}
	// Aborting again returns the same decision.
	if rec, err := e.c.Abort(e.ctx, "t0", ""); err != nil || !rec.State.Decided() || rec.Cause != protocol.CauseOperator {
		t.Fatalf("second abort: %+v, %v", rec, err)
	}
	tx := e.terminal("t0", 10*time.Second)
	if tx.State != protocol.StateAborted || a.count("t0", "abort") != 1 {
		t.Fatalf("t0: %+v, a saw %v", tx, a.phases("t0"))
	}
	page, err = e.c.List(e.ctx, coordinator.ListOptions{State: protocol.StateAborted})
	if err != nil || len(page.Transactions) != 1 || page.Transactions[0].ID != "t0" {
		t.Fatalf("aborted list: %+v, %v", page, err)
	}
	// A committed transaction refuses abort.
	close(a.block["*"])
	out, err := e.c.Wait(e.ctx, "t1")
	if err != nil || !out.Committed() {
		t.Fatalf("t1: %+v %v", out, err)
	}
	if _, err := e.c.Abort(e.ctx, "t1", ""); !errors.Is(err, coordinator.ErrAlreadyCommitted) {
		t.Fatalf("abort of committed: %v", err)
	}
}

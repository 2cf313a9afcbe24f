package integration

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/concord-tx/concord/coordinator"
	"github.com/concord-tx/concord/internal/testkit/poll"
	"github.com/concord-tx/concord/protocol"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestStorageLimits: transactions addressed to a participant nobody runs
// pile up in its inbox only up to the limits; past them Begin fails with a
// *LimitError naming the limit and the participant, and writes nothing,
// while transactions to other participants go on. A new Client counts
// what is already in etcd.
func TestStorageLimits(t *testing.T) {
	e := newEnv(t)
	a := newRecorder("a")
	e.participant("a", a, false)
	limits := coordinator.StorageLimits{MaxPendingMessages: 3, MaxPendingBytes: -1, MaxUndecided: -1}
	c, err := coordinator.NewClient(e.ctx, e.cli, coordinator.WithStorageLimits(limits))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// No replica runs: nothing aborts these, so they stay undecided and
	// their messages stay in the inbox of "ghost".
	for i := range 3 {
		if _, err := c.Begin(e.ctx, coordinator.Request{ID: fmt.Sprintf("ghost-%d", i), Branches: branches("ghost"), Timeout: time.Hour}); err != nil {
			t.Fatalf("begin %d: %v", i, err)
		}
	}
	// The counts come from a watch, a moment behind the begins.
	poll.Until(t, 10*time.Second, "the client counts ghost's messages", func() (bool, string) {
		u := c.Usage("ghost")
		return u.PendingMessages == 3 && u.Undecided == 3 && u.PendingBytes > 0, fmt.Sprintf("%+v", u)
	})
	var lerr *coordinator.LimitError
	_, err = c.Begin(e.ctx, coordinator.Request{ID: "ghost-over", Branches: branches("ghost"), Timeout: time.Hour})
	if !errors.Is(err, coordinator.ErrLimit) || !errors.As(err, &lerr) {
		t.Fatalf("fourth begin to ghost: %v, expected ErrLimit", err)
	}
	if lerr.Limit != coordinator.LimitPendingMessages || lerr.Participant != "ghost" || lerr.Value != 3 || lerr.Max != 3 {
		t.Errorf("limit error %+v, expected pending_messages of ghost at 3 of 3", lerr)
	}
	keys := protocol.DefaultKeys()
	for k := range e.keys() {
		if keys.Parse(k).ID == "ghost-over" {
			t.Errorf("key %s written by a refused Begin", k)
		}
	}
	if out, err := c.Do(e.ctx, coordinator.Request{ID: "to-a", Branches: branches("a")}); err != nil || !out.Committed() {
		t.Errorf("a transaction to a running participant: %+v, %v", out, err)
	}

	// Bytes, and undecided overall, counted by a new Client from what
	// etcd holds.
	bytesLimited, err := coordinator.NewClient(e.ctx, e.cli, coordinator.WithStorageLimits(coordinator.StorageLimits{MaxPendingMessages: -1, MaxPendingBytes: 500, MaxUndecided: -1}))
	if err != nil {
		t.Fatal(err)
	}
	defer bytesLimited.Close()
	_, err = bytesLimited.Begin(e.ctx, coordinator.Request{ID: "ghost-bytes", Branches: branches("ghost")})
	if !errors.As(err, &lerr) || lerr.Limit != coordinator.LimitPendingBytes || lerr.Participant != "ghost" || lerr.Value < 500 {
		t.Errorf("begin past the byte limit: %v, expected pending_bytes of ghost", err)
	}
	undecided, err := coordinator.NewClient(e.ctx, e.cli, coordinator.WithStorageLimits(coordinator.StorageLimits{MaxUndecided: 3}))
	if err != nil {
		t.Fatal(err)
	}
	defer undecided.Close()
	_, err = undecided.Begin(e.ctx, coordinator.Request{ID: "one-too-many", Branches: branches("a")})
	if !errors.As(err, &lerr) || lerr.Limit != coordinator.LimitUndecided || lerr.Participant != "" || lerr.Value != 3 || !strings.Contains(err.Error(), "3 transactions undecided, at most 3") {
		t.Errorf("begin past the undecided limit: %v (%+v), expected undecided at 3 of 3", err, lerr)
	}
	// With every limit off, nothing is counted and nothing refused.
	unlimited, err := coordinator.NewClient(e.ctx, e.cli, coordinator.WithStorageLimits(coordinator.StorageLimits{MaxPendingMessages: -1, MaxPendingBytes: -1, MaxUndecided: -1}))
	if err != nil {
		t.Fatal(err)
	}
	defer unlimited.Close()
	if _, err := unlimited.Begin(e.ctx, coordinator.Request{ID: "ghost-unlimited", Branches: branches("ghost"), Timeout: time.Hour}); err != nil {
		t.Errorf("begin with every limit off: %v", err)
	}
	if u := unlimited.Usage("ghost"); u.PendingMessages != 0 || u.Undecided != 0 {
		t.Errorf("usage counted with every limit off: %+v", u)
	}
	if _, err := e.c.Abort(e.ctx, "ghost-unlimited", "test"); err != nil {
		t.Fatal(err)
	}
	// Once the ghost's transactions are decided they no longer count as
	// undecided.
	for i := range 3 {
		if _, err := e.c.Abort(e.ctx, fmt.Sprintf("ghost-%d", i), "test"); err != nil {
			t.Fatal(err)
		}
	}
	poll.Until(t, 10*time.Second, "a begin accepted once nothing is undecided", func() (bool, string) {
		out, err := undecided.Do(e.ctx, coordinator.Request{ID: "one-more", Branches: branches("a")})
		return err == nil && out.Committed(), fmt.Sprint(out, err)
	})
}

// TestStorageCountsAfterCompaction: a Client cut off from etcd while
// inboxes change and etcd compacts its history cannot resume its watch;
// it reads the inboxes again, and its counts match what etcd holds.
func TestStorageCountsAfterCompaction(t *testing.T) {
	e := newEnv(t)
	px := newProxy(t, e.srv.Endpoints[0][len("http://"):])
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{px.endpoint()}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	c, err := coordinator.NewClient(e.ctx, cli, coordinator.WithStorageLimits(coordinator.StorageLimits{MaxPendingMessages: 100}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	begin := func(id string) {
		t.Helper()
		if _, err := e.c.Begin(e.ctx, coordinator.Request{ID: id, Branches: branches("ghost"), Timeout: time.Hour}); err != nil {
			t.Fatalf("begin %s: %v", id, err)
		}
	}
	usage := func(msgs, undecided int) {
		t.Helper()
		poll.Until(t, 20*time.Second, fmt.Sprintf("%d messages, %d undecided", msgs, undecided), func() (bool, string) {
			u := c.Usage("ghost")
			return u.PendingMessages == msgs && u.Undecided == undecided, fmt.Sprintf("%+v", u)
		})
	}
	begin("seen-0")
	begin("seen-1")
	usage(2, 2)

	px.partition()
	// Missed by the watch: one decided (its message rewritten), two more
	// begun, and the history of all three compacted away.
	if _, err := e.c.Abort(e.ctx, "seen-0", "test"); err != nil {
		t.Fatal(err)
	}
	begin("missed-0")
	begin("missed-1")
	if _, err := e.srv.Compact(e.ctx, e.cli); err != nil {
		t.Fatal(err)
	}
	px.heal()
	usage(4, 3)
}

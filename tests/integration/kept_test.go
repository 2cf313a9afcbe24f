package integration

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/concord-tx/concord/coordinator"
	"github.com/concord-tx/concord/internal/testkit/poll"
	"github.com/concord-tx/concord/protocol"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// TestNewLeaderWithManyKept measures what a replica that becomes leader
// reads before it acts, with CONCORD_KEPT finished transactions kept for
// the retention window (a record and two votes each): how soon it aborts
// a transaction naming a participant nobody runs, and how soon its
// background read has found every finished record. Opt-in: writing the
// records takes a while, and the times it prints are this machine's.
func TestNewLeaderWithManyKept(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("CONCORD_KEPT"))
	if n <= 0 {
		t.Skip("opt-in: CONCORD_KEPT=200000 go test ./tests/integration -run NewLeaderWithManyKept -v -timeout 15m")
	}
	e := newEnv(t)
	e.participant("a", newRecorder("a"), false)
	keys := protocol.DefaultKeys()
	start := time.Now()
	writeKept(t, e.cli, keys, n, time.Now().UTC().Add(-10*time.Minute))
	t.Logf("wrote %d finished transactions in %v", n, time.Since(start).Round(time.Millisecond))
	begun, err := e.c.Begin(e.ctx, coordinator.Request{ID: "lost", Branches: branches("a", "nobody"), Timeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.InfoLevel)
	start = time.Now()
	r, err := coordinator.NewReplica(e.srv.Client(t), coordinator.WithLeaseTTL(ttl), coordinator.WithRetention(time.Hour), coordinator.WithLogger(zap.New(core)))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	poll.Until(t, 5*time.Minute, "the participant-lost abort", func() (bool, string) {
		tx, err := e.c.Get(e.ctx, begun.ID)
		if err != nil {
			return false, err.Error()
		}
		return tx.State.Decided() && tx.Cause == protocol.CauseParticipantLost, fmt.Sprintf("%v %v", tx.State, tx.Cause)
	})
	aborted := time.Since(start)
	poll.Until(t, 10*time.Minute, "the finished records found", func() (bool, string) {
		return logs.FilterMessage("finished transactions found").Len() > 0, "not yet"
	})
	found := logs.FilterMessage("finished transactions found").All()[0]
	if got := found.ContextMap()["terminal"]; got != int64(n) {
		t.Errorf("the background read found %v finished transactions, want %d", got, n)
	}
	t.Logf("%d finished transactions kept: aborted the lost transaction after %v; found the finished ones after %v",
		n, aborted.Round(time.Millisecond), found.Time.Sub(start).Round(time.Millisecond))
}

// TestListWithManyKept measures listing a state no record kept is in
// (aborted), with CONCORD_KEPT committed transactions kept: each call reads
// a bounded number of keys, so the listing takes many short calls rather
// than one that outlasts a request's deadline. Opt-in, as above.
func TestListWithManyKept(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("CONCORD_KEPT"))
	if n <= 0 {
		t.Skip("opt-in: CONCORD_KEPT=200000 go test ./tests/integration -run ListWithManyKept -v -timeout 15m")
	}
	e := newEnv(t)
	writeKept(t, e.cli, protocol.DefaultKeys(), n, time.Now().UTC())
	start := time.Now()
	var calls int
	var longest time.Duration
	for after := ""; ; calls++ {
		t0 := time.Now()
		page, err := e.c.List(e.ctx, coordinator.ListOptions{State: protocol.StateAborted, After: after})
		if err != nil {
			t.Fatal(err)
		}
		longest = max(longest, time.Since(t0))
		if len(page.Transactions) != 0 {
			t.Fatalf("%d aborted transactions listed, want none", len(page.Transactions))
		}
		if after = page.Next; after == "" {
			break
		}
	}
	t.Logf("%d committed transactions kept: listing the aborted ones took %d calls, the longest %v, %v in all",
		n, calls+1, longest.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

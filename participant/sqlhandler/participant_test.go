package sqlhandler_test

import (
	"context"
	"database/sql"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/concord-tx/concord/coordinator"
	"github.com/concord-tx/concord/internal/testkit/etcdtest"
	"github.com/concord-tx/concord/internal/testkit/poll"
	"github.com/concord-tx/concord/participant"
	"github.com/concord-tx/concord/protocol"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Through a real participant and coordinator: a Prepare whose database
// fails is retried, not voted no. It commits once the database answers,
// and, if it never does before the deadline, the transaction aborts for
// the deadline, not for a no this participant never decided.
func TestParticipantRetriesADatabaseFailure(t *testing.T) {
	etcd := etcdtest.Start(t)
	cli, err := clientv3.New(clientv3.Config{Endpoints: etcd.Endpoints, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	db := openSQLite(t)
	s := newStock(t, db, 100)
	var failures atomic.Int64 // Prepare fails while it is positive
	s.prepareHook = func(context.Context, *sql.Tx, participant.Tx) error {
		if failures.Add(-1) >= 0 {
			return fmt.Errorf("connection lost: %w", participant.ErrRetry)
		}
		return nil
	}
	h := newHandler(t, db, s.funcs())
	p, err := participant.New(cli, "shop", h, participant.WithRetryBackoff(10*time.Millisecond, 50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	replica, err := coordinator.NewReplica(cli)
	if err != nil {
		t.Fatal(err)
	}
	defer replica.Close()
	c, err := coordinator.NewClient(ctx, cli)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := p.WaitActive(ctx); err != nil {
		t.Fatal(err)
	}
	do := func(id string, timeout time.Duration) coordinator.Outcome {
		t.Helper()
		out, err := c.Do(ctx, coordinator.Request{ID: id, Timeout: timeout, Branches: []protocol.Branch{{Participant: "shop", Payload: []byte(fmt.Sprint(amountOfID(id)))}}})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}

	failures.Store(3)
	if out := do("retried-5", 10*time.Second); !out.Committed() {
		t.Fatalf("retried-5: %+v, want committed after the retries", out)
	}
	if s.prepares.Load() != 4 {
		t.Errorf("user prepares %d, want 4 (3 failures, 1 yes)", s.prepares.Load())
	}

	failures.Store(1 << 30)
	out := do("down-7", time.Second)
	if out.Committed() || out.Cause != protocol.CauseDeadline {
		t.Fatalf("down-7: %+v, want aborted for the deadline", out)
	}
	poll.Until(t, 10*time.Second, "decisions applied", func() (bool, string) {
		byID := make(map[string]string)
		recs, err := h.Records(ctx)
		if err != nil {
			return false, err.Error()
		}
		for _, r := range recs {
			byID[r.ID] = r.Phase.String()
		}
		return byID["retried-5"] == "committed" && byID["down-7"] == "aborted", fmt.Sprint(byID)
	})
	if qty, held := s.item(t); qty != 95 || held != 0 {
		t.Errorf("qty %d held %d, want 95 and 0", qty, held)
	}
	if s.aborts.Load() != 0 {
		t.Errorf("user aborts %d: down-7 never prepared, nothing to release", s.aborts.Load())
	}
}

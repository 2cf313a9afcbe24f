package integration

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/concord-tx/concord/coordinator"
	"github.com/concord-tx/concord/internal/testkit/poll"
	"github.com/concord-tx/concord/participant"
	"github.com/concord-tx/concord/protocol"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// unfinishedObserver keeps the last age of the oldest unfinished
// transaction a replica reported.
type unfinishedObserver struct {
	coordinator.NopObserver
	oldest atomic.Int64
}

func (o *unfinishedObserver) Unfinished(d time.Duration) { o.oldest.Store(int64(d)) }

// TestFailingCommitIsReported: a participant whose Commit keeps failing
// publishes which participant, since when, how many attempts and the last
// error in P/<id>/failure/<participant>, rewritten at most once per report
// interval and not once per retry; the coordinator's Get returns it, and
// the leading replica reports the transaction's age as the oldest
// unfinished one. When the handler succeeds, its acknowledgement removes
// the report and the age goes back to 0.
func TestFailingCommitIsReported(t *testing.T) {
	e := newEnv(t)
	obs := &unfinishedObserver{}
	e.replica("replica", coordinator.WithObserver(obs))
	a, b := newRecorder("a"), newRecorder("b")
	a.stuck["held"] = true
	const interval = 500 * time.Millisecond
	e.participant("a", a, false, participant.WithFailureReportInterval(interval))
	e.participant("b", b, false)
	out, err := e.c.Do(e.ctx, coordinator.Request{ID: "held", Branches: branches("a", "b")})
	if err != nil || !out.Committed() {
		t.Fatalf("do: %+v, %v", out, err)
	}
	start := time.Now()
	var tx coordinator.Transaction
	poll.Until(t, 10*time.Second, "the failure reported", func() (bool, string) {
		tx, err = e.c.Get(e.ctx, "held")
		if err != nil {
			return false, err.Error()
		}
		return len(tx.Failures) == 1 && tx.Failures[0].Attempts >= 3, fmt.Sprintf("%+v", tx.Failures)
	})
	f := tx.Failures[0]
	if f.Participant != "a" || f.Op != protocol.OpCommit || f.LastError != "disk busy" || f.Since.IsZero() || f.Updated.Before(f.Since) {
		t.Errorf("failure %+v, expected a's commit failing with \"disk busy\"", f)
	}
	if tx.State != protocol.StateCommitting {
		t.Errorf("state %v while a fails, expected committing", tx.State)
	}
	poll.Until(t, 10*time.Second, "the replica reports the oldest unfinished", func() (bool, string) {
		d := time.Duration(obs.oldest.Load())
		return d > 0, d.String()
	})

	// Let it fail many times: the report is rewritten once per interval
	// or so, far fewer times than the handler is retried.
	poll.Until(t, 20*time.Second, "a's commit failed 10 times", func() (bool, string) {
		n := a.count("held", "commit-failed")
		return n >= 10, fmt.Sprint(n, " failures")
	})
	key := protocol.DefaultKeys().Failure("held", "a")
	resp, err := e.cli.Get(e.ctx, key)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("report key %s: %v, %v", key, resp, err)
	}
	elapsed := time.Since(start)
	writes := resp.Kvs[0].Version
	attempts := a.count("held", "commit-failed")
	if maxWrites := int64(elapsed/interval) + 2; writes > maxWrites {
		t.Errorf("report written %d times in %v, expected at most %d (one per %v)", writes, elapsed, maxWrites, interval)
	}
	if int64(attempts) <= writes {
		t.Errorf("%d failed attempts and %d report writes: expected fewer writes than attempts", attempts, writes)
	}
	got, err := protocol.DecodeFailure(resp.Kvs[0].Value)
	if err != nil || got.Attempts < 2 {
		t.Errorf("stored report %+v, %v", got, err)
	}

	// The handler recovers: the acknowledgement finishes the transaction
	// and takes the report with it.
	a.mu.Lock()
	delete(a.stuck, "held")
	a.mu.Unlock()
	tx = e.terminal("held", 20*time.Second)
	if tx.State != protocol.StateCommitted || len(tx.Failures) != 0 {
		t.Errorf("after recovery: %v with failures %+v", tx.State, tx.Failures)
	}
	if resp, err := e.cli.Get(e.ctx, key, clientv3.WithCountOnly()); err != nil || resp.Count != 0 {
		t.Errorf("report key left after the acknowledgement: %v, %v", resp, err)
	}
	poll.Until(t, 10*time.Second, "the oldest unfinished back to 0", func() (bool, string) {
		d := time.Duration(obs.oldest.Load())
		return d == 0, d.String()
	})
}

// TestFailureReportGoesWithTheRecord: a report left behind by an instance
// that died while its Abort kept failing is deleted with the record, once
// the replica has finished the abandoned transaction and its retention has
// passed.
func TestFailureReportGoesWithTheRecord(t *testing.T) {
	e := newEnv(t)
	e.replica("replica", coordinator.WithRetention(time.Second))
	a := newRecorder("a")
	a.block["dropped"] = make(chan struct{}) // a never votes
	a.stuck["dropped"] = true
	_, acli := e.participant("a", a, false)
	if _, err := e.c.Begin(e.ctx, coordinator.Request{ID: "dropped", Branches: branches("a"), Timeout: time.Hour}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "a preparing", func() (bool, string) { return a.count("dropped", "prepare") == 1, fmt.Sprint(a.phases("dropped")) })
	if _, err := e.c.Abort(e.ctx, "dropped", "test"); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "a's failing abort reported", func() (bool, string) {
		tx, err := e.c.Get(e.ctx, "dropped")
		return err == nil && len(tx.Failures) == 1 && tx.Failures[0].Op == protocol.OpAbort, fmt.Sprintf("%+v %v", tx.Failures, err)
	})
	kill(acli)
	keys := protocol.DefaultKeys()
	poll.Until(t, 30*time.Second, "the record, the report and the inbox key deleted", func() (bool, string) {
		var left []string
		for k := range e.keys() {
			if keys.Parse(k).ID == "dropped" {
				left = append(left, k)
			}
		}
		return len(left) == 0, fmt.Sprint(left)
	})
}

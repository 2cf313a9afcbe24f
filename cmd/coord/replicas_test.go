package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/concord-tx/concord/httpapi"
	"github.com/concord-tx/concord/internal/testkit/etcdtest"
	"github.com/concord-tx/concord/internal/testkit/poll"
	"github.com/concord-tx/concord/protocol"
)

// attempt is one transaction sent during the load.
type attempt struct {
	id      string
	replica string
	want    protocol.State // the outcome its branches lead to
	cause   protocol.Cause
	out     httpapi.Outcome
	err     error
}

// TestReplicaKilledMidLoad runs two replicas on one external etcd, kills
// the leader with SIGKILL while both serve transactions, and checks that
// the other finishes every transaction: each answered one reaches the
// terminal state of its answer, each unanswered one is terminal or was
// never begun, and the survivor does the recovery the dead one would have.
func TestReplicaKilledMidLoad(t *testing.T) {
	t.Parallel()
	etcd := etcdtest.Start(t)
	common := []string{"--etcd", etcd.Endpoints[0], "--prefix", "/kill", "--lease-ttl", "2s", "--timeout", "5s", "--request-timeout", "2s"}
	ctx := context.Background()
	a := startCoord(t, "coord-a", nil, common...)
	poll.Until(t, 10*time.Second, "coord-a leads", func() (bool, string) { return a.leader(ctx), "not leading" })
	b := startCoord(t, "coord-b", nil, common...)
	if b.leader(ctx) {
		t.Fatal("two leaders")
	}

	cli := etcd.Client(t)
	startBank(t, cli, "/kill", "bank-a", bank{})
	startBank(t, cli, "/kill", "bank-b", bank{})
	// "late" is not running yet: transactions with it are aborted by the
	// leader (participant lost) and finish once it starts.

	var (
		mu       sync.Mutex
		attempts []*attempt
		n        atomic.Int64
		done     atomic.Int64 // answered or failed
		killed   atomic.Bool
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				i := n.Add(1)
				at := &attempt{id: fmt.Sprintf("k-%04d", i), replica: "coord-a", want: protocol.StateCommitted}
				api := a.api
				if killed.Load() || i%2 == 0 {
					at.replica, api = "coord-b", b.api
				}
				req := httpapi.BeginRequest{ID: at.id, Branches: []httpapi.BranchRequest{{Participant: "bank-a"}, {Participant: "bank-b"}}}
				switch i % 5 {
				case 3:
					req.Branches[1].Payload = []byte(`"overdraft"`)
					at.want, at.cause = protocol.StateAborted, protocol.CauseVoteNo
				case 4:
					req.Branches[1].Participant = "late"
					at.want, at.cause = protocol.StateAborted, protocol.CauseParticipantLost
				}
				at.out, at.err = api.Begin(ctx, req, true)
				mu.Lock()
				attempts = append(attempts, at)
				mu.Unlock()
				done.Add(1)
			}
		}()
	}
	poll.Until(t, 30*time.Second, "20 transactions before the kill", func() (bool, string) { return done.Load() >= 20, strconv.FormatInt(done.Load(), 10) })
	killed.Store(true)
	if code := a.stop(t, syscall.SIGKILL, 10*time.Second); code != -1 {
		t.Fatalf("coord-a exit status %d after SIGKILL", code)
	}
	before := done.Load()
	poll.Until(t, 60*time.Second, "20 transactions after the kill", func() (bool, string) {
		return done.Load() >= before+20, strconv.FormatInt(done.Load()-before, 10)
	})
	close(stop)
	wg.Wait()
	startBank(t, cli, "/kill", "late", bank{})

	if !b.leader(ctx) {
		t.Fatal("coord-b does not lead after coord-a died")
	}
	unanswered := 0
	for _, at := range attempts {
		var apiErr *httpapi.Error
		switch {
		case at.err == nil:
			if at.out.State != at.want || at.out.Cause != at.cause {
				t.Errorf("%s via %s: answered %+v, want %v (%s)", at.id, at.replica, at.out, at.want, at.cause)
			}
		case at.replica == "coord-a" && !errors.As(at.err, &apiErr):
			// Cut by the kill: begun or not, it must not be left half done.
			unanswered++
			if _, err := b.api.Get(ctx, at.id); errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound {
				continue
			}
		default:
			t.Errorf("%s via %s: %v", at.id, at.replica, at.err)
			continue
		}
		tx := waitTerminal(t, b.api, at.id)
		if tx.State != at.want {
			t.Errorf("%s: %v, want %v", at.id, tx.State, at.want)
		}
	}
	for _, s := range []protocol.State{protocol.StatePreparing, protocol.StateCommitting, protocol.StateAborting} {
		if l, err := b.api.List(ctx, httpapi.ListOptions{State: s}); err != nil || len(l.Transactions) != 0 {
			t.Errorf("%s transactions left: %+v %v", s, l, err)
		}
	}
	// The survivor aborted transactions of the missing participant begun
	// after the kill: recovery moved to it.
	if v := metric(t, b.url, `concord_recovery_actions_total{action="abort_participant_lost"}`); v < 1 {
		t.Errorf("coord-b recovery actions %v, want at least 1", v)
	}
	t.Logf("%d transactions, %d cut by the kill", len(attempts), unanswered)
}

// TestGracefulStopHandsOver: a replica stopped with SIGTERM revokes its
// lease, so the other leads at once rather than after the lease TTL.
func TestGracefulStopHandsOver(t *testing.T) {
	t.Parallel()
	etcd := etcdtest.Start(t)
	common := []string{"--etcd", etcd.Endpoints[0], "--prefix", "/handover", "--lease-ttl", "20s"}
	ctx := context.Background()
	a := startCoord(t, "coord-a", nil, common...)
	poll.Until(t, 10*time.Second, "coord-a leads", func() (bool, string) { return a.leader(ctx), "not leading" })
	b := startCoord(t, "coord-b", nil, common...)

	start := time.Now()
	if code := a.stop(t, syscall.SIGTERM, 20*time.Second); code != 0 {
		t.Fatalf("coord-a exit status %d after SIGTERM", code)
	}
	poll.Until(t, 5*time.Second, "coord-b leads well within the 20s lease TTL", func() (bool, string) { return b.leader(ctx), "not leading" })
	t.Logf("coord-b leads %v after the SIGTERM", time.Since(start))
	assertInOrder(t, a.logs, "http server stopped", "replica stopped; its lease is revoked")
}

// metric reads one sample from a coordinator's /metrics.
func metric(t *testing.T, url, name string) float64 {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("no %s in /metrics", name)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

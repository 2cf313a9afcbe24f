package integration

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/concord-tx/concord/coordinator"
	"github.com/concord-tx/concord/internal/testkit/etcdtest"
	"github.com/concord-tx/concord/internal/testkit/poll"
	"github.com/concord-tx/concord/participant"
	"github.com/concord-tx/concord/protocol"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// TestNoSpaceRefusedAndRecovered fills a small etcd quota. Concord then
// refuses new work at once with ErrNoSpace (no hang, no retry until the
// caller's deadline) and writes nothing of it; once an operator deletes
// data, compacts, defragments and disarms the alarm (README, "When etcd is
// full"), transactions commit again.
func TestNoSpaceRefusedAndRecovered(t *testing.T) {
	srv := etcdtest.Start(t, func(c *embed.Config) { c.QuotaBackendBytes = 2 << 20 })
	e := newEnvOn(t, srv, "")
	e.replica("replica")
	a, b := newRecorder("a"), newRecorder("b")
	release := make(chan struct{})
	b.block["held"] = release
	e.participant("a", a, false)
	core, logs := observer.New(zap.InfoLevel)
	e.participant("b", b, false, participant.WithLogger(zap.New(core)))
	if out, err := e.c.Do(e.ctx, coordinator.Request{ID: "before", Branches: branches("a", "b")}); err != nil || !out.Committed() {
		t.Fatalf("before the quota filled: %+v, %v", out, err)
	}
	// "held" is begun now; b votes only once etcd is full.
	if _, err := e.c.Begin(e.ctx, coordinator.Request{ID: "held", Branches: branches("a", "b"), Timeout: time.Hour}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "a votes on held", func() (bool, string) {
		tx, err := e.c.Get(e.ctx, "held")
		return err == nil && len(tx.Branches) == 2 && tx.Branches[0].Vote != nil, fmt.Sprintf("%+v %v", tx.Branches, err)
	})

	// Fill the quota with data of somebody else's.
	junk := strings.Repeat("x", 64<<10)
	filled := false
	for i := 0; i < 200 && !filled; i++ {
		_, err := e.cli.Put(e.ctx, fmt.Sprintf("/junk/%03d", i), junk)
		switch {
		case errors.Is(err, rpctypes.ErrNoSpace):
			filled = true
		case err != nil:
			t.Fatalf("filling: %v", err)
		}
	}
	if !filled {
		t.Fatal("12 MiB written and no NOSPACE alarm: the quota is not in force")
	}

	// New work is refused at once, and nothing of it is written.
	ctx, cancel := context.WithTimeout(e.ctx, 20*time.Second)
	defer cancel()
	start := time.Now()
	_, err := e.c.Begin(ctx, coordinator.Request{ID: "refused", Branches: branches("a", "b")})
	if !errors.Is(err, coordinator.ErrNoSpace) {
		t.Fatalf("Begin with etcd full: %v, expected ErrNoSpace", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Begin took %v to refuse, expected at once", took)
	}
	if _, err := e.c.Do(ctx, coordinator.Request{ID: "refused-do", Branches: branches("a")}); !errors.Is(err, coordinator.ErrNoSpace) {
		t.Errorf("Do with etcd full: %v, expected ErrNoSpace", err)
	}
	keys := protocol.DefaultKeys()
	for k := range e.keys() {
		if id := keys.Parse(k).ID; id == "refused" || id == "refused-do" {
			t.Errorf("key %s written although Begin was refused", k)
		}
	}
	if _, err := e.c.Get(e.ctx, "refused"); !errors.Is(err, coordinator.ErrNotFound) {
		t.Errorf("Get of the refused transaction: %v, expected ErrNotFound (reads still work)", err)
	}
	// b's vote cannot land: b retries it and says why in its log, and the
	// transaction stays undecided, with nothing of b's vote written.
	close(release)
	poll.Until(t, 20*time.Second, "b logs the NOSPACE alarm", func() (bool, string) {
		n := logs.FilterMessageSnippet("space quota is full").Len()
		return n > 0, fmt.Sprint(n, " messages")
	})
	if tx, err := e.c.Get(e.ctx, "held"); err != nil || tx.State != protocol.StatePreparing || tx.Branches[1].Vote != nil {
		t.Errorf("held while etcd is full: %+v, %v; expected preparing without b's vote", tx, err)
	}
	if _, err := e.c.Abort(e.ctx, "held", "test"); !errors.Is(err, coordinator.ErrNoSpace) {
		t.Errorf("Abort with etcd full: %v, expected ErrNoSpace", err)
	}

	// The way back, as the README gives it.
	if _, err := e.cli.Delete(e.ctx, "/junk/", clientv3.WithPrefix()); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := srv.Compact(e.ctx, e.cli); err != nil {
		t.Fatalf("compact: %v", err)
	}
	if _, err := e.cli.Defragment(e.ctx, srv.Endpoints[0]); err != nil {
		t.Fatalf("defragment: %v", err)
	}
	alarms, err := e.cli.AlarmList(e.ctx)
	if err != nil || len(alarms.Alarms) == 0 {
		t.Fatalf("alarm list: %+v, %v; expected the NOSPACE alarm", alarms, err)
	}
	for _, a := range alarms.Alarms {
		if a.Alarm != pb.AlarmType_NOSPACE {
			t.Errorf("alarm %v, expected NOSPACE", a.Alarm)
		}
		if _, err := e.cli.AlarmDisarm(e.ctx, (*clientv3.AlarmMember)(a)); err != nil {
			t.Fatalf("disarm: %v", err)
		}
	}
	poll.Until(t, 20*time.Second, "a transaction commits after the alarm is disarmed", func() (bool, string) {
		out, err := e.c.Do(ctx, coordinator.Request{ID: "after", Branches: branches("a", "b")})
		if err != nil {
			return false, err.Error()
		}
		return out.Committed(), fmt.Sprintf("%+v", out)
	})
	e.terminal("after", 10*time.Second)
	// b's vote, retried all along, lands: held commits.
	if out, err := e.c.Wait(ctx, "held"); err != nil || !out.Committed() {
		t.Errorf("held after recovery: %+v, %v", out, err)
	}
	if a.count("after", "commit") != 1 || b.count("after", "commit") != 1 {
		t.Errorf("after recovery: a saw %v, b saw %v", a.phases("after"), b.phases("after"))
	}
}

package transfer

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/concord-tx/concord/cmd/demo-participant/internal/bank"
	"github.com/concord-tx/concord/coordinator"
	"github.com/concord-tx/concord/httpapi"
	"github.com/concord-tx/concord/internal/testkit/etcdtest"
	"github.com/concord-tx/concord/participant"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// env is one real etcd, a coordinator (client and replica) behind the
// real HTTP API (package httpapi), and banks that are real participants with their own stores.
type env struct {
	t      *testing.T
	ctx    context.Context
	client *coordinator.Client
	coord  *httpapi.Client
	banks  *Banks
	stores map[string]*bank.Store
	hc     *http.Client
}

func newEnv(t *testing.T, seeds map[string]map[string]int64) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	tr := &http.Transport{}
	hc := &http.Client{Transport: tr, Timeout: time.Minute}
	t.Cleanup(tr.CloseIdleConnections)

	rep, err := coordinator.NewReplica(cli, coordinator.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rep.Close() })
	c, err := coordinator.NewClient(ctx, cli, coordinator.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// The real API of coord serve over the coordinator.
	api := httpapi.New(httpapi.Config{Client: c, Logger: log})
	hs := httptest.NewServer(api)
	t.Cleanup(hs.Close)
	coord, err := httpapi.NewClient(hs.URL, httpapi.WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}

	e := &env{t: t, ctx: ctx, client: c, coord: coord, stores: make(map[string]*bank.Store), hc: hc}
	addrs := ""
	for name, seed := range seeds {
		store, _, err := bank.Open(filepath.Join(t.TempDir(), name+".db"), seed, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		// Default lease TTLs: no test here needs a quick expiry, and a short
		// one expires spuriously on a loaded machine under -race.
		p, err := participant.New(cli, name, bank.NewHandler(store, bank.WithLogger(log)), participant.WithLogger(log))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		if err := p.WaitActive(ctx); err != nil {
			t.Fatal(err)
		}
		bs := httptest.NewServer(bank.NewHTTPHandler(store, name, p.IsActive, log))
		t.Cleanup(bs.Close)
		e.stores[name] = store
		if addrs != "" {
			addrs += ","
		}
		addrs += name + "=" + bs.URL
	}
	if e.banks, err = ParseBanks(addrs, hc); err != nil {
		t.Fatal(err)
	}
	return e
}

// accounts reads a bank's accounts from its store.
func (e *env) accounts(name string) map[string]bank.Account {
	e.t.Helper()
	a, err := e.stores[name].Accounts()
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

// waitPhase waits until bank name records phase want for transaction id.
func (e *env) waitPhase(name, id string, want bank.Phase) {
	e.t.Helper()
	e.waitFor(func() (bool, string) {
		applied, err := e.stores[name].Applied()
		if err != nil {
			e.t.Fatal(err)
		}
		return applied[id] == want, "bank " + name + " at " + applied[id].String() + " for " + id + ", want " + want.String()
	})
}

// waitTerminal waits until transaction id is terminal in etcd.
func (e *env) waitTerminal(id string) coordinator.Transaction {
	e.t.Helper()
	var tx coordinator.Transaction
	e.waitFor(func() (bool, string) {
		var err error
		tx, err = e.client.Get(e.ctx, id)
		if err != nil {
			e.t.Fatal(err)
		}
		return tx.State.Terminal(), "transaction " + id + " is " + tx.State.String()
	})
	return tx
}

// waitFor polls cond until it holds, failing the test after 30s with what
// cond last said.
func (e *env) waitFor(cond func() (bool, string)) {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, what := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("after 30s: %s", what)
		}
		select {
		case <-e.ctx.Done():
			e.t.Fatalf("%v: %s", e.ctx.Err(), what)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

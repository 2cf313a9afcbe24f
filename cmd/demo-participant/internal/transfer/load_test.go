package transfer

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/concord-tx/concord/cmd/demo-participant/internal/bank"
	"github.com/concord-tx/concord/coordinator"
	"github.com/concord-tx/concord/httpapi"
	"github.com/concord-tx/concord/protocol"
)

// TestLoadConservesMoney runs 500 concurrent random transfers among
// accounts of three banks, some within one bank, with balances small enough
// that many abort for insufficient funds. Money is conserved, no hold is
// left, and every bank recorded exactly the decision etcd holds.
func TestLoadConservesMoney(t *testing.T) {
	e := newEnv(t, map[string]map[string]int64{
		"bank-a": {"alice": 100, "bob": 100},
		"bank-b": {"carol": 100},
		"bank-c": {"dave": 30, "erin": 0},
	})
	accounts, err := ParseEndpoints("bank-a:alice,bank-a:bob,bank-b:carol,bank-c:dave,bank-c:erin")
	if err != nil {
		t.Fatal(err)
	}
	var progress, table bytes.Buffer
	rep, err := RunLoad(e.ctx, e.coord, e.banks, Load{
		N:             500,
		Concurrency:   32,
		Accounts:      accounts,
		MaxAmount:     40,
		Timeout:       10 * time.Second,
		Seed:          42,
		Progress:      &progress,
		ProgressEvery: 200 * time.Millisecond,
		Settle:        30 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Write(&table, accounts); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s%s", progress.String(), table.String())

	if len(rep.Errors) > 0 {
		t.Errorf("transfers without a decision: %v", rep.Errors)
	}
	if rep.Decided() != 500 {
		t.Errorf("%d decided, want 500", rep.Decided())
	}
	funds := 0
	for kind, n := range rep.Aborted {
		if strings.HasSuffix(kind, ": insufficient funds") {
			funds += n
		} else {
			// Legitimate (a deadline, a lease lost on a starved machine) but
			// not what this load is about.
			t.Logf("%d aborted for %q", n, kind)
		}
	}
	if rep.Committed == 0 || funds == 0 {
		t.Errorf("%d committed, %d aborted for insufficient funds: the load should do both", rep.Committed, funds)
	}
	before, _ := rep.Before.Sum()
	after, held := rep.After.Sum()
	if before != 330 || after != 330 || held != 0 || !rep.Settled || !rep.Conserved() {
		t.Errorf("balances %d before, %d after, %d held (settled %v); want 330, 330, 0", before, after, held, rep.Settled)
	}
	for _, accounts := range rep.After {
		for name, a := range accounts {
			if a.Balance < 0 || a.Held != 0 {
				t.Errorf("account %s: %+v", name, a)
			}
		}
	}

	// Every transaction is terminal, and each of its banks recorded the
	// decision: committed, or aborted/refused.
	var records []coordinator.Transaction
	e.waitFor(func() (bool, string) {
		records = records[:0]
		page := coordinator.Page{}
		for {
			var err error
			page, err = e.client.List(e.ctx, coordinator.ListOptions{After: page.Next, Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			records = append(records, page.Transactions...)
			if page.Next == "" {
				break
			}
		}
		for _, r := range records {
			if !r.State.Terminal() {
				return false, "transaction " + r.ID + " is " + r.State.String()
			}
		}
		return len(records) == 500, "records listed: want 500"
	})
	applied := make(map[string]map[string]bank.Phase)
	for name, s := range e.stores {
		if applied[name], err = s.Applied(); err != nil {
			t.Fatal(err)
		}
	}
	committed := 0
	for _, r := range records {
		if r.State == protocol.StateCommitted {
			committed++
		}
		for _, p := range r.Participants {
			got := applied[p][r.ID]
			ok := got == bank.PhaseCommitted
			if r.State == protocol.StateAborted {
				ok = got == bank.PhaseAborted || got == bank.PhaseRefused
			}
			if !ok {
				t.Errorf("transaction %s is %v but %s recorded %v", r.ID, r.State, p, got)
			}
		}
	}
	if committed != rep.Committed {
		t.Errorf("etcd holds %d committed, the report %d", committed, rep.Committed)
	}
}

func TestReportTable(t *testing.T) {
	acc := Endpoint{"bank-a", "alice"}
	rep := Report{
		Committed: 3,
		Aborted:   map[string]int{"bank-a: insufficient funds": 2},
		Errors:    map[string]int{},
		Elapsed:   time.Second,
		Before:    Snapshot{"bank-a": {"alice": {Balance: 10}}},
		After:     Snapshot{"bank-a": {"alice": {Balance: 10}}},
		Settled:   true,
	}
	var b bytes.Buffer
	if err := rep.Write(&b, []Endpoint{acc}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"committed  3", "aborted    2  bank-a: insufficient funds", "tx/s       5.0", "bank-a:alice          10      10     0", "conserved"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
	rep.After = Snapshot{"bank-a": {"alice": {Balance: 11}}}
	b.Reset()
	rep.Write(&b, []Endpoint{acc})
	if !strings.Contains(b.String(), "NOT CONSERVED: the sum of balances changed by 1") {
		t.Errorf("a changed sum is not reported:\n%s", b.String())
	}
}

// With the coordinator unreachable, each transfer gives up after
// RequestTimeout, counted as an error, and the run still ends with its
// report; interrupted (ctx ends) with transfers in flight, it reports what
// it read of the banks, marked as interrupted.
func TestLoadEndsWithoutCoordinator(t *testing.T) {
	e := newEnv(t, map[string]map[string]int64{"bank-a": {"alice": 100}, "bank-b": {"carol": 100}})
	accounts, err := ParseEndpoints("bank-a:alice,bank-b:carol")
	if err != nil {
		t.Fatal(err)
	}
	// Takes every request and never answers, until the test ends.
	hang := make(chan struct{})
	silent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer silent.Close()
	defer close(hang)
	coord, err := httpapi.NewClient(silent.URL, httpapi.WithHTTPClient(e.hc))
	if err != nil {
		t.Fatal(err)
	}
	load := Load{N: 3, Concurrency: 1, Accounts: accounts, MaxAmount: 5, Timeout: time.Second, Seed: 1, Settle: time.Second, RequestTimeout: 300 * time.Millisecond}
	rep, err := RunLoad(e.ctx, coord, e.banks, load)
	if err != nil {
		t.Fatal(err)
	}
	errs := 0
	for _, n := range rep.Errors {
		errs += n
	}
	if errs != 3 || rep.Decided() != 0 || rep.Interrupted || !rep.Conserved() {
		t.Errorf("report %+v: want 3 errors, nothing decided, money conserved", rep)
	}

	load.N, load.RequestTimeout = 1000, 0
	ctx, cancel := context.WithTimeout(e.ctx, 300*time.Millisecond)
	defer cancel()
	rep, err = RunLoad(ctx, coord, e.banks, load)
	if err != nil {
		t.Fatalf("interrupted run: %v, want its report", err)
	}
	var table bytes.Buffer
	if err := rep.Write(&table, accounts); err != nil {
		t.Fatal(err)
	}
	if !rep.Interrupted || !rep.Conserved() || !strings.Contains(table.String(), "interrupted") {
		t.Errorf("interrupted run: %+v\n%s", rep, table.String())
	}
}

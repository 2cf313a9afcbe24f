package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/concord-tx/concord/cmd/demo-participant/internal/transfer"
	"github.com/concord-tx/concord/httpapi"
	"github.com/concord-tx/concord/internal/testkit/otlptest"
	"github.com/concord-tx/concord/internal/tracing"
	"github.com/concord-tx/concord/protocol"
)

// TestTraceAcrossProcesses runs `coord serve` and two banks as processes,
// each exporting OTLP/HTTP to a receiver the test runs, and begins a
// transfer with a caller's traceparent header. Every span the receiver
// gets belongs to the caller's trace (or, below, to the second caller's);
// the banks' spans descend from the coordinator's HTTP request span,
// across etcd; bank-a, killed with its Commit held back and restarted,
// attaches its Commit to the same trace. A transfer to a bank nobody runs
// is aborted by the replica, in that caller's trace.
func TestTraceAcrossProcesses(t *testing.T) {
	rcv := otlptest.Start(t)
	c := newClusterEnv(t, rcv.Env)
	gate := filepath.Join(t.TempDir(), "commit-gate") // never created
	a := c.startBank("bank-a", "alice=100", "--commit-gate", gate)
	b := c.startBank("bank-b", "bob=50")

	const (
		trace1, caller1 = "5bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
		trace2, caller2 = "6bf92f3577b34da6a3ce929d0e0e4736", "10f067aa0ba902b7"
	)
	if out := c.beginTraced(t, "traced-1", "00-"+trace1+"-"+caller1+"-01", "bank-a:alice", "bank-b:bob"); out.State != protocol.StateCommitted {
		t.Fatalf("traced-1: %+v, want committed", out)
	}
	// bank-a has prepared and waits at the gate; its Prepare has been
	// exported before it dies.
	rcv.WaitFor(t, 30*time.Second, "bank-a's Prepare and bank-b's Commit exported", func(ss otlptest.Spans) (bool, string) {
		ok := len(ss.Named(tracing.SpanPrepare).With(string(tracing.AttrParticipant), "bank-a")) == 1 &&
			len(ss.Named(tracing.SpanCommit).With(string(tracing.AttrParticipant), "bank-b")) == 1
		return ok, ss.String()
	})
	waitFor(t, 30*time.Second, func() (bool, string) {
		pa, pb := c.applied("bank-a")["traced-1"], c.applied("bank-b")["traced-1"]
		return pa == "prepared" && pb == "committed", fmt.Sprintf("bank-a %q, bank-b %q", pa, pb)
	})
	a.proc.kill()
	a = c.startBank("bank-a", "alice=100") // no gate
	waitFor(t, 30*time.Second, func() (bool, string) {
		pa := c.applied("bank-a")["traced-1"]
		return pa == "committed", fmt.Sprintf("bank-a %q", pa)
	})

	// The recovery case: bank-z never runs, so it never votes; the leading
	// replica aborts, and later finishes the abort, in the caller's trace.
	if out := c.beginTraced(t, "traced-2", "00-"+trace2+"-"+caller2+"-01", "bank-a:alice", "bank-z:zed"); out.State != protocol.StateAborted {
		t.Fatalf("traced-2: %+v, want aborted", out)
	}
	rcv.WaitFor(t, 30*time.Second, "the replica's recovery spans exported", func(ss otlptest.Spans) (bool, string) {
		ss = ss.InTrace(trace2)
		return len(ss.Named(tracing.RecoverySpan("abort_participant_lost"))) == 1 && len(ss.Named(tracing.RecoverySpan("finish_abandoned"))) == 1, ss.String()
	})

	// Graceful stops flush what the processes still buffer.
	for _, p := range []*process{a.proc, b.proc, c.coordProc} {
		if code := p.stop(30 * time.Second); code != 0 {
			t.Errorf("%s exited %d after SIGTERM", p.name, code)
		}
	}
	ss := rcv.Spans()
	for _, s := range ss {
		if s.TraceID != trace1 && s.TraceID != trace2 {
			t.Errorf("span outside the callers' traces: %v", s)
		}
	}

	t1 := ss.InTrace(trace1)
	req := t1.Named("POST /v1/transactions")
	if len(req) != 1 || req[0].Service != "coord" || req[0].ParentID != caller1 {
		t.Fatalf("the HTTP request's span: %v; want one, of coord, child of the caller's span %s; all:%v", req, caller1, t1)
	}
	for _, name := range []string{tracing.SpanDo, tracing.SpanBegin} {
		if got := t1.Named(name); len(got) != 1 || !t1.Descends(got[0], req[0]) || got[0].Attrs[string(tracing.AttrTxID)] != "traced-1" {
			t.Errorf("%s: %v; want one, under the request, for traced-1", name, got)
		}
	}
	if do := t1.Named(tracing.SpanDo); len(do) == 1 && do[0].Attrs[string(tracing.AttrState)] != "committed" {
		t.Errorf("%s: state %q, want committed", tracing.SpanDo, do[0].Attrs[string(tracing.AttrState)])
	}
	for _, bank := range []string{"bank-a", "bank-b"} {
		mine := t1.With(string(tracing.AttrParticipant), bank)
		for _, name := range []string{tracing.SpanPrepare, tracing.SpanVote, tracing.SpanCommit, tracing.SpanAck} {
			got := mine.Named(name)
			if len(got) != 1 || got[0].Service != bank || !t1.Descends(got[0], req[0]) {
				t.Errorf("%s's %s: %v; want one, from %s, under the request", bank, name, got, bank)
			}
		}
		for _, name := range []string{"bank.Store.Prepare", "bank.Store.Commit"} {
			var got otlptest.Spans
			for _, s := range t1.Named(name) {
				if s.Service == bank {
					got = append(got, s)
				}
			}
			if len(got) != 1 || !t1.Descends(got[0], req[0]) {
				t.Errorf("%s's handler span %s: %v; want one, under the request", bank, name, got)
			}
		}
	}
	if decided := t1.Named(tracing.SpanVote).With(string(tracing.AttrDecision), "committing"); len(decided) != 1 {
		t.Errorf("votes that decided commit: %v; want one", decided)
	}

	t2 := ss.InTrace(trace2)
	for _, name := range []string{tracing.RecoverySpan("abort_participant_lost"), tracing.RecoverySpan("finish_abandoned")} {
		got := t2.Named(name)
		if len(got) != 1 || got[0].Service != "coord" || got[0].Attrs[string(tracing.AttrTxID)] != "traced-2" {
			t.Errorf("%s: %v; want one, from coord, for traced-2", name, got)
		}
	}
	if got := t2.Named(tracing.RecoverySpan("abort_participant_lost")); len(got) == 1 && got[0].Attrs[string(tracing.AttrCause)] == "" {
		t.Errorf("the replica's abort says no cause: %v", got[0].Attrs)
	}
}

// beginTraced sends POST /v1/transactions for a transfer of 1 from one
// account to another, with the header traceparent, and returns the answer.
func (c *cluster) beginTraced(t *testing.T, id, traceparent, from, to string) httpapi.Outcome {
	t.Helper()
	fe, err := transfer.ParseEndpoint(from)
	if err != nil {
		t.Fatal(err)
	}
	te, err := transfer.ParseEndpoint(to)
	if err != nil {
		t.Fatal(err)
	}
	breq, err := transfer.Transfer{From: fe, To: te, Amount: 1}.Request(id, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(breq)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, c.coordURL+"/v1/transactions", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", traceparent)
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out httpapi.Outcome
	if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &out) != nil {
		t.Fatalf("POST %s: %s %s", id, resp.Status, raw)
	}
	return out
}

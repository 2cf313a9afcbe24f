package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/concord-tx/concord/httpapi"
	"github.com/concord-tx/concord/participant"
	"github.com/concord-tx/concord/protocol"
)

// payloads records what Prepare received, by transaction.
type payloads struct {
	mu sync.Mutex
	m  map[string]string
}

func (p *payloads) handler(prepare func(tx participant.Tx) error) participant.Handler {
	return participant.HandlerFuncs{PrepareFunc: func(ctx context.Context, tx participant.Tx) error {
		p.mu.Lock()
		if p.m == nil {
			p.m = make(map[string]string)
		}
		p.m[tx.ID] = string(tx.Payload)
		p.mu.Unlock()
		if prepare != nil {
			return prepare(tx)
		}
		return nil
	}}
}

func (p *payloads) get(id string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.m[id]
}

func TestBeginWaitsForCommit(t *testing.T) {
	f := newFixture(t)
	var a, b payloads
	f.participant(t, "bank-a", a.handler(nil))
	f.participant(t, "bank-b", b.handler(nil))

	status, body := f.do(t, "POST", "/v1/transactions", `{
		"id": "transfer-1",
		"branches": [
			{"participant": "bank-a", "payload": {"account": "alice", "amount": -5}},
			{"participant": "bank-b", "payload": {"account": "bob",   "amount": 5}}
		],
		"timeout": "5s"}`)
	if status != http.StatusOK {
		t.Fatalf("POST: %d %s", status, body)
	}
	var out httpapi.Outcome
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatal(err)
	}
	if out.ID != "transfer-1" || out.State != protocol.StateCommitted || out.Reason != "" {
		t.Fatalf("outcome %+v, want transfer-1 committed", out)
	}
	if !strings.Contains(body, `"state":"committed"`) {
		t.Errorf("state not lower-case in %s", body)
	}
	// The payload value's JSON reaches Prepare, compacted.
	if got, want := a.get("transfer-1"), `{"account":"alice","amount":-5}`; got != want {
		t.Errorf("bank-a payload %s, want %s", got, want)
	}
	if got, want := b.get("transfer-1"), `{"account":"bob","amount":5}`; got != want {
		t.Errorf("bank-b payload %s, want %s", got, want)
	}

	tx := f.waitState(t, "transfer-1", "committed")
	if len(tx.Branches) != 2 {
		t.Fatalf("branches %+v", tx.Branches)
	}
	for _, br := range tx.Branches {
		if br.Vote != httpapi.VoteYes || !br.Acked {
			t.Errorf("branch %+v, want vote yes, acked", br)
		}
	}
	if tx.Created.IsZero() || !tx.Deadline.Equal(tx.Created.Add(5*time.Second)) || tx.Decided.IsZero() || tx.Finished.IsZero() {
		t.Errorf("times: created %v deadline %v decided %v finished %v", tx.Created, tx.Deadline, tx.Decided, tx.Finished)
	}
	// The raw answer has the documented field names.
	status, body = f.do(t, "GET", "/v1/transactions/transfer-1", "")
	for _, field := range []string{`"id":"transfer-1"`, `"state":"committed"`, `"created":`, `"deadline":`, `"participant":"bank-a"`, `"vote":"yes"`, `"acked":true`} {
		if status != http.StatusOK || !strings.Contains(body, field) {
			t.Errorf("GET: %d %s: no %s", status, body, field)
		}
	}
}

func TestBeginVoteNoAborts(t *testing.T) {
	f := newFixture(t)
	var a, b payloads
	f.participant(t, "bank-a", a.handler(nil))
	f.participant(t, "bank-b", b.handler(func(participant.Tx) error { return errors.New("insufficient funds") }))

	out, err := f.api.Begin(context.Background(), httpapi.BeginRequest{Branches: []httpapi.BranchRequest{
		{Participant: "bank-a", Payload: json.RawMessage(`1`)},
		{Participant: "bank-b", Payload: json.RawMessage(`2`)},
	}}, true)
	if err != nil {
		t.Fatal(err)
	}
	if out.State != protocol.StateAborted || out.Cause != protocol.CauseVoteNo || !strings.Contains(out.Reason, "bank-b: insufficient funds") {
		t.Fatalf("outcome %+v, want aborted by bank-b's no", out)
	}
	if out.ID == "" {
		t.Fatal("no id in the answer")
	}
	tx := f.waitState(t, out.ID, "aborted")
	votes := map[string]httpapi.Branch{}
	for _, br := range tx.Branches {
		votes[br.Participant] = br
	}
	if v := votes["bank-b"]; v.Vote != httpapi.VoteNo || v.VoteReason != "insufficient funds" || !v.Acked {
		t.Errorf("bank-b %+v, want no (insufficient funds), acked", v)
	}
	if v := votes["bank-a"]; v.Vote == httpapi.VoteNo || !v.Acked {
		t.Errorf("bank-a %+v, want not no, acked", v)
	}
}

func TestBeginWithoutWaiting(t *testing.T) {
	f := newFixture(t)
	release := make(chan struct{})
	var a payloads
	f.participant(t, "bank-a", a.handler(func(participant.Tx) error { <-release; return nil }))

	status, body := f.do(t, "POST", "/v1/transactions?wait=false", `{"id": "async-1", "branches": [{"participant": "bank-a"}]}`)
	if status != http.StatusAccepted || body != `{"id":"async-1","state":"preparing"}`+"\n" {
		t.Fatalf("POST ?wait=false: %d %s, want 202 preparing", status, body)
	}
	// Prepare is blocked, so it is still preparing.
	if tx, err := f.api.Get(context.Background(), "async-1"); err != nil || tx.State != protocol.StatePreparing || tx.Branches[0].Vote != httpapi.VoteNone {
		t.Fatalf("GET: %+v %v, want preparing, not voted", tx, err)
	}
	close(release)
	f.waitState(t, "async-1", "committed")

	// Beginning it again says where it is, and begins nothing new.
	status, body = f.do(t, "POST", "/v1/transactions?wait=false", `{"id": "async-1", "branches": [{"participant": "bank-a"}]}`)
	if status != http.StatusAccepted || !strings.Contains(body, `"state":"committed"`) {
		t.Fatalf("repeated POST: %d %s, want 202 committed", status, body)
	}
}

func TestBeginRepeatedID(t *testing.T) {
	f := newFixture(t)
	var a payloads
	f.participant(t, "bank-a", a.handler(nil))
	req := `{"id": "same", "branches": [{"participant": "bank-a", "payload": {"n": 1}}]}`
	for i := range 2 {
		status, body := f.do(t, "POST", "/v1/transactions", req)
		if status != http.StatusOK || !strings.Contains(body, `"state":"committed"`) {
			t.Fatalf("POST #%d: %d %s, want 200 committed", i+1, status, body)
		}
	}
	// Whitespace in the payload does not make it another request.
	status, body := f.do(t, "POST", "/v1/transactions", `{"id": "same", "branches": [{"participant": "bank-a", "payload": { "n" : 1 }}]}`)
	if status != http.StatusOK {
		t.Fatalf("POST with spaced payload: %d %s, want 200", status, body)
	}
	status, body = f.do(t, "POST", "/v1/transactions", `{"id": "same", "branches": [{"participant": "bank-a", "payload": {"n": 2}}]}`)
	if status != http.StatusConflict || !strings.Contains(body, `"id":"same"`) || !strings.Contains(body, `"state":"committ`) {
		t.Fatalf("POST with other payload: %d %s, want 409 with the id and state", status, body)
	}
	status, body = f.do(t, "POST", "/v1/transactions?wait=false", `{"id": "same", "branches": [{"participant": "bank-a", "payload": {"n": 2}}]}`)
	if status != http.StatusConflict || !strings.Contains(body, `"id":"same"`) || !strings.Contains(body, `"state":"committ`) {
		t.Fatalf("POST ?wait=false with other payload: %d %s, want 409 with the id and state", status, body)
	}
}

func TestAbort(t *testing.T) {
	f := newFixture(t)
	release := make(chan struct{})
	var a payloads
	f.participant(t, "bank-a", a.handler(func(participant.Tx) error { <-release; return nil }))
	f.participant(t, "bank-b", participant.HandlerFuncs{})
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()

	ctx := context.Background()
	if _, err := f.api.Begin(ctx, httpapi.BeginRequest{ID: "stuck", Branches: []httpapi.BranchRequest{{Participant: "bank-a"}, {Participant: "bank-b"}}, Timeout: "1m"}, false); err != nil {
		t.Fatal(err)
	}
	status, body := f.do(t, "POST", "/v1/transactions/stuck/abort", `{"reason": "customer cancelled"}`)
	if status != http.StatusOK {
		t.Fatalf("abort: %d %s", status, body)
	}
	var out httpapi.Outcome
	json.Unmarshal([]byte(body), &out)
	if out.ID != "stuck" || out.State != protocol.StateAborting || out.Cause != protocol.CauseOperator || out.Reason != "customer cancelled" {
		t.Fatalf("abort answer %+v, want aborting by operator", out)
	}
	close(release) // bank-a's yes vote now fails its compare; it applies the abort
	f.waitState(t, "stuck", "aborted")

	// Aborting again answers the state it has.
	out, err := f.api.Abort(ctx, "stuck", "")
	if err != nil || out.State != protocol.StateAborted {
		t.Fatalf("second abort: %+v %v, want aborted", out, err)
	}
	// An empty body is fine too; a committed transaction answers 409.
	if _, err := f.api.Begin(ctx, httpapi.BeginRequest{ID: "done", Branches: []httpapi.BranchRequest{{Participant: "bank-b"}}}, true); err != nil {
		t.Fatal(err)
	}
	status, body = f.do(t, "POST", "/v1/transactions/done/abort", "")
	if status != http.StatusConflict || !strings.Contains(body, `"id":"done"`) || !strings.Contains(body, `"state":"committ`) {
		t.Fatalf("abort of committed: %d %s, want 409 with id and state", status, body)
	}
	var apiErr *httpapi.Error
	if _, err := f.api.Abort(ctx, "done", ""); !errors.As(err, &apiErr) || apiErr.Status != http.StatusConflict {
		t.Fatalf("client abort of committed: %v, want *Error 409", err)
	}
}

func TestList(t *testing.T) {
	f := newFixture(t)
	f.participant(t, "bank-a", participant.HandlerFuncs{})
	f.participant(t, "bank-b", participant.HandlerFuncs{PrepareFunc: func(context.Context, participant.Tx) error { return errors.New("no") }})
	ctx := context.Background()
	var committed, aborted []string
	for i := range 5 {
		id := fmt.Sprintf("c-%d", i)
		if _, err := f.api.Begin(ctx, httpapi.BeginRequest{ID: id, Branches: []httpapi.BranchRequest{{Participant: "bank-a"}}}, true); err != nil {
			t.Fatal(err)
		}
		committed = append(committed, id)
	}
	for i := range 2 {
		id := fmt.Sprintf("a-%d", i)
		if _, err := f.api.Begin(ctx, httpapi.BeginRequest{ID: id, Branches: []httpapi.BranchRequest{{Participant: "bank-b"}}}, true); err != nil {
			t.Fatal(err)
		}
		aborted = append(aborted, id)
	}
	for _, id := range append(committed, aborted...) {
		want := "committed"
		if strings.HasPrefix(id, "a-") {
			want = "aborted"
		}
		f.waitState(t, id, want)
	}

	// Pages of 2 follow each other through "next", in id order.
	var ids []string
	after := ""
	pages := 0
	for {
		l, err := f.api.List(ctx, httpapi.ListOptions{Limit: 2, After: after})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, tx := range l.Transactions {
			ids = append(ids, tx.ID)
			if len(tx.Participants) != 1 || tx.Created.IsZero() || len(tx.Branches) != 0 {
				t.Errorf("listed %+v", tx)
			}
		}
		if l.Next == "" {
			break
		}
		after = l.Next
	}
	if want := "a-0 a-1 c-0 c-1 c-2 c-3 c-4"; strings.Join(ids, " ") != want || pages != 4 {
		t.Fatalf("listed %v in %d pages, want %s in 4", ids, pages, want)
	}

	status, body := f.do(t, "GET", "/v1/transactions?state=aborted", "")
	var l httpapi.List
	json.Unmarshal([]byte(body), &l)
	if status != http.StatusOK || len(l.Transactions) != 2 || l.Transactions[0].ID != "a-0" || l.Transactions[1].State != protocol.StateAborted || l.Next != "" {
		t.Fatalf("state=aborted: %d %s", status, body)
	}
	if !strings.Contains(body, `"cause":"vote_no"`) {
		t.Errorf("no cause in %s", body)
	}
	status, body = f.do(t, "GET", "/v1/transactions?state=preparing", "")
	if status != http.StatusOK || body != `{"transactions":[]}`+"\n" {
		t.Fatalf("state=preparing: %d %s, want an empty list", status, body)
	}

	// Every state not terminal: here one transaction whose participant
	// holds its vote.
	f.participant(t, "holding", participant.HandlerFuncs{PrepareFunc: func(ctx context.Context, _ participant.Tx) error {
		<-ctx.Done()
		return ctx.Err()
	}})
	if _, err := f.api.Begin(ctx, httpapi.BeginRequest{ID: "u-0", Branches: []httpapi.BranchRequest{{Participant: "holding"}}}, false); err != nil {
		t.Fatal(err)
	}
	l, err := f.api.List(ctx, httpapi.ListOptions{Unfinished: true})
	if err != nil || len(l.Transactions) != 1 || l.Transactions[0].ID != "u-0" || l.Transactions[0].State != protocol.StatePreparing || l.Next != "" {
		t.Fatalf("unfinished: %+v %v, want u-0 preparing", l, err)
	}
	if _, err := f.api.List(ctx, httpapi.ListOptions{Unfinished: true, State: protocol.StateCommitted}); err == nil || !strings.Contains(err.Error(), "unfinished") {
		t.Errorf("unfinished with a state: %v, want an error naming both", err)
	}
	status, body = f.do(t, "GET", "/v1/transactions?state=done", "")
	if status != http.StatusBadRequest || !strings.Contains(body, "or unfinished: every state not terminal") {
		t.Errorf("state=done: %d %s, want 400 naming unfinished", status, body)
	}
}

func TestWaitEndsWithoutDecision(t *testing.T) {
	// No replica: nobody aborts at the deadline, so the wait runs out.
	f := newFixture(t, noReplica(), withConfig(func(c *httpapi.Config) { c.WaitGrace = 200 * time.Millisecond }))
	start := time.Now()
	status, body := f.do(t, "POST", "/v1/transactions", `{"id": "orphan", "branches": [{"participant": "nobody"}], "timeout": "300ms"}`)
	if status != http.StatusGatewayTimeout || !strings.Contains(body, `"id":"orphan"`) || !strings.Contains(body, `"state":"preparing"`) {
		t.Fatalf("POST: %d %s, want 504 naming the transaction, preparing", status, body)
	}
	if d := time.Since(start); d < 500*time.Millisecond {
		t.Fatalf("answered after %v, before timeout plus grace", d)
	}
}

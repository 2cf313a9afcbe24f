package httpapi_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/concord-tx/concord/httpapi"
	"github.com/concord-tx/concord/protocol"
)

// The client's errors are typed: errors.Is names what happened, errors.As
// reads the answer.
func TestClientErrors(t *testing.T) {
	f := newFixture(t)
	f.participant(t, "bank-a", (&payloads{}).handler(nil))
	ctx := context.Background()

	_, err := f.api.Get(ctx, "never-begun")
	var apiErr *httpapi.Error
	if !errors.Is(err, httpapi.ErrNotFound) || !errors.As(err, &apiErr) || apiErr.Status != http.StatusNotFound {
		t.Errorf("get of an unknown id: %v, want ErrNotFound and a 404 *Error", err)
	}
	if _, err := f.api.Begin(ctx, httpapi.BeginRequest{}, true); !errors.Is(err, httpapi.ErrBadRequest) || errors.Is(err, httpapi.ErrUnknown) {
		t.Errorf("begin without branches: %v, want ErrBadRequest only", err)
	}
	out, err := f.api.Do(ctx, httpapi.BeginRequest{Branches: []httpapi.BranchRequest{{Participant: "bank-a"}}})
	if err != nil || out.State != protocol.StateCommitted || out.ID == "" {
		t.Fatalf("do: %+v %v, want committed with a chosen id", out, err)
	}
	if _, err := f.api.Abort(ctx, out.ID, ""); !errors.Is(err, httpapi.ErrConflict) {
		t.Errorf("abort of a committed transaction: %v, want ErrConflict", err)
	}
	f.waitState(t, out.ID, "committed")
	page, err := f.api.List(ctx, httpapi.ListOptions{State: protocol.StateCommitted, Limit: 1})
	if err != nil || len(page.Transactions) != 1 || page.Transactions[0].ID != out.ID {
		t.Errorf("list committed: %+v %v, want %s", page, err, out.ID)
	}
	if h, err := f.api.Health(ctx); err != nil || h.Status != "ok" {
		t.Errorf("health: %+v %v", h, err)
	}
}

// Do sends the same request again while the outcome is unknown (here two
// 503s from a server in front of the API) and returns the decision.
func TestClientDoRetriesUnknownOutcomes(t *testing.T) {
	f := newFixture(t)
	f.participant(t, "bank-a", (&payloads{}).handler(nil))
	target, err := http.NewRequest("GET", f.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"error":"etcd unavailable"}`))
			return
		}
		r.URL.Scheme, r.URL.Host, r.RequestURI = target.URL.Scheme, target.URL.Host, ""
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}))
	defer flaky.Close()
	cl, err := httpapi.NewClient(flaky.URL, httpapi.WithHTTPClient(flaky.Client()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := cl.Do(ctx, httpapi.BeginRequest{ID: "retried", Branches: []httpapi.BranchRequest{{Participant: "bank-a"}}})
	if err != nil || out.State != protocol.StateCommitted || calls.Load() != 3 {
		t.Fatalf("do through two 503s: %+v %v after %d calls, want committed after 3", out, err, calls.Load())
	}
}

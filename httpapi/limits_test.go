package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/concord-tx/concord/coordinator"
	"github.com/concord-tx/concord/httpapi"
	"github.com/concord-tx/concord/internal/testkit/etcdtest"
	"github.com/concord-tx/concord/internal/testkit/poll"
	"github.com/concord-tx/concord/participant"
	"github.com/concord-tx/concord/protocol"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Undecided transactions begun through the API are bounded overall and
// per credential; past a limit a begin gets 429 naming it, and a slot is
// free again once a transaction is decided.
func TestUndecidedLimits(t *testing.T) {
	f := newFixture(t, noReplica(), withConfig(func(c *httpapi.Config) {
		c.Credentials = testCredentials(t)
		c.MaxUndecided = 3
		c.MaxUndecidedPerCredential = 2
	}))
	ctx := context.Background()
	payments, ops := f.client(t, beginToken), f.client(t, adminToken)
	held := func(id string) httpapi.BeginRequest {
		return httpapi.BeginRequest{ID: id, Timeout: "1m", Branches: []httpapi.BranchRequest{{Participant: "nobody-runs-this"}}}
	}
	limitOf := func(err error) string {
		var e *httpapi.Error
		if !errors.As(err, &e) {
			return ""
		}
		return e.Limit
	}
	for _, id := range []string{"p-1", "p-2"} {
		if _, err := payments.Begin(ctx, held(id), false); err != nil {
			t.Fatal(err)
		}
	}
	_, err := payments.Begin(ctx, held("p-3"), false)
	if !errors.Is(err, httpapi.ErrLimit) || limitOf(err) != httpapi.LimitUndecidedPerCredential || f.written(t, "p-3") {
		t.Fatalf("third of payments: %v (limit %q), want 429 %s and nothing written", err, limitOf(err), httpapi.LimitUndecidedPerCredential)
	}
	if _, err := ops.Begin(ctx, held("o-1"), false); err != nil {
		t.Fatalf("first of ops: %v", err)
	}
	_, err = ops.Begin(ctx, held("o-2"), false)
	if !errors.Is(err, httpapi.ErrLimit) || limitOf(err) != httpapi.LimitUndecided || !strings.Contains(err.Error(), "--max-undecided") {
		t.Fatalf("fourth in all: %v, want 429 %s", err, httpapi.LimitUndecided)
	}
	// Deciding one frees its slot.
	if _, err := ops.Abort(ctx, "p-1", "make room"); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "a slot for payments", func() (bool, string) {
		_, err := payments.Begin(ctx, held("p-3"), false)
		if err != nil {
			return false, err.Error()
		}
		return true, ""
	})
}

// Every slot of the undecided limits a begin takes is given back: at the
// answer when waiting, at once when nothing new was begun (a repeat, a
// conflict), at the decision when not waiting, and at Close for the
// transactions still undecided then.
func TestUndecidedSlotsGivenBack(t *testing.T) {
	f := newFixture(t, noReplica())
	f.participant(t, "bank-a", participant.HandlerFuncs{})
	ctx := context.Background()
	held := func(id string) httpapi.BeginRequest {
		return httpapi.BeginRequest{ID: id, Timeout: "1m", Branches: []httpapi.BranchRequest{{Participant: "nobody-runs-this"}}}
	}
	undecided := func(want int, when string) {
		t.Helper()
		poll.Until(t, 10*time.Second, fmt.Sprintf("%d undecided %s", want, when), func() (bool, string) {
			n := f.handler.Undecided()
			return n == want, fmt.Sprint(n)
		})
	}
	for _, id := range []string{"held-1", "held-2"} {
		if _, err := f.api.Begin(ctx, held(id), false); err != nil {
			t.Fatal(err)
		}
	}
	undecided(2, "after two begins not waiting")
	if out, err := f.api.Begin(ctx, httpapi.BeginRequest{ID: "waited", Branches: []httpapi.BranchRequest{{Participant: "bank-a"}}}, true); err != nil || out.State != protocol.StateCommitted {
		t.Fatalf("waited: %+v %v, want committed", out, err)
	}
	undecided(2, "after a begin waited for its decision")
	if _, err := f.api.Begin(ctx, held("held-1"), false); err != nil {
		t.Fatalf("repeated begin: %v", err)
	}
	conflicting := held("held-1")
	conflicting.Branches[0].Participant = "bank-a"
	for _, wait := range []bool{false, true} {
		if _, err := f.api.Begin(ctx, conflicting, wait); !errors.Is(err, httpapi.ErrConflict) {
			t.Fatalf("conflicting begin (wait %v): %v, want 409", wait, err)
		}
	}
	undecided(2, "after a repeat and conflicts")
	if _, err := f.api.Abort(ctx, "held-1", "decided"); err != nil {
		t.Fatal(err)
	}
	undecided(1, "once held-1 is decided")
	f.handler.Close()
	if n := f.handler.Undecided(); n != 0 {
		t.Errorf("%d undecided after Close, want 0", n)
	}
}

// A begin the coordinator refuses at its storage limits
// (coordinator.WithStorageLimits) gets 429 naming the limit, in both
// waiting modes, and writes nothing; the refused begins give back their
// slots of the API's own limits.
func TestStorageLimitAnswered429(t *testing.T) {
	f := newFixture(t, noReplica(), withConfig(func(c *httpapi.Config) { c.MaxUndecided = 2 }),
		withClientOptions(coordinator.WithStorageLimits(coordinator.StorageLimits{MaxUndecided: 1})))
	ctx := context.Background()
	held := func(id string) httpapi.BeginRequest {
		return httpapi.BeginRequest{ID: id, Timeout: "1m", Branches: []httpapi.BranchRequest{{Participant: "nobody-runs-this"}}}
	}
	if _, err := f.api.Begin(ctx, held("held"), false); err != nil {
		t.Fatal(err)
	}
	// The client counts from its watch, a moment behind the begin.
	poll.Until(t, 10*time.Second, "the client counts the held transaction", func() (bool, string) {
		u := f.coord.Usage("nobody-runs-this")
		return u.Undecided == 1, fmt.Sprintf("%+v", u)
	})
	before := f.keyCount(t)
	// Three refusals: had any kept its slot of the API's --max-undecided
	// (2, one taken by held), the later ones would be refused by that
	// limit instead of the coordinator's.
	for i, wait := range []bool{false, true, false} {
		id := fmt.Sprintf("refused-%d", i)
		_, err := f.api.Begin(ctx, held(id), wait)
		var e *httpapi.Error
		if !errors.As(err, &e) || e.Status != http.StatusTooManyRequests || !errors.Is(err, httpapi.ErrLimit) ||
			e.Limit != coordinator.LimitUndecided || !strings.Contains(e.ErrorBody.Error, "1 transactions undecided, at most 1") {
			t.Fatalf("begin %s (wait %v) past the storage limit: %v, want 429 with limit %q", id, wait, err, coordinator.LimitUndecided)
		}
		if f.written(t, id) {
			t.Errorf("%s written though refused", id)
		}
	}
	// Like the API's own limits, the answer asks to retry a second later.
	resp, err := http.Post(f.url+"/v1/transactions?wait=false", "application/json",
		strings.NewReader(`{"id":"refused-raw","timeout":"1m","branches":[{"participant":"nobody-runs-this"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1" {
		t.Errorf("raw begin past the storage limit: %d, Retry-After %q; want 429 and 1", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if after := f.keyCount(t); after != before {
		t.Errorf("%d keys under the prefix after the refused begins, %d before", after, before)
	}
	// Once held is decided, a begin is accepted again.
	if _, err := f.api.Abort(ctx, "held", "make room"); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "a begin accepted once held is decided", func() (bool, string) {
		out, err := f.api.Begin(ctx, held("accepted"), false)
		return err == nil && out.State == protocol.StatePreparing, fmt.Sprint(out, err)
	})
}

// keyCount is how many keys the fixture's coordinator has in etcd.
func (f *fixture) keyCount(t *testing.T) int64 {
	t.Helper()
	resp, err := f.cli.Get(context.Background(), f.prefix+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return resp.Count
}

// With etcd's NOSPACE alarm raised, a begin is answered 507 at once with
// what to do; once the alarm is disarmed, begins work again.
func TestNoSpace(t *testing.T) {
	own := etcdtest.Start(t)
	cli := own.Client(t)
	f := newFixture(t, noReplica(), onEtcd(cli))
	ctx := context.Background()
	status, err := cli.Status(ctx, own.Endpoints[0])
	if err != nil {
		t.Fatal(err)
	}
	alarm := func(action pb.AlarmRequest_AlarmAction) {
		t.Helper()
		_, err := pb.NewMaintenanceClient(cli.ActiveConnection()).Alarm(ctx, &pb.AlarmRequest{Action: action, MemberID: status.Header.MemberId, Alarm: pb.AlarmType_NOSPACE})
		if err != nil {
			t.Fatal(err)
		}
	}
	alarm(pb.AlarmRequest_ACTIVATE)
	req := httpapi.BeginRequest{ID: "no-room", Timeout: "1m", Branches: []httpapi.BranchRequest{{Participant: "bank-a"}}}
	start := time.Now()
	_, err = f.api.Begin(ctx, req, false)
	if !errors.Is(err, httpapi.ErrNoSpace) || errors.Is(err, httpapi.ErrUnknown) || !strings.Contains(err.Error(), "etcdctl alarm disarm") {
		t.Fatalf("begin under NOSPACE: %v, want 507 saying how to recover", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("507 after %v, want at once", d)
	}
	if f.written(t, "no-room") {
		t.Error("written under NOSPACE")
	}
	alarm(pb.AlarmRequest_DEACTIVATE)
	if out, err := f.api.Begin(ctx, req, false); err != nil || out.State != protocol.StatePreparing {
		t.Fatalf("begin after disarm: %+v %v, want preparing", out, err)
	}
}

// A repeated begin whose payloads say the same with keys in another order
// (and other spacing) is the same request, not a 409; the participant
// receives the canonical form.
func TestRepeatedBeginCanonicalPayload(t *testing.T) {
	f := newFixture(t)
	var p payloads
	f.participant(t, "bank-a", p.handler(nil))
	first := `{"id": "canon", "branches": [{"participant": "bank-a", "payload": {"b": 1, "a": {"y": [1, 2.50], "x": "é<"}}}]}`
	again := `{"id": "canon", "branches": [{"participant": "bank-a", "payload": {"a":{"x":"\u00e9<","y":[1,2.50]},"b":1}}]}`
	for i, body := range []string{first, again} {
		if status, answer := f.do(t, "POST", "/v1/transactions", body); status != http.StatusOK || !strings.Contains(answer, `"committed"`) {
			t.Fatalf("begin %d: %d %s, want 200 committed", i+1, status, answer)
		}
	}
	if got, want := p.get("canon"), `{"a":{"x":"é<","y":[1,2.50]},"b":1}`; got != want {
		t.Errorf("payload %s, want %s", got, want)
	}
	other := `{"id": "canon", "branches": [{"participant": "bank-a", "payload": {"a": 1}}]}`
	if status, answer := f.do(t, "POST", "/v1/transactions", other); status != http.StatusConflict {
		t.Errorf("begin with another payload: %d %s, want 409", status, answer)
	}
}

// Errors about a bad id show the character, not a byte, and cut a long
// value.
func TestBadValuesInErrors(t *testing.T) {
	f := newFixture(t, noReplica())
	long := strings.Repeat("z", 10000) + "/"
	for _, tc := range []struct {
		name, path, body string
		says             []string
	}{
		{"non-ASCII id", "/v1/transactions", `{"id": "café", "branches": [{"participant": "a"}]}`, []string{`"café"`, `character 'é' at 3`}},
		{"long id", "/v1/transactions", `{"id": "` + long + `", "branches": [{"participant": "a"}]}`, []string{`… (10001 bytes)`}},
		{"long state", "/v1/transactions?state=" + strings.Repeat("q", 5000), "", []string{`… (5000 bytes)`}},
	} {
		method := "POST"
		if tc.body == "" {
			method = "GET"
		}
		status, answer := f.do(t, method, tc.path, tc.body)
		var body httpapi.ErrorBody
		if err := json.Unmarshal([]byte(answer), &body); err != nil {
			t.Fatal(err)
		}
		if status != http.StatusBadRequest || len(body.Error) > 400 {
			t.Errorf("%s: %d, %d bytes of error, want 400 and a short message: %.500s", tc.name, status, len(body.Error), body.Error)
		}
		for _, s := range tc.says {
			if !strings.Contains(body.Error, s) {
				t.Errorf("%s: %q does not say %s", tc.name, body.Error, s)
			}
		}
	}
}

package httpapi_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/concord-tx/concord/httpapi"
	"github.com/concord-tx/concord/protocol"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

const (
	readToken  = "read-token-0123456789abcdef"
	beginToken = "begin-token-0123456789abcdef"
	adminToken = "admin-token-0123456789abcdef"
)

func testCredentials(t *testing.T) *httpapi.Credentials {
	t.Helper()
	creds, err := httpapi.ParseCredentials("# who may call\nviewer:read:"+readToken+"\npayments:begin:"+beginToken+"\n\nops:admin:"+adminToken+"\n", "test")
	if err != nil {
		t.Fatal(err)
	}
	return creds
}

// client is an API client of the fixture with token.
func (f *fixture) client(t *testing.T, token string) *httpapi.Client {
	t.Helper()
	cl, err := httpapi.NewClient(f.url, httpapi.WithToken(token))
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// written reports whether etcd holds any key of transaction id.
func (f *fixture) written(t *testing.T, id string) bool {
	t.Helper()
	keys, err := protocol.NewKeys(f.prefix)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := f.cli.Get(context.Background(), keys.Record(id), clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return resp.Count > 0
}

// Each role may do what it names and what the weaker ones may, no more;
// without a token or with a wrong one nothing but /healthz answers; every
// abort is logged with the credential's name and the remote address, and
// no token is ever logged.
func TestRoles(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	// No replica: a transaction of a participant nobody runs stays
	// undecided for the abort.
	f := newFixture(t, noReplica(), withConfig(func(c *httpapi.Config) {
		c.Credentials = testCredentials(t)
		c.Logger = zap.New(core)
	}))
	f.participant(t, "bank-a", (&payloads{}).handler(nil))
	ctx := context.Background()
	begin := httpapi.BeginRequest{Branches: []httpapi.BranchRequest{{Participant: "bank-a"}}}

	for _, tc := range []struct {
		name  string
		token string
		want  error
	}{{"no token", "", httpapi.ErrUnauthorized}, {"wrong token", "x" + adminToken, httpapi.ErrUnauthorized}} {
		cl := f.client(t, tc.token)
		if _, err := cl.List(ctx, httpapi.ListOptions{}); !errors.Is(err, tc.want) {
			t.Errorf("%s: list: %v, want %v", tc.name, err, tc.want)
		}
		req := begin
		req.ID = "anon-" + strings.ReplaceAll(tc.name, " ", "-")
		if _, err := cl.Begin(ctx, req, false); !errors.Is(err, tc.want) || f.written(t, req.ID) {
			t.Errorf("%s: begin: %v (written: %v), want %v and nothing written", tc.name, err, f.written(t, req.ID), tc.want)
		}
		if h, err := cl.Health(ctx); err != nil || h.Status != "ok" {
			t.Errorf("%s: /healthz: %+v %v, want open to all", tc.name, h, err)
		}
	}
	if status, _ := f.doWith(t, "GET", "/metrics", "", http.Header{}); status != http.StatusUnauthorized {
		t.Errorf("/metrics without a token: %d, want 401", status)
	}
	if status, body := f.doWith(t, "GET", "/metrics", "", http.Header{"Authorization": {"Bearer " + readToken}}); status != http.StatusOK || !strings.Contains(body, "concord_") {
		t.Errorf("/metrics with the read role: %d, want 200 and the metrics", status)
	}

	viewer, payments, ops := f.client(t, readToken), f.client(t, beginToken), f.client(t, adminToken)
	req := begin
	req.ID = "by-viewer"
	if _, err := viewer.Begin(ctx, req, false); !errors.Is(err, httpapi.ErrForbidden) || f.written(t, req.ID) {
		t.Errorf("begin with the read role: %v, want ErrForbidden and nothing written", err)
	}
	req.ID = "by-payments"
	if out, err := payments.Do(ctx, req); err != nil || out.State != protocol.StateCommitted {
		t.Fatalf("begin with the begin role: %+v %v, want committed", out, err)
	}
	if _, err := viewer.Get(ctx, "by-payments"); err != nil {
		t.Errorf("get with the read role: %v", err)
	}
	req.ID, req.Timeout = "held", "1m"
	req.Branches = []httpapi.BranchRequest{{Participant: "nobody-runs-this"}}
	if _, err := payments.Begin(ctx, req, false); err != nil {
		t.Fatal(err)
	}
	if _, err := payments.Abort(ctx, "held", "not mine"); !errors.Is(err, httpapi.ErrForbidden) {
		t.Errorf("abort with the begin role: %v, want ErrForbidden", err)
	}
	if out, err := ops.Abort(ctx, "held", "by ops"); err != nil || out.State.Outcome() != protocol.StateAborted || out.Reason != "by ops" {
		t.Errorf("abort with the admin role: %+v %v, want aborted by ops", out, err)
	}
	if out, err := ops.Do(ctx, httpapi.BeginRequest{ID: "by-ops", Branches: begin.Branches}); err != nil || out.State != protocol.StateCommitted {
		t.Errorf("begin with the admin role: %+v %v, want committed", out, err)
	}

	aborts := logs.FilterMessage("abort requested").All()
	if len(aborts) != 1 || aborts[0].ContextMap()["credential"] != "ops" || aborts[0].ContextMap()["remote"] == "" || aborts[0].ContextMap()["txid"] != "held" {
		t.Errorf("abort log %+v, want one entry naming ops, its address and the transaction", aborts)
	}
	if refused := logs.FilterMessage("request refused").FilterField(zap.String("credential", "payments")).Len(); refused != 1 {
		t.Errorf("%d refusals logged for payments' abort, want 1", refused)
	}
	for _, e := range logs.All() {
		line := e.Message
		for k, v := range e.ContextMap() {
			line += " " + k + "=" + strings.TrimSpace(strings.ReplaceAll(strings.ReplaceAll(toString(v), "\n", " "), "\t", " "))
		}
		for _, tok := range []string{readToken, beginToken, adminToken} {
			if strings.Contains(line, tok) {
				t.Errorf("a token is in the logs: %s", line)
			}
		}
	}
}

func toString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return ""
}

// The forged requests of the issue, as a page of another site makes a
// browser send them, are refused, and nothing reaches etcd.
func TestCrossSiteRequestsRefused(t *testing.T) {
	f := newFixture(t, noReplica())
	f.participant(t, "bank-a", (&payloads{}).handler(nil))
	body := func(id string) string {
		return `{"id": "` + id + `", "branches": [{"participant": "bank-a", "payload": {"amount": 5}}]}`
	}
	for _, tc := range []struct {
		name   string
		header http.Header
		status int
		says   string
	}{
		{"text/plain from a foreign Origin", http.Header{"Content-Type": {"text/plain"}, "Origin": {"https://evil.example"}}, 403, "cross-site request refused"},
		{"JSON from a foreign Origin", http.Header{"Content-Type": {"application/json"}, "Origin": {"https://evil.example"}}, 403, "cross-site request refused"},
		{"Sec-Fetch-Site cross-site", http.Header{"Content-Type": {"application/json"}, "Sec-Fetch-Site": {"cross-site"}}, 403, "cross-site request refused"},
		{"Sec-Fetch-Site same-site", http.Header{"Content-Type": {"application/json"}, "Sec-Fetch-Site": {"same-site"}}, 403, "cross-site request refused"},
		{"a form POST", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, 415, "must be application/json"},
		{"text/plain without Origin", http.Header{"Content-Type": {"text/plain;charset=UTF-8"}}, 415, "must be application/json"},
		{"no Content-Type", http.Header{}, 415, "must be application/json"},
	} {
		id := "forged-" + strings.NewReplacer(" ", "-", "/", "-").Replace(tc.name)
		status, answer := f.doWith(t, "POST", "/v1/transactions", body(id), tc.header)
		if status != tc.status || !strings.Contains(answer, tc.says) {
			t.Errorf("%s: %d %s, want %d saying %q", tc.name, status, answer, tc.status, tc.says)
		}
		if f.written(t, id) {
			t.Errorf("%s: transaction %s was written to etcd", tc.name, id)
		}
	}
	// The abort route too: a foreign page cannot abort.
	if _, err := f.api.Begin(context.Background(), httpapi.BeginRequest{ID: "victim", Timeout: "1m", Branches: []httpapi.BranchRequest{{Participant: "nobody-runs-this"}}}, false); err != nil {
		t.Fatal(err)
	}
	if status, answer := f.doWith(t, "POST", "/v1/transactions/victim/abort", "", http.Header{"Origin": {"https://evil.example"}}); status != 403 {
		t.Errorf("cross-site abort: %d %s, want 403", status, answer)
	}
	if tx, err := f.api.Get(context.Background(), "victim"); err != nil || tx.State != protocol.StatePreparing {
		t.Errorf("victim after a cross-site abort: %+v %v, want preparing", tx, err)
	}
	// The API's own clients and same-origin pages go through.
	same := http.Header{"Content-Type": {"application/json"}, "Origin": {f.url}, "Sec-Fetch-Site": {"same-origin"}}
	if status, answer := f.doWith(t, "POST", "/v1/transactions", body("same-origin"), same); status != 200 {
		t.Errorf("same-origin begin: %d %s, want 200", status, answer)
	}
}

// Another handler of the same server (a console) sits behind the same
// gate: the same credentials, roles and cross-site rules.
func TestGateSharedWithAnotherHandler(t *testing.T) {
	h := httpapi.New(httpapi.Config{Credentials: testCredentials(t)})
	defer h.Close()
	console := h.Gate().Require(httpapi.RoleAdmin, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := httpapi.CallerOf(r.Context())
		w.Write([]byte("hello " + c.Name))
	}))
	srv := httptest.NewServer(console)
	defer srv.Close()
	for _, tc := range []struct {
		method, token, origin string
		status                int
		body                  string
	}{
		{"GET", "", "", http.StatusUnauthorized, ""},
		{"GET", readToken, "", http.StatusForbidden, ""},
		{"GET", adminToken, "", http.StatusOK, "hello ops"},
		{"POST", adminToken, "https://evil.example", http.StatusForbidden, ""},
	} {
		req, err := http.NewRequest(tc.method, srv.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		if tc.origin != "" {
			req.Header.Set("Origin", tc.origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || (tc.body != "" && string(b) != tc.body) {
			t.Errorf("%s with token %q origin %q: %d %s, want %d %s", tc.method, tc.token, tc.origin, resp.StatusCode, b, tc.status, tc.body)
		}
	}
}

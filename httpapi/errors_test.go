package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/concord-tx/concord/httpapi"
)

func TestErrorAnswers(t *testing.T) {
	f := newFixture(t, withConfig(func(c *httpapi.Config) { c.MaxBodyBytes = 200 << 10 }))
	big := strings.Repeat("x", 70<<10)
	branch := func(payload string) string {
		return `{"branches": [{"participant": "bank-a", "payload": ` + payload + `}]}`
	}
	cases := []struct {
		name, method, path, body string
		status                   int
		says                     string // the error names the field and what was expected
	}{
		{"empty body", "POST", "/v1/transactions", "", 400, "body: empty, expected a JSON object"},
		{"not JSON", "POST", "/v1/transactions", "{branches", 400, "body: invalid JSON at byte"},
		{"truncated JSON", "POST", "/v1/transactions", `{"branches": [`, 400, "body: truncated JSON"},
		{"trailing data", "POST", "/v1/transactions", branch("1") + " {}", 400, "body: unexpected data after the JSON object"},
		{"array body", "POST", "/v1/transactions", `[1]`, 400, "body: expected an object, got array"},
		{"unknown field", "POST", "/v1/transactions", `{"brnches": []}`, 400, `body: unknown field "brnches" (expected id, branches, timeout)`},
		{"branches not a list", "POST", "/v1/transactions", `{"branches": {}}`, 400, "body.branches: expected an array, got object"},
		{"no branches", "POST", "/v1/transactions", `{"branches": []}`, 400, "branches: expected 1 to 100, got 0"},
		{"branches missing", "POST", "/v1/transactions", `{}`, 400, "branches: expected 1 to 100, got 0"},
		{"participant not a string", "POST", "/v1/transactions", `{"branches": [{"participant": 7}]}`, 400, "branches[0].participant: expected a string, got number"},
		{"unknown branch field", "POST", "/v1/transactions", `{"branches": [{"participant": "a", "amount": 7}]}`, 400, `branches[0]: unknown field "amount" (expected participant, payload)`},
		{"bad participant name", "POST", "/v1/transactions", `{"branches": [{"participant": "a"}, {"participant": "Bank B"}]}`, 400, `branches[1].participant: protocol: invalid participant name: "Bank B"`},
		{"duplicate participant", "POST", "/v1/transactions", `{"branches": [{"participant": "a"}, {"participant": "a"}]}`, 400, `branches[1].participant: "a" is already in branches`},
		{"payload too large", "POST", "/v1/transactions", branch(`"` + big + `"`), 400, "branches[0].payload: 71682 bytes, expected at most 65536"},
		{"bad id", "POST", "/v1/transactions", `{"id": "a/b", "branches": [{"participant": "a"}]}`, 400, `id: protocol: invalid transaction id: "a/b"`},
		{"timeout not a duration", "POST", "/v1/transactions", `{"branches": [{"participant": "a"}], "timeout": "soon"}`, 400, `timeout: "soon" is not a duration (expected e.g. "5s")`},
		{"timeout a number", "POST", "/v1/transactions", `{"branches": [{"participant": "a"}], "timeout": 5}`, 400, "body.timeout: expected a string, got number"},
		{"timeout zero", "POST", "/v1/transactions", `{"branches": [{"participant": "a"}], "timeout": "0s"}`, 400, `timeout: "0s" is not positive`},
		{"timeout too short", "POST", "/v1/transactions", `{"branches": [{"participant": "a"}], "timeout": "1ms"}`, 400, "timeout: 1ms, expected between 100ms and 24h0m0s"},
		{"wait not a boolean", "POST", "/v1/transactions?wait=maybe", branch("1"), 400, `wait: "maybe" is not a boolean (expected true or false)`},
		{"unknown query parameter", "POST", "/v1/transactions?wiat=false", branch("1"), 400, `query: unknown parameter "wiat" (expected wait)`},
		{"body too large", "POST", "/v1/transactions", branch(`"` + strings.Repeat("y", 300<<10) + `"`), 413, "body: larger than 204800 bytes"},
		{"list: bad state", "GET", "/v1/transactions?state=done", "", 400, `state: "done" is not a state (expected one of preparing, committing, aborting, committed, aborted, or unfinished: every state not terminal)`},
		{"list: limit zero", "GET", "/v1/transactions?limit=0", "", 400, `limit: "0" is not a whole number between 1 and 1000`},
		{"list: limit too big", "GET", "/v1/transactions?limit=5000", "", 400, `limit: "5000" is not a whole number between 1 and 1000`},
		{"list: limit not a number", "GET", "/v1/transactions?limit=ten", "", 400, `limit: "ten" is not a whole number`},
		{"list: bad after", "GET", "/v1/transactions?after=a%2Fb", "", 400, `after: protocol: invalid transaction id: "a/b"`},
		{"list: misspelt filter", "GET", "/v1/transactions?sate=aborted", "", 400, `query: unknown parameter "sate" (expected state, limit, after)`},
		{"get: unknown id", "GET", "/v1/transactions/never-begun", "", 404, "transaction not found: never-begun"},
		{"get: bad id", "GET", "/v1/transactions/a%20b", "", 400, `id: protocol: invalid transaction id: "a b"`},
		{"get: query parameter", "GET", "/v1/transactions/x?verbose=1", "", 400, `query: unknown parameter "verbose" (expected none)`},
		{"abort: unknown id", "POST", "/v1/transactions/never-begun/abort", "", 404, "transaction not found: never-begun"},
		{"abort: bad body", "POST", "/v1/transactions/x/abort", `{"why": "x"}`, 400, `body: unknown field "why" (expected reason)`},
		{"unknown route", "GET", "/v2/transactions", "", 404, "no route GET /v2/transactions"},
		{"unknown route under v1", "GET", "/v1/transactions/x/votes", "", 404, "no route GET /v1/transactions/x/votes"},
		{"wrong method on collection", "DELETE", "/v1/transactions", "", 405, "method DELETE not allowed on /v1/transactions (allowed: GET, HEAD, POST)"},
		{"wrong method on item", "PUT", "/v1/transactions/x", "", 405, "method PUT not allowed on /v1/transactions/x (allowed: GET, HEAD)"},
		{"wrong method on abort", "GET", "/v1/transactions/x/abort", "", 405, "method GET not allowed on /v1/transactions/x/abort (allowed: POST)"},
		{"wrong method on healthz", "POST", "/healthz", "", 405, "method POST not allowed on /healthz"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body := f.do(t, c.method, c.path, c.body)
			var e httpapi.ErrorBody
			if err := json.Unmarshal([]byte(body), &e); err != nil {
				t.Fatalf("%d %s: not a JSON error: %v", status, body, err)
			}
			if status != c.status || !strings.Contains(e.Error, c.says) {
				t.Fatalf("%s %s: %d %q\nwant %d saying %q", c.method, c.path, status, e.Error, c.status, c.says)
			}
		})
	}
	// Nothing of the refused requests was written.
	l, err := f.api.List(t.Context(), httpapi.ListOptions{})
	if err != nil || len(l.Transactions) != 0 {
		t.Fatalf("after refused requests: %+v %v, want no transactions", l, err)
	}
}

func TestMethodNotAllowedSaysAllow(t *testing.T) {
	f := newFixture(t)
	req, _ := http.NewRequest("DELETE", f.url+"/v1/transactions/x", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Fatalf("%d Allow %q, want 405 Allow GET, HEAD", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

func TestClientReportsErrors(t *testing.T) {
	f := newFixture(t)
	_, err := f.api.Get(t.Context(), "missing")
	if got, want := fmt.Sprint(err), "coordinator: transaction not found: missing (HTTP 404 Not Found)"; got != want {
		t.Fatalf("error %q, want %q", got, want)
	}
	if _, err := httpapi.NewClient("127.0.0.1:7070"); err == nil || !strings.Contains(err.Error(), "expected e.g. http://127.0.0.1:7070") {
		t.Fatalf("NewClient without scheme: %v", err)
	}
}

package console_test

import (
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/concord-tx/concord/protocol"
)

func TestRequestWithoutCredentialsIsRefused(t *testing.T) {
	f := newFixture(t, withAuth())
	id := f.held(t)
	b := f.http(t)
	for _, path := range []string{"/", "/transactions", "/transactions/" + id, "/transactions/" + id + "/abort", "/events", "/nowhere"} {
		code, body := b.do("GET", path, nil, nil)
		if code != http.StatusUnauthorized {
			t.Errorf("GET %s without credentials: %d, want 401", path, code)
		}
		if strings.Contains(body, id) && path != "/transactions/"+id && path != "/transactions/"+id+"/abort" {
			t.Errorf("GET %s without credentials shows transaction %s", path, id)
		}
		if path != "/events" && !strings.Contains(body, `action="/signin"`) {
			t.Errorf("GET %s without credentials: no sign-in form: %s", path, body)
		}
	}
	code, _ := b.do("POST", "/transactions/"+id+"/abort", url.Values{"csrf": {"x"}}, map[string]string{"Origin": f.url})
	if code != http.StatusUnauthorized {
		t.Errorf("POST abort without credentials: %d, want 401", code)
	}
	// A bad token signs nobody in, and is not echoed.
	code, body := b.do("POST", "/signin", url.Values{"token": {"guess<b>"}, "next": {"/"}}, map[string]string{"Origin": f.url})
	if code != http.StatusUnauthorized || strings.Contains(body, "guess") {
		t.Errorf("sign in with a bad token: %d, want 401 without the token in the page: %s", code, body)
	}
	if got := f.state(t, id).State; got != protocol.StatePreparing {
		t.Errorf("transaction %s is %v after refused requests, want preparing", id, got)
	}
	// The API keeps its own paths beside the console.
	if code, body := b.do("GET", "/healthz", nil, nil); code != http.StatusOK || !strings.Contains(body, `"status"`) {
		t.Errorf("GET /healthz beside the console: %d %s", code, body)
	}
}

func TestReadRoleCannotAbort(t *testing.T) {
	f := newFixture(t, withAuth())
	id := f.held(t)
	b := f.http(t)
	b.signIn(readToken)
	code, body := b.do("GET", "/transactions/"+id, nil, nil)
	if code != http.StatusOK || !strings.Contains(body, id) {
		t.Fatalf("reader GET transaction: %d %s", code, body)
	}
	if strings.Contains(body, `id="abort"`) || !strings.Contains(body, `id="no-abort"`) {
		t.Errorf("reader sees an abort button: %s", body)
	}
	if code, _ := b.do("GET", "/transactions/"+id+"/abort", nil, nil); code != http.StatusForbidden {
		t.Errorf("reader GET abort confirmation: %d, want 403", code)
	}
	// Even with the session's own CSRF token, from the console's origin.
	token := b.csrf("/transactions/" + id) // the sign-out form's
	code, _ = b.do("POST", "/transactions/"+id+"/abort", url.Values{"csrf": {token}}, map[string]string{"Origin": f.url, "Sec-Fetch-Site": "same-origin"})
	if code != http.StatusForbidden {
		t.Errorf("reader POST abort: %d, want 403", code)
	}
	if got := f.state(t, id).State; got != protocol.StatePreparing {
		t.Errorf("transaction %s is %v after a reader's abort, want preparing", id, got)
	}
}

func TestAbortNeedsCSRFTokenAndSameOrigin(t *testing.T) {
	f := newFixture(t, withAuth())
	id := f.held(t)
	b := f.http(t)
	b.signIn(adminToken)
	token := b.csrf("/transactions/" + id + "/abort")
	path := "/transactions/" + id + "/abort"
	for _, c := range []struct {
		name   string
		form   url.Values
		header map[string]string
	}{
		{"no token", url.Values{}, map[string]string{"Origin": f.url}},
		{"wrong token", url.Values{"csrf": {token + "x"}}, map[string]string{"Origin": f.url}},
		{"another origin", url.Values{"csrf": {token}}, map[string]string{"Origin": "https://evil.example"}},
		{"cross-site fetch", url.Values{"csrf": {token}}, map[string]string{"Sec-Fetch-Site": "cross-site"}},
	} {
		if code, _ := b.do("POST", path, c.form, c.header); code != http.StatusForbidden {
			t.Errorf("%s: POST abort %d, want 403", c.name, code)
		}
	}
	if got := f.state(t, id).State; got != protocol.StatePreparing {
		t.Fatalf("transaction %s is %v after forged aborts, want preparing", id, got)
	}
	code, _ := b.do("POST", path, url.Values{"csrf": {token}, "reason": {"drill"}}, map[string]string{"Origin": f.url, "Sec-Fetch-Site": "same-origin"})
	if code != http.StatusSeeOther {
		t.Fatalf("admin POST abort: %d, want 303", code)
	}
	tx := f.state(t, id)
	if !tx.State.Decided() || tx.State.Committed() || tx.Cause != protocol.CauseOperator || tx.Reason != "drill" {
		t.Errorf("after the admin's abort: %v cause %q reason %q, want aborting/aborted by operator, reason drill", tx.State, tx.Cause, tx.Reason)
	}
	// Signed out, the session is gone for good.
	token = b.csrf("/")
	if code, _ := b.do("POST", "/signout", url.Values{"csrf": {token}}, map[string]string{"Origin": f.url}); code != http.StatusSeeOther {
		t.Errorf("sign out: %d, want 303", code)
	}
	if code, _ := b.do("GET", "/", nil, nil); code != http.StatusUnauthorized {
		t.Errorf("GET / after sign-out: %d, want 401", code)
	}
}

func TestBadInputIsShownAsText(t *testing.T) {
	f := newFixture(t)
	b := f.http(t)
	const evil = `<script>alert(1)</script><img src=x onerror=alert(2)>`
	for _, c := range []struct {
		path string
		code int
		want string
	}{
		{"/transactions?participant=" + url.QueryEscape(evil), http.StatusBadRequest, "participant:"},
		{"/transactions?state=" + url.QueryEscape(evil), http.StatusBadRequest, "state:"},
		{"/transactions?since=" + url.QueryEscape(evil), http.StatusBadRequest, "since:"},
		{"/transactions/" + url.PathEscape(evil), http.StatusBadRequest, "Not a transaction id"},
		{"/transactions/no-such-tx", http.StatusNotFound, "No transaction no-such-tx"},
	} {
		code, body := b.do("GET", c.path, nil, nil)
		if code != c.code || !strings.Contains(body, c.want) {
			t.Errorf("GET %s: %d, want %d with %q: %s", c.path, code, c.code, c.want, body)
		}
		if strings.Contains(body, "<script>alert") || strings.Contains(body, "<img src=x") {
			t.Errorf("GET %s: the input is in the page as HTML: %s", c.path, body)
		}
		if c.code == http.StatusBadRequest && c.path != "/transactions/"+url.PathEscape(evil) && !strings.Contains(body, html.EscapeString(`<script>`)) && !strings.Contains(body, `\u003cscript`) && !strings.Contains(body, "&lt;script") {
			t.Errorf("GET %s: the input is not shown escaped: %s", c.path, body)
		}
	}
}

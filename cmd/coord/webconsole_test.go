package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/concord-tx/concord/internal/testkit/etcdtest"
)

func TestConsoleFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		env  map[string]string
		says string
	}{
		{[]string{"--console-trace-url", "jaeger/trace"}, nil, `--console-trace-url: trace URL "jaeger/trace": expected an http(s) URL containing {trace_id}`},
		{nil, map[string]string{"CONCORD_CONSOLE_TRACE_URL": "https://jaeger.example/trace/"}, `CONCORD_CONSOLE_TRACE_URL: trace URL "https://jaeger.example/trace/": expected`},
		{[]string{"--console=maybe"}, nil, `invalid boolean value "maybe" for --console`},
	} {
		code, _, stderr := runInProcess(append([]string{"serve"}, c.args...), c.env)
		if code != 2 || !strings.HasPrefix(stderr, "coord serve: "+c.says) {
			t.Errorf("serve %q env %v: exit %d, stderr %q\nwant exit 2 saying %q", c.args, c.env, code, stderr, c.says)
		}
	}
	fs := serveFlags()
	if _, err := fs.parse(nil, func(k string) string { return map[string]string{"CONCORD_CONSOLE": "false"}[k] }); err != nil {
		t.Fatal(err)
	}
	if cfg, err := parseServe(fs, func(string) string { return "" }); err != nil || cfg.console.enabled {
		t.Errorf("CONCORD_CONSOLE=false: console enabled %v (%v), want off", cfg.console.enabled, err)
	}
}

// TestConsoleBesideTheAPI: `coord serve` serves the console at / and the
// API at its paths; an open page's event stream does not hold up the
// shutdown; --console=false leaves / to the API.
func TestConsoleBesideTheAPI(t *testing.T) {
	t.Parallel()
	addrs := freeAddrs(t, 4)
	coord := startCoord(t, "coord", nil, "--data-dir", t.TempDir(), "--embedded-client-url", "http://"+addrs[0], "--embedded-peer-url", "http://"+addrs[1])
	get := func(url string) (int, http.Header, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	code, h, body := get(coord.url + "/")
	if code != http.StatusOK || !strings.Contains(body, "<h1>Overview</h1>") || !strings.Contains(h.Get("Content-Security-Policy"), "script-src 'self'") || h.Get("X-Frame-Options") != "DENY" {
		t.Errorf("GET /: %d %v\n%s", code, h, body)
	}
	if code, _, body := get(coord.url + "/healthz"); code != http.StatusOK || !strings.Contains(body, `"status":"ok"`) {
		t.Errorf("GET /healthz beside the console: %d %s", code, body)
	}
	if code, _, body := get(coord.url + "/v1/transactions"); code != http.StatusOK || !strings.HasPrefix(body, "{") {
		t.Errorf("GET /v1/transactions beside the console: %d %s", code, body)
	}

	// A page left open: its stream ends at shutdown, well before
	// --shutdown-timeout (30s).
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", coord.url+"/events?view=overview", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /events: %v %v", resp, err)
	}
	defer resp.Body.Close()
	if line, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil || !strings.HasPrefix(line, "retry:") {
		t.Fatalf("event stream starts with %q %v", line, err)
	}
	start := time.Now()
	if code := coord.stop(t, syscall.SIGTERM, 20*time.Second); code != 0 {
		t.Errorf("exit %d after SIGTERM with a page open, want 0", code)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("shutdown with a page open took %v", d)
	}

	off := startCoord(t, "coord-off", nil, "--console=false", "--data-dir", t.TempDir(), "--embedded-client-url", "http://"+addrs[2], "--embedded-peer-url", "http://"+addrs[3])
	if code, h, body := get(off.url + "/"); code != http.StatusNotFound || !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
		t.Errorf("GET / with --console=false: %d %s, want the API's 404", code, body)
	}
}

// With credentials configured, the console signs in with the API's tokens
// and keeps their roles: nothing without a session, a read token sees but
// may not abort, an admin token may.
func TestConsoleSignsInWithTheAPICredentials(t *testing.T) {
	t.Parallel()
	const (
		viewer = "viewer-0123456789abcdef"
		ops    = "ops-0123456789abcdef0123"
	)
	creds := filepath.Join(t.TempDir(), "credentials")
	if err := os.WriteFile(creds, []byte("viewer:read:"+viewer+"\nops:admin:"+ops+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	etcd := etcdtest.Start(t)
	coord := startCoord(t, "coord", nil, "--etcd", etcd.Endpoints[0], "--lease-ttl", "2s", "--credentials-file", creds)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(method, path, cookie string, form url.Values) (int, http.Header, string) {
		t.Helper()
		req, _ := http.NewRequest(method, coord.url+path, strings.NewReader(form.Encode()))
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Origin", coord.url)
		}
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	signIn := func(token string) string {
		t.Helper()
		code, h, body := do("POST", "/signin", "", url.Values{"token": {token}, "next": {"/"}})
		if code != http.StatusSeeOther || h.Get("Set-Cookie") == "" {
			t.Fatalf("sign in: %d %v\n%s", code, h, body)
		}
		return strings.SplitN(h.Get("Set-Cookie"), ";", 2)[0]
	}

	if code, _, body := do("GET", "/", "", nil); code != http.StatusUnauthorized || strings.Contains(body, "<h1>Overview</h1>") {
		t.Errorf("GET / without a session: %d, want 401 and the sign-in page", code)
	}
	if code, _, _ := do("POST", "/signin", "", url.Values{"token": {"not-a-token-at-all"}}); code != http.StatusUnauthorized {
		t.Errorf("sign in with a wrong token: %d, want 401", code)
	}
	read := signIn(viewer)
	if code, _, body := do("GET", "/", read, nil); code != http.StatusOK || !strings.Contains(body, "<h1>Overview</h1>") {
		t.Errorf("GET / signed in as viewer: %d", code)
	}
	if code, _, _ := do("GET", "/transactions/t-1/abort", read, nil); code != http.StatusForbidden {
		t.Errorf("abort page as viewer (read role): %d, want 403", code)
	}
	admin := signIn(ops)
	if code, _, _ := do("GET", "/transactions/t-1/abort", admin, nil); code == http.StatusForbidden || code == http.StatusUnauthorized {
		t.Errorf("abort page as ops (admin role): %d, want it allowed", code)
	}
}

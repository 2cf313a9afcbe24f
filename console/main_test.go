package console_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/concord-tx/concord/console"
	"github.com/concord-tx/concord/coordinator"
	"github.com/concord-tx/concord/httpapi"
	"github.com/concord-tx/concord/internal/testkit/etcdtest"
	"github.com/concord-tx/concord/internal/testkit/poll"
	"github.com/concord-tx/concord/participant"
	"github.com/concord-tx/concord/protocol"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// etcd is one real etcd shared by the package's tests; each test works
// under its own key prefix.
var etcd *etcdtest.Server

func TestMain(m *testing.M) { etcdtest.Main(m, &etcd) }

var prefixes atomic.Int64

// Tokens of the fixtures that require sign-in.
const (
	readToken  = "reader-token-0123456789"
	adminToken = "admin-token-0123456789"
)

// tokens is the credential source of the tests' consoles: a token per
// role, compared as the API's credentials file will be.
var tokens = console.AuthenticatorFunc(func(token string) (console.Identity, bool) {
	switch token {
	case readToken:
		return console.Identity{Name: "reader", Roles: []console.Role{console.RoleRead}}, true
	case adminToken:
		return console.Identity{Name: "admin", Roles: []console.Role{console.RoleAdmin}}, true
	}
	return console.Identity{}, false
})

// fixture is what `coord serve` runs, under a prefix of its own: a
// replica, a coordinator client, the HTTP API and the console mounted
// beside it, served by an httptest server.
type fixture struct {
	cli     *clientv3.Client
	prefix  string
	url     string
	client  *coordinator.Client
	console *console.Console
	log     *zap.Logger
}

type fixtureSettings struct {
	cli       *clientv3.Client
	opts      []console.Option
	noReplica bool
}

type fixtureOption func(*fixtureSettings)

// withAuth makes the console require sign-in with tokens.
func withAuth() fixtureOption {
	return func(s *fixtureSettings) { s.opts = append(s.opts, console.WithAuthenticator(tokens)) }
}

// noReplica runs no coordinator replica: nothing aborts at deadlines or
// for lost participants.
func noReplica() fixtureOption { return func(s *fixtureSettings) { s.noReplica = true } }

// consoleOn gives the console its own etcd client.
func consoleOn(cli *clientv3.Client) fixtureOption {
	return func(s *fixtureSettings) { s.cli = cli }
}

func withConsoleOptions(opts ...console.Option) fixtureOption {
	return func(s *fixtureSettings) { s.opts = append(s.opts, opts...) }
}

func newFixture(t *testing.T, opts ...fixtureOption) *fixture {
	t.Helper()
	f := &fixture{
		cli:    etcd.Client(t),
		prefix: fmt.Sprintf("/c%d", prefixes.Add(1)),
		log:    zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)),
	}
	s := fixtureSettings{cli: f.cli}
	for _, o := range opts {
		o(&s)
	}
	leader := func() bool { return false }
	if !s.noReplica {
		replica, err := coordinator.NewReplica(f.cli, coordinator.WithPrefix(f.prefix), coordinator.WithLogger(f.log), coordinator.WithLeaseTTL(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { replica.Close() })
		leader = replica.IsLeader
		defer poll.Until(t, 10*time.Second, "replica leads", func() (bool, string) { return replica.IsLeader(), "not leading" })
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var err error
	f.client, err = coordinator.NewClient(ctx, f.cli, coordinator.WithPrefix(f.prefix), coordinator.WithLogger(f.log))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.client.Close() })
	f.console, err = console.New(s.cli, f.client, append([]console.Option{
		console.WithPrefix(f.prefix),
		console.WithLogger(f.log),
		console.WithLeader(leader),
		console.WithRefresh(500 * time.Millisecond),
	}, s.opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	api := httpapi.New(httpapi.Config{Client: f.client, Leader: leader, Logger: f.log})
	srv := httptest.NewUnstartedServer(f.console.Mount(api))
	srv.Config.RegisterOnShutdown(func() { f.console.Close() })
	srv.Start()
	t.Cleanup(func() {
		f.console.Close() // ends the pages' streams, which srv.Close waits for
		srv.Close()
	})
	f.url = srv.URL
	return f
}

// participant starts participant name under the fixture's prefix and waits
// until it is registered.
func (f *fixture) participant(t *testing.T, name string, h participant.Handler) {
	t.Helper()
	p, err := participant.New(f.cli, name, h,
		participant.WithPrefix(f.prefix),
		participant.WithLeaseTTL(2*time.Second),
		participant.WithLogger(f.log),
		participant.WithRetryBackoff(10*time.Millisecond, 100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.WaitActive(ctx); err != nil {
		t.Fatalf("participant %s: %v", name, err)
	}
}

// yes is a participant that votes yes to everything.
var yes = participant.HandlerFuncs{}

// silent is a participant that never votes: Prepare waits until the
// participant closes.
var silent = participant.HandlerFuncs{PrepareFunc: func(ctx context.Context, tx participant.Tx) error {
	<-ctx.Done()
	return ctx.Err()
}}

// transfer begins a transaction between two participants and waits for
// its decision.
func (f *fixture) transfer(t *testing.T, from, to string) coordinator.Outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := f.client.Do(ctx, coordinator.Request{Branches: []protocol.Branch{
		{Participant: from, Payload: []byte(`{"account":"alice","amount":-10}`)},
		{Participant: to, Payload: []byte(`{"account":"carol","amount":10}`)},
	}, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("transfer %s → %s: %v", from, to, err)
	}
	return out
}

// begin begins a transaction without waiting: for one that stays
// undecided.
func (f *fixture) begin(t *testing.T, branches ...protocol.Branch) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := f.client.Begin(ctx, coordinator.Request{Branches: branches, Timeout: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return b.ID
}

// held starts participant hold, which never votes, and begins a
// transaction naming it: one that stays undecided.
func (f *fixture) held(t *testing.T) string {
	t.Helper()
	f.participant(t, "hold", silent)
	return f.begin(t, protocol.Branch{Participant: "hold", Payload: []byte(`{}`)})
}

// state reads a transaction's state from etcd.
func (f *fixture) state(t *testing.T, id string) coordinator.Transaction {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tx, err := f.client.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return tx
}

// browserless is an HTTP client with a cookie jar, for what a browser
// does that the tests check at the HTTP level.
type browserless struct {
	t    *testing.T
	base string
	c    *http.Client
}

func (f *fixture) http(t *testing.T) *browserless {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browserless{t: t, base: f.url, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// do sends a request and returns the status and body.
func (b *browserless) do(method, path string, form url.Values, header map[string]string) (int, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return resp.StatusCode, string(out)
}

// signIn signs in with token through the form, as a browser of the
// console's own origin would.
func (b *browserless) signIn(token string) {
	b.t.Helper()
	code, body := b.do("POST", "/signin", url.Values{"token": {token}, "next": {"/"}}, map[string]string{"Origin": b.base, "Sec-Fetch-Site": "same-origin"})
	if code != http.StatusSeeOther {
		b.t.Fatalf("sign in: %d, want 303: %s", code, body)
	}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf returns the CSRF token of the page at path.
func (b *browserless) csrf(path string) string {
	b.t.Helper()
	code, body := b.do("GET", path, nil, nil)
	m := csrfField.FindStringSubmatch(body)
	if code != http.StatusOK || m == nil {
		b.t.Fatalf("GET %s: %d, no CSRF field: %s", path, code, body)
	}
	return m[1]
}

package httpapi_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/concord-tx/concord/coordinator"
	"github.com/concord-tx/concord/coordinator/metrics"
	"github.com/concord-tx/concord/httpapi"
	"github.com/concord-tx/concord/internal/testkit/etcdtest"
	"github.com/concord-tx/concord/internal/testkit/poll"
	"github.com/concord-tx/concord/participant"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// etcd is one real etcd shared by the package's tests; each test works
// under its own key prefix.
var etcd *etcdtest.Server

func TestMain(m *testing.M) { etcdtest.Main(m, &etcd) }

var prefixes atomic.Int64

// fixture is the API of one coordinator (replica, client, HTTP handler)
// under a prefix of its own.
type fixture struct {
	cli     *clientv3.Client
	coord   *coordinator.Client // the coordinator client behind the handler
	handler *httpapi.Handler
	prefix  string
	url     string
	api     *httpapi.Client
	metrics *metrics.Metrics
	log     *zap.Logger
}

// fixtureSettings are what fixture options change.
type fixtureSettings struct {
	cfg     httpapi.Config
	replica bool             // run a replica (default true)
	cli     *clientv3.Client // the etcd the coordinator uses (default the shared one)
	copts   []coordinator.ClientOption
}

type fixtureOption func(*fixtureSettings)

// noReplica leaves the fixture without a replica: nobody aborts at the
// deadline.
func noReplica() fixtureOption { return func(s *fixtureSettings) { s.replica = false } }

func withConfig(f func(*httpapi.Config)) fixtureOption {
	return func(s *fixtureSettings) { f(&s.cfg) }
}

// withClientOptions gives the coordinator client opts besides the
// fixture's.
func withClientOptions(opts ...coordinator.ClientOption) fixtureOption {
	return func(s *fixtureSettings) { s.copts = append(s.copts, opts...) }
}

// onEtcd makes the coordinator use cli.
func onEtcd(cli *clientv3.Client) fixtureOption {
	return func(s *fixtureSettings) { s.cli = cli }
}

func newFixture(t *testing.T, opts ...fixtureOption) *fixture {
	t.Helper()
	f := &fixture{
		cli:    etcd.Client(t),
		prefix: fmt.Sprintf("/t%d", prefixes.Add(1)),
		log:    zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)),
	}
	var replica *coordinator.Replica
	f.metrics = metrics.New(func() bool { return replica != nil && replica.IsLeader() })
	settings := fixtureSettings{
		cfg: httpapi.Config{
			Metrics:   f.metrics.Handler(),
			Observe:   f.metrics.Request,
			Logger:    f.log,
			WaitGrace: 2 * time.Second,
		},
		replica: true,
		cli:     f.cli,
	}
	for _, o := range opts {
		o(&settings)
	}
	cfg, withReplica := settings.cfg, settings.replica
	f.cli = settings.cli
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if withReplica {
		var err error
		replica, err = coordinator.NewReplica(f.cli, coordinator.WithPrefix(f.prefix), coordinator.WithLogger(f.log),
			coordinator.WithLeaseTTL(time.Second), coordinator.WithObserver(f.metrics))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { replica.Close() })
		cfg.Leader = replica.IsLeader
	}
	copts := append([]coordinator.ClientOption{coordinator.WithPrefix(f.prefix), coordinator.WithLogger(f.log), coordinator.WithObserver(f.metrics)}, settings.copts...)
	client, err := coordinator.NewClient(ctx, f.cli, copts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	cfg.Client, f.coord = client, client
	if cfg.Health == nil {
		cfg.Health = func(ctx context.Context) (int64, error) {
			resp, err := f.cli.Get(ctx, f.prefix, clientv3.WithCountOnly())
			if err != nil {
				return 0, err
			}
			return resp.Header.Revision, nil
		}
	}
	h := httpapi.New(cfg)
	t.Cleanup(h.Close)
	f.handler = h
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	f.url = srv.URL
	f.api, err = httpapi.NewClient(srv.URL, httpapi.WithHTTPClient(srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	if withReplica {
		poll.Until(t, 10*time.Second, "replica leads", func() (bool, string) { return replica.IsLeader(), "not leading" })
	}
	return f
}

// participant starts participant name under the fixture's prefix and waits
// until it is registered.
func (f *fixture) participant(t *testing.T, name string, h participant.Handler) {
	t.Helper()
	p, err := participant.New(f.cli, name, h,
		participant.WithPrefix(f.prefix),
		participant.WithLeaseTTL(time.Second),
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

// do sends a raw request (a body as application/json) and returns the
// status and body.
func (f *fixture) do(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	header := http.Header{}
	if body != "" {
		header.Set("Content-Type", "application/json")
	}
	return f.doWith(t, method, path, body, header)
}

// doWith sends a raw request with header and returns the status and body.
func (f *fixture) doWith(t *testing.T, method, path, body string, header http.Header) (int, string) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, f.url+path, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") && !strings.HasPrefix(path, "/metrics") {
		t.Errorf("%s %s: Content-Type %q, want application/json (body %s)", method, path, ct, b)
	}
	return resp.StatusCode, string(b)
}

// waitState polls GET until transaction id is in state want.
func (f *fixture) waitState(t *testing.T, id string, want string) httpapi.Transaction {
	t.Helper()
	var tx httpapi.Transaction
	poll.Until(t, 10*time.Second, id+" "+want, func() (bool, string) {
		var err error
		tx, err = f.api.Get(context.Background(), id)
		if err != nil {
			return false, err.Error()
		}
		return tx.State.String() == want, tx.State.String()
	})
	return tx
}

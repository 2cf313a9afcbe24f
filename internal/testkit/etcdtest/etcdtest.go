package etcdtest

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/concord-tx/concord/internal/flowcontrol"
	"github.com/concord-tx/concord/internal/testkit/freeport"
)

// Server is one embedded etcd member.
type Server struct {
	Etcd      *embed.Etcd
	Endpoints []string
	dir       string
	closeOnce sync.Once
}

// Start starts a single-member etcd for the test and stops it at cleanup.
// configure, if given, changes its configuration before it starts (a
// space quota, say).
func Start(t testing.TB, configure ...func(*embed.Config)) *Server {
	t.Helper()
	s, err := StartDir(t.TempDir(), configure...)
	if err != nil {
		t.Fatalf("etcdtest: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// StartDir starts a single-member etcd with its data in dir. The caller
// closes it. configure, if given, changes its configuration before it
// starts.
func StartDir(dir string, configure ...func(*embed.Config)) (*Server, error) {
	cfg := embed.NewConfig()
	cfg.Dir = dir
	cfg.Logger = "zap"
	cfg.LogLevel = "error"
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	// Leases as short as one second, for tests of lease expiry.
	cfg.TickMs = 50
	cfg.ElectionMs = 500
	// bcrypt's least cost (etcd's default is 10). With auth on, every
	// gRPC stream a client opens authenticates first; at cost 10, under
	// the race detector and on a loaded machine, one authentication took
	// over two seconds and a 2s lease could not be renewed on a new stream.
	cfg.BcryptCost = 4
	cfg.GRPCAdditionalServerOptions = flowcontrol.ServerOptions()
	clientURL, peerURL, err := freeURLs()
	if err != nil {
		return nil, err
	}
	cfg.ListenClientUrls = []url.URL{clientURL}
	cfg.AdvertiseClientUrls = []url.URL{clientURL}
	cfg.ListenPeerUrls = []url.URL{peerURL}
	cfg.AdvertisePeerUrls = []url.URL{peerURL}
	cfg.InitialCluster = cfg.Name + "=" + peerURL.String()
	for _, c := range configure {
		c(cfg)
	}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("start etcd: %w", err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(30 * time.Second):
		e.Close()
		return nil, fmt.Errorf("etcd in %s not ready after 30s", dir)
	}
	return &Server{Etcd: e, Endpoints: []string{clientURL.String()}, dir: dir}, nil
}

// Client returns a new client of the server, closed at cleanup; opts
// (an interceptor, say) add to its gRPC dial options.
func (s *Server) Client(t testing.TB, opts ...grpc.DialOption) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   s.Endpoints,
		DialTimeout: 5 * time.Second,
		DialOptions: append(flowcontrol.DialOptions(), opts...),
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatalf("etcdtest: client: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Compact compacts the server's history up to its current revision.
func (s *Server) Compact(ctx context.Context, c *clientv3.Client) (int64, error) {
	resp, err := c.Get(ctx, "compaction-probe")
	if err != nil {
		return 0, err
	}
	rev := resp.Header.Revision
	_, err = c.Compact(ctx, rev, clientv3.WithCompactPhysical())
	return rev, err
}

// Close stops the server. It may be called more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.Etcd.Close()
		<-s.Etcd.Server.StopNotify()
	})
}

// freeURLs returns two loopback URLs on ports free at the time of the call.
func freeURLs() (client, peer url.URL, err error) {
	addrs, err := freeport.Addrs(2)
	if err != nil {
		return url.URL{}, url.URL{}, err
	}
	return url.URL{Scheme: "http", Host: addrs[0]}, url.URL{Scheme: "http", Host: addrs[1]}, nil
}

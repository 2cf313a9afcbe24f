// Package embedded runs the single-node, persistent etcd that `coord serve`
// starts when it is given no etcd endpoints. It is a real etcd member:
// etcdctl and participants connect to its client URL with gRPC.
//
// etcd's HTTP/JSON gateway (/v3/kv/put and the rest) is off: it answers
// requests a web page can send from any origin (a POST with a text/plain
// body needs no CORS preflight), so a page open on an operator's machine
// could write or delete any key. Protecting it instead (an Origin check
// in front of it) was rejected: Concord's clients all speak gRPC, and a
// handler that is not served cannot be forged. Its health and metrics
// pages (/health, /metrics, /version) stay; they only read.
//
// For deployments that expose it beyond loopback, it serves clients over
// TLS and can require client certificates signed by a given CA (TLS).
package embedded

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc"

	"github.com/concord-tx/concord/internal/flowcontrol"
)

// Config says where the embedded etcd keeps its data and listens.
type Config struct {
	Dir       string  // data directory; created if missing, reused if not
	ClientURL url.URL // where clients connect (e.g. http://127.0.0.1:2379)
	PeerURL   url.URL // raft peer URL; no peer ever joins, but etcd needs one
	// AutoCompaction is the periodic compaction retention ("1h", "30m");
	// "0" turns compaction off.
	AutoCompaction string
	// QuotaBytes is etcd's space quota (its --quota-backend-bytes): at it,
	// etcd refuses writes until space is freed. 0: etcd's default, 2 GiB.
	QuotaBytes int64
	// TLS, when set, makes the client URL (then https://) serve TLS.
	TLS    *TLS
	Logger *zap.Logger
}

// TLS is the embedded etcd's server certificate for its clients and,
// optionally, the CA whose certificates clients must present.
type TLS struct {
	CertFile, KeyFile string // PEM server certificate and its key
	// ClientCAFile: PEM CA certificate(s); when set, a client without a
	// certificate signed by one of them is refused during the handshake.
	ClientCAFile string
}

// Name is the member name of the embedded etcd.
const Name = "concord"

// Server is a running embedded etcd.
type Server struct {
	etcd    *embed.Etcd
	cfg     Config
	closing *atomic.Bool // mutes etcd's logs, see quietOnClose

	mu struct {
		sync.Mutex
		grpc []*grpc.Server // etcd's client-facing gRPC servers
	}
}

// Start starts etcd and waits until it serves clients, or ctx ends.
func Start(ctx context.Context, c Config) (*Server, error) {
	cfg := embed.NewConfig()
	cfg.Name = Name
	cfg.Dir = c.Dir
	cfg.ListenClientUrls = []url.URL{c.ClientURL}
	cfg.AdvertiseClientUrls = []url.URL{c.ClientURL}
	cfg.ListenPeerUrls = []url.URL{c.PeerURL}
	cfg.AdvertisePeerUrls = []url.URL{c.PeerURL}
	cfg.InitialCluster = Name + "=" + c.PeerURL.String()
	cfg.InitialClusterToken = "concord-embedded"
	cfg.AutoCompactionMode = embed.CompactorModePeriodic
	cfg.AutoCompactionRetention = c.AutoCompaction
	cfg.QuotaBackendBytes = c.QuotaBytes
	cfg.GRPCAdditionalServerOptions = flowcontrol.ServerOptions()
	cfg.EnableGRPCGateway = false // see the package documentation
	if c.TLS != nil {
		cfg.ClientTLSInfo = transport.TLSInfo{
			CertFile:       c.TLS.CertFile,
			KeyFile:        c.TLS.KeyFile,
			TrustedCAFile:  c.TLS.ClientCAFile,
			ClientCertAuth: c.TLS.ClientCAFile != "",
		}
	}
	s := &Server{cfg: c, closing: new(atomic.Bool)}
	cfg.ServiceRegister = func(gs *grpc.Server) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.mu.grpc = append(s.mu.grpc, gs)
	}
	cfg.Logger = "zap"
	closing := s.closing
	lg := c.Logger
	if lg == nil {
		lg = zap.NewNop()
	}
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(lg.WithOptions(zap.WrapCore(func(core zapcore.Core) zapcore.Core {
		return quietOnClose{Core: core, closing: closing}
	})))
	e, err := startEtcd(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("embedded etcd in %s (client URL %s, peer URL %s): %w", c.Dir, c.ClientURL.String(), c.PeerURL.String(), err)
	}
	select {
	case <-e.Server.ReadyNotify():
		s.etcd = e
		return s, nil
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("embedded etcd in %s: %w", c.Dir, err)
	case <-ctx.Done():
		e.Close()
		return nil, fmt.Errorf("embedded etcd in %s: not ready: %w", c.Dir, ctx.Err())
	}
}

// startEtcd is embed.StartEtcd, which takes no context and can wait
// without limit (for the lock of a database file another process holds),
// abandoned when ctx ends first. The goroutine then left behind closes
// etcd if it ever starts; the process is stopping (a signal) and does not
// wait for it.
func startEtcd(ctx context.Context, cfg *embed.Config) (*embed.Etcd, error) {
	type started struct {
		e   *embed.Etcd
		err error
	}
	done := make(chan started, 1)
	go func() {
		e, err := embed.StartEtcd(cfg)
		done <- started{e, err}
	}()
	select {
	case s := <-done:
		return s.e, s.err
	case <-ctx.Done():
		go func() {
			if s := <-done; s.e != nil {
				s.e.Close()
			}
		}()
		return nil, fmt.Errorf("not started: %w", ctx.Err())
	}
}

// Endpoints returns the client URL, for clientv3.Config.Endpoints.
func (s *Server) Endpoints() []string { return []string{s.cfg.ClientURL.String()} }

// Err reports a fatal error of etcd's listeners.
func (s *Server) Err() <-chan error { return s.etcd.Err() }

// Close stops etcd and waits for it. It cuts the connections of clients
// first: their watches and lease keep-alives never end on their own, and
// etcd would wait its request timeout (7s) for them before doing the same.
// Then the server stops cleanly: raft stops, the WAL and the backend are
// synced and closed.
func (s *Server) Close() {
	s.closing.Store(true)
	s.mu.Lock()
	for _, gs := range s.mu.grpc {
		gs.Stop()
	}
	s.mu.Unlock()
	s.etcd.Close()
	<-s.etcd.Server.StopNotify()
}

// quietOnClose drops etcd's log entries once Close has begun: etcd reports
// each of its listeners closing as an error, which on a clean stop is not.
type quietOnClose struct {
	zapcore.Core
	closing *atomic.Bool
}

func (q quietOnClose) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if q.closing.Load() {
		return ce
	}
	return q.Core.Check(e, ce)
}

func (q quietOnClose) With(fields []zapcore.Field) zapcore.Core {
	return quietOnClose{Core: q.Core.With(fields), closing: q.closing}
}

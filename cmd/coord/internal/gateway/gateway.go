package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/concord-tx/concord/participant"
	"github.com/concord-tx/concord/protocol"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Defaults of Config.
const (
	DefaultCallTimeout    = 10 * time.Second
	DefaultHealthInterval = time.Second
	DefaultHealthFailures = 3
)

// ErrInvalidConfig: New was given a bad Config.
var ErrInvalidConfig = errors.New("gateway: invalid configuration")

// Config configures a Gateway.
type Config struct {
	Name string // participant name (required)
	// The service's endpoints (required, absolute http or https URLs).
	PrepareURL, CommitURL, AbortURL, HealthURL string
	// Secret signs every call (HMAC-SHA256); empty: calls are not signed.
	Secret []byte
	// CallTimeout bounds one call (default DefaultCallTimeout).
	CallTimeout time.Duration
	// HealthInterval is how often the health URL is polled, and
	// HealthFailures how many failed polls in a row release the
	// registration (defaults DefaultHealthInterval, DefaultHealthFailures).
	HealthInterval time.Duration
	HealthFailures int
	// MinBackoff and MaxBackoff space a Prepare's repeated calls and the
	// SDK's repeated Commit and Abort calls (defaults: the SDK's).
	MinBackoff, MaxBackoff time.Duration
	// HTTPClient makes the calls (default: a client of its own).
	HTTPClient *http.Client
	// Participant are options of the participant (prefix, lease TTL, ...).
	Participant []participant.Option
	Logger      *zap.Logger
}

// URLs returns the four endpoints of a service under base: base/prepare,
// base/commit, base/abort and base/healthz.
func URLs(base string) (prepare, commit, abort, health string) {
	for len(base) > 0 && base[len(base)-1] == '/' {
		base = base[:len(base)-1]
	}
	return base + "/prepare", base + "/commit", base + "/abort", base + "/healthz"
}

func (c *Config) validate() error {
	if err := protocol.ValidateName(c.Name); err != nil {
		return fmt.Errorf("%w: name: %w", ErrInvalidConfig, err)
	}
	for _, u := range []struct{ name, v string }{{"prepare URL", c.PrepareURL}, {"commit URL", c.CommitURL}, {"abort URL", c.AbortURL}, {"health URL", c.HealthURL}} {
		p, err := url.Parse(u.v)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return fmt.Errorf("%w: %s %q, expected an absolute http:// or https:// URL", ErrInvalidConfig, u.name, u.v)
		}
	}
	if c.CallTimeout == 0 {
		c.CallTimeout = DefaultCallTimeout
	}
	if c.HealthInterval == 0 {
		c.HealthInterval = DefaultHealthInterval
	}
	if c.HealthFailures == 0 {
		c.HealthFailures = DefaultHealthFailures
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = participant.DefaultMinBackoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = participant.DefaultMaxBackoff
	}
	switch {
	case c.CallTimeout < 0 || c.HealthInterval < 0 || c.HealthFailures < 0:
		return fmt.Errorf("%w: call timeout, health interval and health failures must be positive", ErrInvalidConfig)
	case c.MinBackoff < 0 || c.MaxBackoff < c.MinBackoff:
		return fmt.Errorf("%w: backoff %v to %v, expected 0 < min <= max", ErrInvalidConfig, c.MinBackoff, c.MaxBackoff)
	}
	if c.HTTPClient == nil {
		// Keep a connection per call in flight (the SDK runs up to 32
		// handler calls at once): with net/http's default of 2 idle
		// connections per host, the others are opened and closed for
		// each call.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = participant.DefaultWorkers * 2
		c.HTTPClient = &http.Client{Transport: tr}
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return nil
}

// Gateway holds a participant name for an HTTP service while the service
// is healthy.
type Gateway struct {
	cli    *clientv3.Client
	cfg    Config
	h      *handler
	log    *zap.Logger
	cancel context.CancelFunc
	done   chan struct{}
	err    error // why it stopped on its own, once done is closed

	mu struct {
		sync.Mutex
		p *participant.Participant // nil while the service is unhealthy
	}
}

// New validates cfg and starts the gateway in the background. cli is not
// closed by the gateway.
func New(cli *clientv3.Client, cfg Config) (*Gateway, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger.With(zap.String("participant", cfg.Name))
	ctx, cancel := context.WithCancel(context.Background())
	g := &Gateway{cli: cli, cfg: cfg, h: &handler{cfg: cfg, log: log}, log: log, cancel: cancel, done: make(chan struct{})}
	go g.run(ctx)
	return g, nil
}

// Done is closed when the gateway has stopped: after Close, or on its
// own when its participant options are invalid (Close then says why).
func (g *Gateway) Done() <-chan struct{} { return g.done }

// Close stops the gateway: its participant closes (handler calls in flight
// are cancelled) and revokes its lease, so a standby takes over at once.
// The error is why the gateway had stopped on its own, if it had.
func (g *Gateway) Close() error {
	g.cancel()
	<-g.done
	return g.err
}

// IsActive reports whether the gateway holds the registration now.
func (g *Gateway) IsActive() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.mu.p != nil && g.mu.p.IsActive()
}

// run alternates: wait for the service to be healthy, then serve as a
// participant until it is not, then wait a health interval before polling
// again. It stops when ctx ends, or when the participant cannot be made
// (its options are invalid: no later try would do better).
func (g *Gateway) run(ctx context.Context) {
	defer close(g.done)
	tick := time.NewTicker(g.cfg.HealthInterval)
	defer tick.Stop()
	for ctx.Err() == nil {
		if err := g.healthy(ctx); err != nil {
			g.log.Info("waiting for the service to be healthy", zap.Error(err))
		} else if err := g.serve(ctx, tick.C); err != nil {
			g.log.Error("participant", zap.Error(err))
			g.err = fmt.Errorf("gateway: participant: %w", err)
			return
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
}

// serve runs a participant until ctx ends, the participant stops, or the
// service fails HealthFailures polls in a row. The error is the
// participant's construction's.
func (g *Gateway) serve(ctx context.Context, tick <-chan time.Time) error {
	opts := append(append([]participant.Option{}, g.cfg.Participant...), participant.WithLogger(g.cfg.Logger), participant.WithRetryBackoff(g.cfg.MinBackoff, g.cfg.MaxBackoff))
	p, err := participant.New(g.cli, g.cfg.Name, g.h, opts...)
	if err != nil {
		return err
	}
	g.mu.Lock()
	g.mu.p = p
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.mu.p = nil
		g.mu.Unlock()
		if err := p.Close(); err != nil {
			g.log.Warn("closing the participant", zap.Error(err))
		}
	}()
	g.log.Info("service healthy: taking part")
	failed := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-p.Done():
			return nil
		case <-tick:
		}
		err := g.healthy(ctx)
		if err == nil {
			failed = 0
			continue
		}
		failed++
		if failed < g.cfg.HealthFailures {
			g.log.Warn("health check failed", zap.Int("failed", failed), zap.Error(err))
			continue
		}
		g.log.Warn("service unhealthy: releasing the registration, a standby may take over", zap.Int("failed", failed), zap.Error(err))
		return nil
	}
}

// healthy polls the health URL once: nil on a 2xx.
func (g *Gateway) healthy(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, min(g.cfg.CallTimeout, 2*g.cfg.HealthInterval))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.cfg.HealthURL, nil)
	if err != nil {
		return err
	}
	resp, err := g.cfg.HTTPClient.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10)) // so that the connection is kept
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		return fmt.Errorf("GET %s: HTTP %d", g.cfg.HealthURL, resp.StatusCode)
	}
	return nil
}

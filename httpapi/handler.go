package httpapi

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/concord-tx/concord/coordinator"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
)

// Config is what the handler needs. Client is required; the rest have
// defaults.
type Config struct {
	Client *coordinator.Client
	// Health reports whether etcd answers, and at which revision. Nil:
	// /healthz always answers 200.
	Health func(ctx context.Context) (rev int64, err error)
	// Leader reports whether this replica leads (shown by /healthz).
	Leader func() bool
	// Metrics serves /metrics; nil: no such route.
	Metrics http.Handler
	// Observe is called once per request with the matched route pattern
	// ("unmatched" when none) and the status code.
	Observe func(route string, code int)
	Logger  *zap.Logger
	// MaxBodyBytes bounds request bodies; larger ones get 413. Default
	// DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// DefaultTimeout is the prepare timeout of transactions begun without
	// one; it must match the coordinator client's (it bounds waiting).
	DefaultTimeout time.Duration
	// WaitGrace is how long past a transaction's deadline a waiting POST
	// goes on waiting for the decision before it answers 504: time for a
	// new leader to take over and abort. Default 15s.
	WaitGrace time.Duration
	// RequestTimeout bounds every request but the wait for a decision:
	// when etcd does not answer by then the API answers 504 rather than
	// letting the coordinator retry for as long as the client waits.
	// Default 10s.
	RequestTimeout time.Duration
	// Credentials are who may call the API (see Gate); none: everyone, as
	// Anonymous admin, which only suits a loopback address.
	Credentials *Credentials
	// MaxUndecided and MaxUndecidedPerCredential bound the transactions
	// begun through this handler and not decided yet; past them a begin
	// gets 429. Defaults DefaultMaxUndecided and
	// DefaultMaxUndecidedPerCredential.
	MaxUndecided              int
	MaxUndecidedPerCredential int
	// TracerProvider records a server span per request, continuing an
	// incoming traceparent header. Nil: the global provider.
	TracerProvider trace.TracerProvider
}

// DefaultMaxBodyBytes leaves room for the largest transaction the protocol
// accepts (640 KiB of payloads by default, base64 in JSON) plus framing.
const DefaultMaxBodyBytes = 2 << 20

// Handler is the API's HTTP handler. Close it to stop what it waits for on
// behalf of requests already answered.
type Handler struct {
	a      *api
	traced http.Handler // a, behind the tracing middleware (tracing.go)
}

type api struct {
	Config
	mux     *http.ServeMux
	gate    *Gate
	pending *undecided
	// The waits for the decisions of transactions begun without waiting
	// (they count against the limits until decided); see background.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     struct {
		sync.Mutex
		closed bool
	}
}

// background runs f in a goroutine that Close cancels and waits for, and
// reports whether it did: not once Close has begun.
func (a *api) background(f func(ctx context.Context)) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.mu.closed {
		return false
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		f(a.ctx)
	}()
	return true
}

// New returns the API's handler.
func New(cfg Config) *Handler {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.DefaultTimeout <= 0 {
		cfg.DefaultTimeout = coordinator.DefaultTimeout
	}
	if cfg.WaitGrace <= 0 {
		cfg.WaitGrace = 15 * time.Second
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 10 * time.Second
	}
	if cfg.MaxUndecided <= 0 {
		cfg.MaxUndecided = DefaultMaxUndecided
	}
	if cfg.MaxUndecidedPerCredential <= 0 {
		cfg.MaxUndecidedPerCredential = DefaultMaxUndecidedPerCredential
	}
	a := &api{Config: cfg, mux: http.NewServeMux(), gate: NewGate(cfg.Credentials, cfg.Logger),
		pending: newUndecided(cfg.MaxUndecided, cfg.MaxUndecidedPerCredential)}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	route := func(pattern string, role Role, h http.HandlerFunc) { a.mux.Handle(pattern, a.gate.Require(role, h)) }
	route("POST /v1/transactions", RoleBegin, a.begin)
	route("GET /v1/transactions", RoleRead, a.list)
	route("GET /v1/transactions/{id}", RoleRead, a.get)
	route("POST /v1/transactions/{id}/abort", RoleAdmin, a.abort)
	// Open to all: a load balancer or a probe checks it without a token.
	a.mux.HandleFunc("GET /healthz", a.health)
	if cfg.Metrics != nil {
		// Counts and latencies, no transaction data, but not for everyone.
		a.mux.Handle("GET /metrics", a.gate.Require(RoleRead, cfg.Metrics))
	}
	return &Handler{a: a, traced: traced(a, cfg.TracerProvider)}
}

// ServeHTTP serves the API.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.traced.ServeHTTP(w, r) }

// Gate is the chain (cross-site check, authentication, role) in front of
// the API's routes, to put in front of other handlers of the same server.
func (h *Handler) Gate() *Gate { return h.a.gate }

// Close stops waiting for the decisions of transactions begun without
// waiting, and returns when those waits have ended.
func (h *Handler) Close() {
	h.a.mu.Lock()
	h.a.mu.closed = true
	h.a.mu.Unlock()
	h.a.cancel()
	h.a.wg.Wait()
}

// ServeHTTP routes the request. The mux's own plain-text 404 and 405
// answers are replaced by JSON ones.
func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: w}
	route := "unmatched"
	defer func() {
		if a.Observe != nil {
			a.Observe(route, sw.status())
		}
	}()
	h, pattern := a.mux.Handler(r)
	if pattern == "" {
		a.unrouted(sw, r, h)
		return
	}
	route = pattern
	r.Body = http.MaxBytesReader(w, r.Body, a.MaxBodyBytes)
	a.mux.ServeHTTP(sw, r)
}

// unrouted answers a request no route matched: 405 with Allow when the path
// exists for other methods, a redirect when the mux cleans the path, 404
// otherwise.
func (a *api) unrouted(w http.ResponseWriter, r *http.Request, h http.Handler) {
	probe := &probeWriter{header: make(http.Header)}
	h.ServeHTTP(probe, r)
	switch {
	case probe.code == http.StatusMethodNotAllowed:
		allow := probe.header.Get("Allow")
		w.Header().Set("Allow", allow)
		fail(w, &apiError{status: http.StatusMethodNotAllowed, body: ErrorBody{Error: "method " + cut(r.Method) + " not allowed on " + cut(r.URL.Path) + " (allowed: " + allow + ")"}})
	case probe.code >= 300 && probe.code < 400:
		http.Redirect(w, r, probe.header.Get("Location"), probe.code)
	default:
		fail(w, &apiError{status: http.StatusNotFound, body: ErrorBody{Error: "no route " + cut(r.Method) + " " + cut(r.URL.Path) + " (routes are under /v1/transactions, /healthz, /metrics)"}})
	}
}

// statusWriter remembers the status code written.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) status() int {
	if s.code == 0 {
		return http.StatusOK
	}
	return s.code
}

// Unwrap lets http.ResponseController reach the connection (flushes).
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// probeWriter records what the mux would answer, writing nothing.
type probeWriter struct {
	header http.Header
	code   int
}

func (p *probeWriter) Header() http.Header { return p.header }
func (p *probeWriter) WriteHeader(code int) {
	if p.code == 0 {
		p.code = code
	}
}
func (p *probeWriter) Write(b []byte) (int, error) {
	p.WriteHeader(http.StatusOK)
	return len(b), nil
}

package coordinator

import (
	"fmt"
	"time"

	"github.com/concord-tx/concord/protocol"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
)

// Default settings.
const (
	DefaultTimeout        = 30 * time.Second
	DefaultLeaseTTL       = 10 * time.Second
	DefaultRetention      = time.Hour
	DefaultRequestTimeout = 2 * time.Second
)

// ClientOption configures a Client.
type ClientOption interface{ applyClient(*options) }

// ReplicaOption configures a Replica.
type ReplicaOption interface{ applyReplica(*options) }

// Option configures a Client and a Replica alike: it is both a
// ClientOption and a ReplicaOption. An option that only one of them reads
// is only that one's type, so that passing it to the other does not
// compile (rather than being silently ignored).
type Option interface {
	ClientOption
	ReplicaOption
}

// sharedOption applies to both.
type sharedOption func(*options)

func (f sharedOption) applyClient(o *options)  { f(o) }
func (f sharedOption) applyReplica(o *options) { f(o) }

// clientOption applies to a Client only.
type clientOption func(*options)

func (f clientOption) applyClient(o *options) { f(o) }

// replicaOption applies to a Replica only.
type replicaOption func(*options)

func (f replicaOption) applyReplica(o *options) { f(o) }

type options struct {
	keys           protocol.Keys
	prefixErr      error
	logger         *zap.Logger
	limits         protocol.Limits
	timeout        time.Duration
	leaseTTL       time.Duration
	retention      time.Duration
	requestTimeout time.Duration
	observer       Observer
	storage        StorageLimits
	now            func() time.Time
	tracer         trace.Tracer
	client         *Client // a replica's: the Client whose watch it follows
}

func defaultOptions() options {
	return options{
		keys:           protocol.DefaultKeys(),
		logger:         zap.NewNop(),
		limits:         protocol.DefaultLimits(),
		leaseTTL:       DefaultLeaseTTL,
		retention:      DefaultRetention,
		requestTimeout: DefaultRequestTimeout,
		observer:       NopObserver{},
		now:            time.Now,
		tracer:         defaultTracer(),
	}
}

func invalidConfig(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
}

// validateShared checks the options both read.
func (o *options) validateShared() error {
	if o.prefixErr != nil {
		return invalidConfig("%w", o.prefixErr)
	}
	if o.requestTimeout <= 0 {
		return invalidConfig("request timeout %v, expected a positive duration (WithRequestTimeout)", o.requestTimeout)
	}
	return nil
}

func newClientOptions(opts []ClientOption) (options, error) {
	o := defaultOptions()
	for _, opt := range opts {
		opt.applyClient(&o)
	}
	if err := o.validateShared(); err != nil {
		return o, err
	}
	if err := o.limits.Validate(); err != nil {
		return o, invalidConfig("%w (WithLimits)", err)
	}
	o.storage = o.storage.withDefaults()
	if o.timeout == 0 {
		// The default, kept within the limits.
		o.timeout = min(max(DefaultTimeout, o.limits.MinTimeout), o.limits.MaxTimeout)
	} else if err := o.limits.ValidateTimeout(o.timeout); err != nil {
		return o, invalidConfig("default timeout: %w (WithDefaultTimeout)", err)
	}
	return o, nil
}

func newReplicaOptions(opts []ReplicaOption) (options, error) {
	o := defaultOptions()
	for _, opt := range opts {
		opt.applyReplica(&o)
	}
	if err := o.validateShared(); err != nil {
		return o, err
	}
	if o.leaseTTL < time.Second {
		return o, invalidConfig("lease TTL %v, expected at least 1s (WithLeaseTTL)", o.leaseTTL)
	}
	if o.retention <= 0 {
		return o, invalidConfig("retention %v, expected a positive duration (WithRetention)", o.retention)
	}
	if o.client != nil && o.client.keys != o.keys {
		return o, invalidConfig("the Client's prefix %q differs from the replica's %q (WithClient, WithPrefix)", o.client.keys.Prefix(), o.keys.Prefix())
	}
	return o, nil
}

// WithPrefix sets the etcd key prefix (default "/tx"). Every client,
// replica and participant of one deployment must use the same prefix.
func WithPrefix(prefix string) Option {
	return sharedOption(func(o *options) {
		k, err := protocol.NewKeys(prefix)
		if err != nil {
			o.prefixErr = err
			return
		}
		o.keys = k
	})
}

// WithLogger sets the logger (default: no logging).
func WithLogger(l *zap.Logger) Option {
	return sharedOption(func(o *options) {
		if l != nil {
			o.logger = l
		}
	})
}

// WithLimits sets the input limits (default protocol.DefaultLimits()).
func WithLimits(l protocol.Limits) ClientOption {
	return clientOption(func(o *options) { o.limits = l })
}

// WithDefaultTimeout sets the prepare timeout of transactions begun without
// one (default, and with 0: 30s, or the nearest the limits allow): a
// transaction not decided by then is aborted.
func WithDefaultTimeout(d time.Duration) ClientOption {
	return clientOption(func(o *options) { o.timeout = d })
}

// WithStorageLimits bounds what Begin lets etcd hold: pending messages
// and their bytes per participant, and undecided transactions overall
// (defaults: 10,000 messages, 64 MiB, 100,000 transactions; a zero field
// keeps its default, a negative one turns that limit off). A Begin past a
// limit fails with a *LimitError matching ErrLimit and writes nothing.
// The counts come from the Client's watch.
func WithStorageLimits(l StorageLimits) ClientOption {
	return clientOption(func(o *options) { o.storage = l })
}

// WithLeaseTTL sets a replica's lease TTL (default 10s): how long a dead
// replica's work waits before another replica takes it over.
func WithLeaseTTL(d time.Duration) ReplicaOption {
	return replicaOption(func(o *options) { o.leaseTTL = d })
}

// WithRetention sets how long terminal records are kept before a replica
// deletes them (default 1h), counted on the leading replica's clock from
// when it saw them finish. Transaction ids are unique within this window.
func WithRetention(d time.Duration) ReplicaOption {
	return replicaOption(func(o *options) { o.retention = d })
}

// WithClient lets a replica follow transactions through c's watch instead
// of a watch of its own. A Client and a Replica in one process (as coord
// serve runs them) then cost etcd one watch, and each change is sent to
// the process once rather than twice. c must use the replica's prefix and
// the same etcd cluster. With every storage limit of c off
// (WithStorageLimits), c's watch leaves out what the replica needs, and
// the replica keeps a watch of its own. Closing c first is allowed: the
// replica then goes on with a watch of its own.
func WithClient(c *Client) ReplicaOption {
	return replicaOption(func(o *options) { o.client = c })
}

// WithRequestTimeout bounds each attempt of an etcd request (default 2s).
// An attempt that times out has an unknown outcome; the request is sent
// again, which the etcd client routes to the next member, and its compares
// tell whether the first attempt applied. An attempt unanswered after a
// quarter of the bound gets a copy alongside it, which goes to the next
// member too. A request caught on an etcd member cut off from its peers,
// or frozen, costs that quarter: such a member takes requests and never
// answers them.
func WithRequestTimeout(d time.Duration) Option {
	return sharedOption(func(o *options) { o.requestTimeout = d })
}

// WithObserver receives events for metrics (default: none).
func WithObserver(obs Observer) Option {
	return sharedOption(func(o *options) {
		if obs != nil {
			o.observer = obs
		}
	})
}

// withClock replaces time.Now, for tests.
func withClock(now func() time.Time) Option {
	return sharedOption(func(o *options) { o.now = now })
}

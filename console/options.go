package console

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/concord-tx/concord/coordinator"
	"github.com/concord-tx/concord/protocol"
	"go.uber.org/zap"
)

// Default settings.
const (
	DefaultStuckAfter     = time.Minute
	DefaultSessionTTL     = 12 * time.Hour
	DefaultMaxSessions    = 10000
	DefaultRefresh        = 2 * time.Second
	DefaultRequestTimeout = 5 * time.Second
	DefaultIdleAfter      = time.Minute
	// TraceIDPlaceholder is replaced by the trace id in WithTraceURL's
	// template.
	TraceIDPlaceholder = "{trace_id}"
)

// Option configures a Console.
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	prefix         string
	keys           protocol.Keys // from prefix
	logger         *zap.Logger
	auth           Authenticator
	leader         func() bool
	traceURL       string
	traceID        func(coordinator.Transaction) string
	stuckAfter     time.Duration
	sessionTTL     time.Duration
	maxSessions    int
	refresh        time.Duration
	requestTimeout time.Duration
	idleAfter      time.Duration
	now            func() time.Time
}

func newOptions(opts []Option) (options, error) {
	o := options{
		prefix:         protocol.DefaultPrefix,
		logger:         zap.NewNop(),
		leader:         func() bool { return false },
		traceID:        func(t coordinator.Transaction) string { return t.Record.Trace.TraceID() },
		stuckAfter:     DefaultStuckAfter,
		sessionTTL:     DefaultSessionTTL,
		maxSessions:    DefaultMaxSessions,
		refresh:        DefaultRefresh,
		requestTimeout: DefaultRequestTimeout,
		idleAfter:      DefaultIdleAfter,
		now:            time.Now,
	}
	for _, opt := range opts {
		opt.apply(&o)
	}
	invalid := func(format string, args ...any) (options, error) {
		return o, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
	}
	var err error
	if o.keys, err = protocol.NewKeys(o.prefix); err != nil {
		return invalid("%w (WithPrefix)", err)
	}
	switch {
	case o.stuckAfter <= 0:
		return invalid("stuck after %v, expected a positive duration (WithStuckAfter)", o.stuckAfter)
	case o.sessionTTL <= 0 || o.maxSessions <= 0:
		return invalid("sessions: TTL %v, at most %d, expected both positive (WithSessions)", o.sessionTTL, o.maxSessions)
	case o.refresh <= 0 || o.requestTimeout <= 0 || o.idleAfter <= 0:
		return invalid("refresh %v, request timeout %v, idle after %v, expected positive durations", o.refresh, o.requestTimeout, o.idleAfter)
	}
	if err := ValidateTraceURL(o.traceURL); err != nil {
		return invalid("%w (WithTraceURL)", err)
	}
	return o, nil
}

// ValidateTraceURL checks a trace link template: empty (no links), or an
// http or https URL containing TraceIDPlaceholder.
func ValidateTraceURL(t string) error {
	if t == "" {
		return nil
	}
	u, err := url.Parse(strings.ReplaceAll(t, TraceIDPlaceholder, "x"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || !strings.Contains(t, TraceIDPlaceholder) {
		return fmt.Errorf("trace URL %q: expected an http(s) URL containing %s, e.g. https://jaeger.example/trace/%s", t, TraceIDPlaceholder, TraceIDPlaceholder)
	}
	return nil
}

// WithPrefix sets the etcd key prefix (default "/tx"), the same as the
// coordinator's.
func WithPrefix(prefix string) Option {
	return optionFunc(func(o *options) { o.prefix = prefix })
}

// WithLogger sets the logger (default: no logging). Aborts are logged at
// info with who asked and from where.
func WithLogger(l *zap.Logger) Option {
	return optionFunc(func(o *options) {
		if l != nil {
			o.logger = l
		}
	})
}

// WithAuthenticator requires every page to be signed in with a credential
// a checks (default: none, an open console for a loopback-only server).
func WithAuthenticator(a Authenticator) Option {
	return optionFunc(func(o *options) { o.auth = a })
}

// WithLeader tells whether this replica leads, for the replicas panel.
func WithLeader(f func() bool) Option {
	return optionFunc(func(o *options) {
		if f != nil {
			o.leader = f
		}
	})
}

// WithTraceURL links trace ids through template, an http(s) URL in which
// TraceIDPlaceholder stands for the id (default: no link).
func WithTraceURL(template string) Option {
	return optionFunc(func(o *options) { o.traceURL = template })
}

// WithTraceID tells the trace id of a transaction, "" for none (default:
// the trace id of the W3C trace context stored in its record).
func WithTraceID(f func(coordinator.Transaction) string) Option {
	return optionFunc(func(o *options) {
		if f != nil {
			o.traceID = f
		}
	})
}

// WithStuckAfter sets how long a decided transaction may wait for its
// participants to apply the decision before the overview flags it
// (default DefaultStuckAfter).
func WithStuckAfter(d time.Duration) Option {
	return optionFunc(func(o *options) { o.stuckAfter = d })
}

// WithSessions bounds browser sessions: each lasts ttl from sign-in, and at
// most max exist at once (the oldest is dropped to make room).
func WithSessions(ttl time.Duration, max int) Option {
	return optionFunc(func(o *options) { o.sessionTTL, o.maxSessions = ttl, max })
}

// WithRefresh sets how often the participants and replicas panel is read
// from etcd while an overview page is open (default DefaultRefresh).
func WithRefresh(d time.Duration) Option {
	return optionFunc(func(o *options) { o.refresh = d })
}

// WithRequestTimeout bounds the etcd reads behind one page (default
// DefaultRequestTimeout).
func WithRequestTimeout(d time.Duration) Option {
	return optionFunc(func(o *options) { o.requestTimeout = d })
}

// WithIdleAfter sets how long the watch runs on after the last page closed
// (default DefaultIdleAfter).
func WithIdleAfter(d time.Duration) Option {
	return optionFunc(func(o *options) { o.idleAfter = d })
}

package participant

import (
	"time"

	"github.com/concord-tx/concord/protocol"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
)

// Default settings.
const (
	DefaultLeaseTTL       = 10 * time.Second
	DefaultWorkers        = 32
	DefaultResyncInterval = time.Minute
	DefaultRequestTimeout = 2 * time.Second
	DefaultMinBackoff     = 100 * time.Millisecond
	DefaultMaxBackoff     = 5 * time.Second
	DefaultAckDelay       = 10 * time.Millisecond
	// DefaultFailureReportInterval: see WithFailureReportInterval.
	DefaultFailureReportInterval = 5 * time.Second
)

// Option configures a Participant.
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	keys           protocol.Keys
	prefixErr      error
	logger         *zap.Logger
	leaseTTL       time.Duration
	workers        int
	resync         time.Duration
	requestTimeout time.Duration
	minBackoff     time.Duration
	maxBackoff     time.Duration
	ackDelay       time.Duration
	failureReport  time.Duration
	tracer         trace.Tracer
}

// WithPrefix sets the etcd key prefix (default "/tx"); it must match the
// coordinator's.
func WithPrefix(prefix string) Option {
	return optionFunc(func(o *options) {
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
	return optionFunc(func(o *options) {
		if l != nil {
			o.logger = l
		}
	})
}

// WithLeaseTTL sets the TTL of the instance's lease (default 10s): how long
// after a crash its unvoted transactions are aborted, and how long a
// standby waits before taking over.
func WithLeaseTTL(d time.Duration) Option {
	return optionFunc(func(o *options) { o.leaseTTL = d })
}

// WithWorkers sets how many handler calls run at once (default 32). A
// Commit or Abort waiting to be retried does not hold one.
func WithWorkers(n int) Option {
	return optionFunc(func(o *options) { o.workers = n })
}

// WithResyncInterval sets how often the inbox is re-listed as a safety net
// behind the watch (default 1m).
func WithResyncInterval(d time.Duration) Option {
	return optionFunc(func(o *options) { o.resync = d })
}

// WithRequestTimeout bounds each attempt of an etcd request (default 2s);
// a request that times out is sent again, and the etcd client routes it to
// the next member. An attempt unanswered after a quarter of the bound gets
// a copy alongside it, which goes to the next member too. A request caught
// on an etcd member cut off from its peers, or frozen, costs that quarter:
// such a member takes requests and never answers them.
func WithRequestTimeout(d time.Duration) Option {
	return optionFunc(func(o *options) { o.requestTimeout = d })
}

// WithRetryBackoff sets the backoff between retries of Commit and Abort
// handlers and of etcd requests (default 100ms doubling to 5s).
func WithRetryBackoff(minimum, maximum time.Duration) Option {
	return optionFunc(func(o *options) { o.minBackoff, o.maxBackoff = minimum, maximum })
}

// WithFailureReportInterval sets how often, at most, the participant
// rewrites its report of a Commit or Abort handler that keeps failing for
// one transaction (default 5s; the first failure is reported at once).
// The report (protocol.Failure) shows operators, through the coordinator's
// Get, which participant holds a decided transaction up and why; the
// acknowledgement removes it.
func WithFailureReportInterval(d time.Duration) Option {
	return optionFunc(func(o *options) { o.failureReport = d })
}

// WithAckDelay sets how long an acknowledgement may wait to share a Txn with
// a vote (default 10ms). Nobody waits for acknowledgements: the initiator
// has its answer at the decision. Longer delays save etcd writes when
// traffic is light; the transaction becomes terminal that much later.
func WithAckDelay(d time.Duration) Option {
	return optionFunc(func(o *options) { o.ackDelay = d })
}

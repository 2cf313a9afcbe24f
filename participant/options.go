package participant

import (
	"time"

	"github.com/concord-tx/concord/protocol"
	"go.uber.org/zap"
)

// Default settings.
const (
	DefaultLeaseTTL       = 10 * time.Second
	DefaultWorkers        = 32
	DefaultResyncInterval = time.Minute
	DefaultRequestTimeout = 5 * time.Second
	DefaultMinBackoff     = 100 * time.Millisecond
	DefaultMaxBackoff     = 5 * time.Second
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

// WithWorkers sets how many transactions are handled at once (default 32).
func WithWorkers(n int) Option {
	return optionFunc(func(o *options) { o.workers = n })
}

// WithResyncInterval sets how often the inbox is re-listed as a safety net
// behind the watch (default 1m).
func WithResyncInterval(d time.Duration) Option {
	return optionFunc(func(o *options) { o.resync = d })
}

// WithRequestTimeout bounds each etcd request (default 5s).
func WithRequestTimeout(d time.Duration) Option {
	return optionFunc(func(o *options) { o.requestTimeout = d })
}

// WithRetryBackoff sets the backoff between retries of Commit and Abort
// handlers and of etcd requests (default 100ms doubling to 5s).
func WithRetryBackoff(minimum, maximum time.Duration) Option {
	return optionFunc(func(o *options) { o.minBackoff, o.maxBackoff = minimum, maximum })
}

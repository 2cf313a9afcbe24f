package sqlhandler

import (
	"database/sql"
	"fmt"
	"time"

	"go.uber.org/zap"
)

// Default settings.
const (
	// DefaultRetention is how long a final row (committed, aborted,
	// refused) is kept: far longer than the coordinator's retention window
	// (an hour by default), after which no message for the transaction can
	// come, plus the time a participant may take to acknowledge.
	DefaultRetention = 24 * time.Hour
	// DefaultCleanupInterval is how often the background cleanup runs.
	DefaultCleanupInterval = time.Hour
	// DefaultConflictRetries bounds the immediate retries of a call that
	// met a concurrent call for the same transaction, or a serialization
	// failure, before it is reported (and retried by the participant).
	DefaultConflictRetries = 3
)

// Dialect is the SQL spoken by the database. New recognises the drivers
// of github.com/jackc/pgx/v5/stdlib, github.com/lib/pq and
// modernc.org/sqlite; WithDialect names it for others.
type Dialect uint8

const (
	DialectUnknown Dialect = iota
	PostgreSQL
	SQLite
)

func (d Dialect) String() string {
	switch d {
	case PostgreSQL:
		return "postgresql"
	case SQLite:
		return "sqlite"
	}
	return "unknown"
}

// Option configures a Handler.
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	table           string
	create          bool
	dialect         Dialect
	isolation       sql.IsolationLevel
	logger          *zap.Logger
	retention       time.Duration
	cleanupInterval time.Duration
	conflictRetries int
	err             error
}

func defaults() options {
	return options{
		table:           DefaultTable,
		create:          true,
		isolation:       sql.LevelDefault,
		logger:          zap.NewNop(),
		retention:       DefaultRetention,
		cleanupInterval: DefaultCleanupInterval,
		conflictRetries: DefaultConflictRetries,
	}
}

// WithTable names the bookkeeping table (default "concord_tx"; its
// version is kept in the table of that name with "_version" appended).
func WithTable(name string) Option {
	return optionFunc(func(o *options) { o.table = name })
}

// WithoutCreate makes New only check the bookkeeping table, for teams
// whose migrations are run elsewhere: a missing table is ErrSchema, whose
// message holds the SQL to run (Schema returns it too).
func WithoutCreate() Option {
	return optionFunc(func(o *options) { o.create = false })
}

// WithDialect names the database's dialect, for a driver New does not
// recognise.
func WithDialect(d Dialect) Option {
	return optionFunc(func(o *options) { o.dialect = d })
}

// WithIsolation sets the isolation level of every local transaction
// (default: the database's own, READ COMMITTED in PostgreSQL, SERIALIZABLE
// in SQLite). The bookkeeping needs no more than READ COMMITTED; see the
// package documentation for what the user's functions may need.
func WithIsolation(level sql.IsolationLevel) Option {
	return optionFunc(func(o *options) { o.isolation = level })
}

// WithLogger sets the logger (default: no logging).
func WithLogger(l *zap.Logger) Option {
	return optionFunc(func(o *options) {
		if l != nil {
			o.logger = l
		}
	})
}

// WithCleanup sets how often a background goroutine removes this
// participant's final rows, and how old (since their last change) they
// must be (defaults: every hour, older than DefaultRetention). An interval
// of 0 turns the background cleanup off; call Cleanup instead. The
// goroutine is the Handler's: Close stops it.
func WithCleanup(interval, retention time.Duration) Option {
	return optionFunc(func(o *options) {
		if interval < 0 || retention <= 0 {
			o.err = fmt.Errorf("%w: cleanup every %v of rows older than %v, expected an interval ≥ 0 and a positive retention", ErrInvalidConfig, interval, retention)
			return
		}
		o.cleanupInterval, o.retention = interval, retention
	})
}

// WithConflictRetries bounds the immediate retries of a call that met a
// concurrent call for the same transaction or a serialization failure
// (default DefaultConflictRetries).
func WithConflictRetries(n int) Option {
	return optionFunc(func(o *options) {
		if n < 0 {
			o.err = fmt.Errorf("%w: %d conflict retries, expected ≥ 0", ErrInvalidConfig, n)
			return
		}
		o.conflictRetries = n
	})
}

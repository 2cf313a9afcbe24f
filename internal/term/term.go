package term

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/concord-tx/concord/internal/session"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// ErrLeaseLost says that a term ended because its lease was lost (expired
// in etcd, or not renewed within its TTL), not because the caller stopped.
var ErrLeaseLost = errors.New("lease lost")

// Config says what lease to keep and how to pace the terms.
type Config struct {
	TTL            time.Duration // lease TTL, at least 1s
	RequestTimeout time.Duration // bound on each grant and revoke
	MinBackoff     time.Duration // pause after a failed term; doubles while terms keep failing
	MaxBackoff     time.Duration // the most the pause grows to
	Logger         *zap.Logger   // may be nil
	// Lost is the log message when a term ends and another starts.
	Lost string
}

// Work is what a term runs. ctx ends when the lease is lost or the caller
// stops; the work returns then (or earlier, with the reason it stopped).
type Work func(ctx context.Context, lease clientv3.LeaseID) error

// Run runs terms until ctx ends: each grants a lease, runs work with it,
// and revokes it. It returns when ctx has ended and the last term's lease
// is revoked (or given up, if etcd could not be reached within
// RequestTimeout: it then expires by itself).
func Run(ctx context.Context, cli *clientv3.Client, cfg Config, work Work) {
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	backoff := cfg.MinBackoff
	for ctx.Err() == nil {
		start := time.Now()
		err := One(ctx, cli, cfg, work)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > cfg.TTL {
			// The term ran: this loss is not one of a series of failures.
			backoff = cfg.MinBackoff
		}
		log.Warn(cfg.Lost, zap.Error(err), zap.Duration("backoff", backoff))
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, cfg.MaxBackoff)
	}
}

// One runs a single term: it grants a lease, runs work with a context that
// ends when the lease is lost, and revokes the lease before it returns.
// The error is ctx's once ctx has ended, wraps ErrLeaseLost when the
// lease was lost, and is work's otherwise.
func One(ctx context.Context, cli *clientv3.Client, cfg Config, work Work) error {
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	sess, err := session.New(ctx, cli, session.Config{TTL: cfg.TTL, RequestTimeout: cfg.RequestTimeout, Logger: log})
	if err != nil {
		return fmt.Errorf("session: %w", err)
	}
	lease := sess.Lease()
	defer func() {
		// Stopping, or the session was lost while etcd may still hold the
		// lease: revoke it, so that a standby, or this process's next
		// term, need not wait for it to expire. Best effort: if etcd
		// cannot be reached, the lease expires by itself.
		if err := session.Revoke(cli, lease, cfg.RequestTimeout); err != nil {
			log.Debug("revoke lease", zap.Int64("lease", int64(lease)), zap.Error(err))
		}
		sess.Orphan()
	}()
	tctx, cancel := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case <-sess.Done():
			cancel()
		case <-tctx.Done():
		}
	}()
	err = work(tctx, lease)
	cancel()
	<-watched
	if ctx.Err() != nil {
		return ctx.Err() // stopped: the session ends with ctx too
	}
	select {
	case <-sess.Done():
		return fmt.Errorf("lease %x: %w", lease, ErrLeaseLost)
	default:
		return err
	}
}

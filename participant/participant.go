package participant

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/concord-tx/concord/internal/retry"
	"github.com/concord-tx/concord/internal/term"
	"github.com/concord-tx/concord/internal/tracing"
	"github.com/concord-tx/concord/internal/watch"
	"github.com/concord-tx/concord/protocol"
	"github.com/google/uuid"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Participant is one instance of a named participant. It registers under
// its name with its own lease, or waits as a standby while another instance
// holds the name, and then handles the transactions in its inbox.
type Participant struct {
	cli      *clientv3.Client
	name     string
	instance string
	h        Handler
	opts     options
	keys     protocol.Keys
	log      *zap.Logger
	cancel   context.CancelFunc
	done     chan struct{}
	// noSpaceLogged is when the NOSPACE alarm was last logged (UnixNano).
	noSpaceLogged atomic.Int64

	mu struct {
		sync.Mutex
		active   bool
		activeCh chan struct{} // closed while active, replaced when not
		inbox    *inbox        // the inbox served, while one is (tests read its bookkeeping)
	}
}

// New validates its arguments and starts the participant in the
// background. cli is not closed by the participant.
func New(cli *clientv3.Client, name string, h Handler, opts ...Option) (*Participant, error) {
	if err := protocol.ValidateName(name); err != nil {
		return nil, fmt.Errorf("%w: name: %w", ErrInvalidConfig, err)
	}
	if h == nil {
		return nil, fmt.Errorf("%w: handler is nil", ErrInvalidConfig)
	}
	o := options{
		keys:           protocol.DefaultKeys(),
		logger:         zap.NewNop(),
		leaseTTL:       DefaultLeaseTTL,
		workers:        DefaultWorkers,
		resync:         DefaultResyncInterval,
		requestTimeout: DefaultRequestTimeout,
		minBackoff:     DefaultMinBackoff,
		maxBackoff:     DefaultMaxBackoff,
		ackDelay:       DefaultAckDelay,
		failureReport:  DefaultFailureReportInterval,
		tracer:         tracing.Tracer(nil, "participant"),
	}
	for _, opt := range opts {
		opt.apply(&o)
	}
	switch {
	case o.prefixErr != nil:
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, o.prefixErr)
	case o.leaseTTL < time.Second:
		return nil, fmt.Errorf("%w: lease TTL %v, expected at least 1s", ErrInvalidConfig, o.leaseTTL)
	case o.workers < 1:
		return nil, fmt.Errorf("%w: workers %d, expected at least 1", ErrInvalidConfig, o.workers)
	case o.resync <= 0 || o.requestTimeout <= 0 || o.minBackoff <= 0 || o.maxBackoff < o.minBackoff || o.ackDelay <= 0 || o.failureReport <= 0:
		return nil, fmt.Errorf("%w: resync interval, request timeout, backoff, ack delay and failure report interval must be positive", ErrInvalidConfig)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Participant{
		cli:      cli,
		name:     name,
		instance: uuid.NewString(),
		h:        h,
		opts:     o,
		keys:     o.keys,
		log:      o.logger.With(zap.String("participant", name)),
		cancel:   cancel,
		done:     make(chan struct{}),
	}
	p.mu.activeCh = make(chan struct{})
	go p.run(ctx)
	return p, nil
}

// Name returns the participant's name.
func (p *Participant) Name() string { return p.name }

// Done is closed when the participant has stopped.
func (p *Participant) Done() <-chan struct{} { return p.done }

// IsActive reports whether this instance holds the registration now.
func (p *Participant) IsActive() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.active
}

// WaitActive blocks until this instance holds the registration and has
// caught up with its inbox, or ctx ends, or the participant is closed.
func (p *Participant) WaitActive(ctx context.Context) error {
	p.mu.Lock()
	ch := p.mu.activeCh
	p.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-p.done:
		return ErrClosed
	}
}

// Close stops handling transactions, waits for handlers in flight (their
// ctx is cancelled) and revokes the lease, so that a standby takes over at
// once and unvoted transactions are aborted without waiting for the TTL.
func (p *Participant) Close() error {
	p.cancel()
	<-p.done
	return nil
}

func (p *Participant) setActive(active bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if active == p.mu.active {
		return
	}
	p.mu.active = active
	if active {
		close(p.mu.activeCh)
	} else {
		p.mu.activeCh = make(chan struct{})
	}
}

func (p *Participant) run(ctx context.Context) {
	defer close(p.done)
	term.Run(ctx, p.cli, term.Config{
		TTL:            p.opts.leaseTTL,
		RequestTimeout: p.opts.requestTimeout,
		MinBackoff:     p.opts.minBackoff,
		MaxBackoff:     p.opts.maxBackoff,
		Logger:         p.log,
		Lost:           "participant lost its session, registering again",
	}, p.serve)
}

// serve is one lease of this instance: register (waiting as a standby if
// need be), then serve the inbox until ctx ends (the lease is lost, or the
// participant closes).
func (p *Participant) serve(ctx context.Context, lease clientv3.LeaseID) error {
	if err := p.register(ctx, lease); err != nil {
		return err
	}
	defer p.setActive(false)
	in := newInbox(p, lease)
	p.mu.Lock()
	p.mu.inbox = in
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.mu.inbox = nil
		p.mu.Unlock()
	}()
	return in.serve(ctx)
}

// policy is how the participant bounds and repeats its etcd requests.
func (p *Participant) policy() retry.Policy {
	return retry.Policy{
		Timeout:    p.opts.requestTimeout,
		HedgeAfter: retry.HedgeAfter(p.opts.requestTimeout),
		MinBackoff: p.opts.minBackoff,
		MaxBackoff: p.opts.maxBackoff,
		OnError: func(err error) {
			if retry.NoSpace(err) {
				p.noSpace(err)
				return
			}
			p.log.Debug("etcd request failed", zap.Error(err))
		},
		// Votes and acknowledgements must land eventually: they wait for
		// an operator to free space, and say so in the log.
		RetryNoSpace: true,
	}
}

// noSpaceLogEvery bounds how often the NOSPACE alarm is logged.
const noSpaceLogEvery = 5 * time.Second

// noSpace logs that etcd is out of space, at most every noSpaceLogEvery.
func (p *Participant) noSpace(err error) {
	now := time.Now().UnixNano()
	last := p.noSpaceLogged.Load()
	if now-last < int64(noSpaceLogEvery) || !p.noSpaceLogged.CompareAndSwap(last, now) {
		return
	}
	p.log.Error("etcd refuses writes: its space quota is full; votes and acknowledgements are retried until an operator compacts, defragments and disarms the alarm",
		zap.Error(ErrNoSpace), zap.NamedError("etcd", err))
}

// register creates the registration key with this instance's lease, or
// waits for the instance holding it to go away. A key this instance wrote
// in an earlier term (its value is our instance id) is moved to the new
// lease at once: the earlier term has stopped, and moving the key fences
// anything it still had in flight.
func (p *Participant) register(ctx context.Context, lease clientv3.LeaseID) error {
	key := p.keys.Participant(p.name)
	for {
		// Harmless to repeat: an attempt whose answer was lost left our
		// instance id in the key, which the Else branch moves on.
		resp, err := retry.Do(ctx, p.policy(), func(ctx context.Context) (*clientv3.TxnResponse, error) {
			return p.cli.Txn(ctx).
				If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
				Then(clientv3.OpPut(key, p.instance, clientv3.WithLease(lease))).
				Else(clientv3.OpTxn(
					[]clientv3.Cmp{clientv3.Compare(clientv3.Value(key), "=", p.instance)},
					[]clientv3.Op{clientv3.OpPut(key, p.instance, clientv3.WithLease(lease))},
					[]clientv3.Op{clientv3.OpGet(key)})).
				Commit()
		})
		if err != nil {
			return fmt.Errorf("register: %w", err)
		}
		if resp.Succeeded || resp.Responses[0].GetResponseTxn().Succeeded {
			p.log.Info("registered", zap.String("instance", p.instance), zap.Int64("lease", int64(lease)))
			return nil
		}
		kvs := resp.Responses[0].GetResponseTxn().Responses[0].GetResponseRange().Kvs
		if len(kvs) == 0 {
			continue // deleted between the compares and the read
		}
		kv := kvs[0]
		p.log.Info("standby: another instance holds the name", zap.String("holder", string(kv.Value)))
		if err := watch.UntilDeleted(ctx, p.cli, p.log, key, resp.Header.Revision); errors.Is(err, watch.ErrEnded) {
			// Ended without the deletion: pause before the read that tells.
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(p.opts.minBackoff):
			}
		} else if err != nil {
			return err
		}
	}
}

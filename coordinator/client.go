package coordinator

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/concord-tx/concord/internal/batch"
	"github.com/concord-tx/concord/internal/tracing"
	"github.com/concord-tx/concord/protocol"
	"github.com/google/uuid"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
)

// Client is the initiator's API: begin transactions, wait for their
// outcome, read, list and abort them. It is safe for concurrent use. A
// Client decides nothing on its own except an explicit Abort; deadlines and
// lost participants are handled by a Replica, which must be running
// somewhere for transactions to be driven to completion.
type Client struct {
	cli  *clientv3.Client
	opts options
	keys protocol.Keys
	log  *zap.Logger
	hub  *hub // also counts, for the storage limits, what participants have pending
	// begins group-commits concurrent begins into one Txn each.
	begins *batch.Writer
}

// NewClient returns a Client using cli, which it does not close. It reads
// the current revision once, so that Wait misses no decision from then on.
func NewClient(ctx context.Context, cli *clientv3.Client, opts ...ClientOption) (*Client, error) {
	o, err := newClientOptions(opts)
	if err != nil {
		return nil, err
	}
	h, err := startHub(ctx, cli, o)
	if err != nil {
		return nil, err
	}
	return &Client{cli: cli, opts: o, keys: o.keys, log: o.logger, hub: h, begins: batch.New(cli, batch.Config{Retry: policy(o, "begin")})}, nil
}

// Close stops the Client's watch and waits for its goroutine. Calls that are
// waiting return ErrClosed.
func (c *Client) Close() error {
	c.begins.Close()
	c.hub.close()
	return nil
}

// Request describes a transaction to begin.
type Request struct {
	// ID names the transaction. Empty: a new UUID. A caller that supplies
	// its own id makes Begin idempotent: beginning the same id with the same
	// branches again returns the existing transaction.
	ID string
	// Branches: one per participant, 1 to Limits.MaxBranches.
	Branches []protocol.Branch
	// Timeout: how long participants have to vote before the transaction
	// is aborted. Zero: the client's default.
	Timeout time.Duration
}

// Begun says which transaction Begin started or found.
type Begun struct {
	ID       string
	Revision int64 // the record's CreateRevision (R in the protocol)
	Created  bool  // false: it already existed (a repeated begin)
}

// Outcome is the decision of a transaction: what Wait and Do return, and
// what Transaction.Outcome tells of a transaction read by Get, List or
// Abort. It is final once returned, though participants may still be
// applying it.
type Outcome struct {
	ID     string
	State  protocol.State // StateCommitted or StateAborted
	Cause  protocol.Cause // why it aborted
	Reason string
}

// Committed reports whether the transaction committed.
func (o Outcome) Committed() bool { return o.State == protocol.StateCommitted }

func outcomeOf(r protocol.Record) Outcome {
	return Outcome{ID: r.ID, State: r.State.Outcome(), Cause: r.Cause, Reason: r.Reason}
}

// Outcome returns the transaction's decision; its State is StateInvalid
// while it is undecided.
func (t Transaction) Outcome() Outcome { return outcomeOf(t.Record) }

// Begin validates req and writes the transaction in one Txn: the record and
// a prepare message in each participant's inbox. Invalid input is refused
// with an error wrapping ErrInvalidRequest and nothing is written. If the
// outcome of the write is unknown (a timeout), Begin retries it: the Txn
// only creates a record that does not exist, so a retry cannot begin twice.
// Concurrent begins share one etcd Txn (group commit); each keeps its own
// compare.
//
// Begin refuses work past the storage limits (WithStorageLimits) with a
// *LimitError matching ErrLimit, and work etcd has no space for (its
// NOSPACE alarm) with ErrNoSpace; in both cases nothing is written. A
// repeated Begin of an existing id is refused alike while a limit holds:
// Wait for it instead.
//
// Any other error after validation (ctx ended, etcd unreachable) leaves the
// outcome unknown: the transaction may exist. The returned Begun still
// carries its ID, generated or not, so that the caller can Begin again with
// that ID and the same branches, or Wait for it, without running the work
// twice under a new id.
func (c *Client) Begin(ctx context.Context, req Request) (b Begun, err error) {
	ctx, span := c.opts.tracer.Start(ctx, tracing.SpanBegin, trace.WithSpanKind(trace.SpanKindProducer))
	defer func() { endBegin(span, b, err) }()
	id := req.ID
	if id == "" {
		id = uuid.NewString()
	} else if err := protocol.ValidateID(id); err != nil {
		return Begun{}, fmt.Errorf("%w: id: %w", ErrInvalidRequest, err)
	}
	if err := c.opts.limits.ValidateBranches(req.Branches); err != nil {
		return Begun{}, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	timeout := req.Timeout
	if timeout == 0 {
		timeout = c.opts.timeout
	}
	if err := c.opts.limits.ValidateTimeout(timeout); err != nil {
		return Begun{}, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	now := c.opts.now().UTC()
	rec := protocol.Record{
		ID:           id,
		State:        protocol.StatePreparing,
		Participants: make([]string, len(req.Branches)),
		Created:      now,
		Deadline:     now.Add(timeout),
		Digest:       protocol.Digest(req.Branches),
		Trace:        tracing.Stored(ctx),
	}
	for i, b := range req.Branches {
		rec.Participants[i] = b.Participant
	}
	recordAttrs(span, rec)
	writes, err := c.keys.BeginWrites(rec, req.Branches)
	if err != nil {
		return Begun{}, fmt.Errorf("%w: transaction %s: %w", ErrInvalidRequest, id, err)
	}
	if err := c.hub.pending.check(c.opts.storage, rec.Participants); err != nil {
		return Begun{ID: id}, fmt.Errorf("coordinator: begin %s: %w", id, err)
	}
	key := c.keys.Record(id)
	resp, rev, err := c.begins.Do(ctx, batch.Op{
		Cmps: []*pb.Compare{batch.CreateRevisionIs(key, 0)},
		Then: batch.Puts(writes),
		Else: []*pb.RequestOp{batch.Get(key)},
		Key:  id,
	})
	if errors.Is(err, batch.ErrClosed) {
		return Begun{ID: id}, fmt.Errorf("coordinator: begin %s: %w", id, ErrClosed)
	}
	if err != nil {
		return Begun{ID: id}, fmt.Errorf("coordinator: begin %s: %w", id, noSpace(err))
	}
	if resp.Succeeded {
		c.opts.observer.Begun(id)
		tracing.Logger(ctx, c.log).Debug("begun", zap.String("txid", id), zap.Int64("rev", rev), zap.Strings("participants", rec.Participants))
		return Begun{ID: id, Revision: rev, Created: true}, nil
	}
	// The record exists: ours from an earlier attempt whose answer was
	// lost, a caller's retry, or somebody else's transaction.
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 {
		return Begun{ID: id}, fmt.Errorf("coordinator: begin %s: record vanished between compare and read", id)
	}
	existing, err := protocol.DecodeRecord(kvs[0].Value)
	if err != nil {
		return Begun{ID: id}, fmt.Errorf("coordinator: begin %s: %w", id, err)
	}
	if existing.Digest != rec.Digest {
		return Begun{ID: id}, fmt.Errorf("%w: %s (state %v, participants %s)", ErrConflict, id, existing.State, strings.Join(existing.Participants, ","))
	}
	return Begun{ID: id, Revision: kvs[0].CreateRevision}, nil
}

// Wait blocks until transaction id is decided and returns the decision, or
// until ctx is done. ErrNotFound if there is no such record.
func (c *Client) Wait(ctx context.Context, id string) (out Outcome, err error) {
	ctx, span := c.opts.startTx(ctx, tracing.SpanWait, id)
	defer func() { endOutcome(span, out, err) }()
	if err := protocol.ValidateID(id); err != nil {
		return Outcome{}, fmt.Errorf("%w: id: %w", ErrInvalidRequest, err)
	}
	w := c.hub.register(id)
	defer c.hub.unregister(id, w)
	resp, err := retry(ctx, c.opts, "get", func(ctx context.Context) (*clientv3.GetResponse, error) {
		return c.cli.Get(ctx, c.keys.Record(id))
	})
	if err != nil {
		return Outcome{ID: id}, fmt.Errorf("coordinator: wait %s: %w", id, err)
	}
	if len(resp.Kvs) == 0 {
		return Outcome{ID: id}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	rec, err := protocol.DecodeRecord(resp.Kvs[0].Value)
	if err != nil {
		return Outcome{ID: id}, fmt.Errorf("coordinator: wait %s: %w", id, err)
	}
	if rec.State.Decided() {
		return outcomeOf(rec), nil
	}
	return c.hub.wait(ctx, id, w)
}

// Do begins the transaction and waits for its decision. Like Begin's, its
// errors after validation leave the outcome unknown; the returned Outcome
// still carries the transaction's ID, to Wait for it or Do it again.
func (c *Client) Do(ctx context.Context, req Request) (out Outcome, err error) {
	if req.ID == "" {
		req.ID = uuid.NewString()
	}
	ctx, span := c.opts.startTx(ctx, tracing.SpanDo, req.ID)
	defer func() { endOutcome(span, out, err) }()
	// Registered before the begin, so the decision cannot slip past.
	w := c.hub.register(req.ID)
	defer c.hub.unregister(req.ID, w)
	b, err := c.Begin(ctx, req)
	if err != nil {
		return Outcome{ID: b.ID}, err
	}
	if !b.Created {
		return c.Wait(ctx, b.ID)
	}
	return c.hub.wait(ctx, b.ID, w)
}

// Abort decides abort for an undecided transaction, as an operator would,
// and returns it (without Branches: Get reads those). A transaction already
// aborting or aborted is returned as it is; one that committed yields
// ErrAlreadyCommitted, with the transaction.
func (c *Client) Abort(ctx context.Context, id string, reason string) (_ Transaction, err error) {
	if reason == "" {
		reason = "aborted by operator"
	}
	ctx, span := c.opts.startTx(ctx, tracing.SpanAbort, id)
	defer func() { tracing.End(span, err) }()
	for {
		rec, rev, err := c.record(ctx, id)
		if err != nil {
			return Transaction{}, err
		}
		linkTo(span, rec)
		switch {
		case rec.State.Committed():
			return Transaction{Record: rec, Revision: rev}, fmt.Errorf("%w: %s is %v", ErrAlreadyCommitted, id, rec.State)
		case rec.State.Decided():
			return Transaction{Record: rec, Revision: rev}, nil
		}
		decided, ok, err := decideAbort(ctx, c.cli, c.opts, rec, rev, nil, protocol.CauseOperator, reason)
		if err != nil {
			return Transaction{}, err
		}
		if ok {
			tracing.Decided(span, protocol.StateAborting, protocol.CauseOperator, "operator")
			tracing.Logger(ctx, c.log).Info("aborted by operator", zap.String("txid", id), zap.String("reason", reason))
			return decided, nil
		}
		// Lost the race: it was decided meanwhile. Read again.
	}
}

// record reads one record and its ModRevision.
func (c *Client) record(ctx context.Context, id string) (protocol.Record, int64, error) {
	if err := protocol.ValidateID(id); err != nil {
		return protocol.Record{}, 0, fmt.Errorf("%w: id: %w", ErrInvalidRequest, err)
	}
	resp, err := retry(ctx, c.opts, "get", func(ctx context.Context) (*clientv3.GetResponse, error) {
		return c.cli.Get(ctx, c.keys.Record(id))
	})
	if err != nil {
		return protocol.Record{}, 0, fmt.Errorf("coordinator: read %s: %w", id, err)
	}
	if len(resp.Kvs) == 0 {
		return protocol.Record{}, 0, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	rec, err := protocol.DecodeRecord(resp.Kvs[0].Value)
	if err != nil {
		return protocol.Record{}, 0, fmt.Errorf("coordinator: read %s: %w", id, err)
	}
	return rec, resp.Kvs[0].ModRevision, nil
}

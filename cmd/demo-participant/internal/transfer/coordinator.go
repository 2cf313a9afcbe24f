package transfer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/concord-tx/concord/internal/tracing"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Outcome is the coordinator's answer about one transaction.
type Outcome struct {
	ID     string `json:"id"`
	State  string `json:"state"` // "committed" or "aborted"
	Reason string `json:"reason,omitempty"`
}

// Committed reports whether the transaction committed.
func (o Outcome) Committed() bool { return o.State == "committed" }

// Coordinator is a client of the coordinator's HTTP API.
type Coordinator struct {
	base   string
	hc     *http.Client
	tracer trace.Tracer
}

// NewCoordinator returns a client of the coordinator at base, e.g.
// "http://127.0.0.1:7070". Each transfer is a client span of tp (nil: the
// global provider), whose trace context the request carries (traceparent),
// so the coordinator and the banks join its trace.
func NewCoordinator(base string, hc *http.Client, tp trace.TracerProvider) (*Coordinator, error) {
	base = strings.TrimRight(base, "/")
	if !strings.HasPrefix(base, "http://") && !strings.HasPrefix(base, "https://") {
		return nil, fmt.Errorf("%w: coordinator address %q, expected http://host:port", ErrInvalidArgument, base)
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Coordinator{base: base, hc: hc, tracer: tracing.Tracer(tp, "cmd/demo-participant/transfer")}, nil
}

type txRequest struct {
	ID       string   `json:"id"`
	Branches []Branch `json:"branches"`
	Timeout  string   `json:"timeout,omitempty"`
}

// Do runs transaction id (empty: a new UUID) and waits for the decision.
// timeout is how long participants have to vote (zero: the coordinator's
// default).
//
// The id is chosen here, before anything is sent, so that a request whose
// answer was lost (connection reset, coordinator restarted) can be sent
// again: the coordinator begins a transaction id only once and answers a
// repeat with the same transaction's decision. Such repeats go on until
// ctx ends.
func (c *Coordinator) Do(ctx context.Context, id string, branches []Branch, timeout time.Duration) (out Outcome, err error) {
	if id == "" {
		id = uuid.NewString()
	}
	ctx, span := c.tracer.Start(ctx, "transfer", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(tracing.AttrTxID.String(id)))
	defer func() {
		span.SetAttributes(tracing.AttrState.String(out.State))
		tracing.End(span, err)
	}()
	req := txRequest{ID: id, Branches: branches}
	if timeout > 0 {
		req.Timeout = timeout.String()
	}
	body, err := json.Marshal(req)
	if err != nil {
		return Outcome{}, err
	}
	backoff := 50 * time.Millisecond
	for {
		out, err := c.post(ctx, body)
		var unknown *unknownOutcomeError
		if !errors.As(err, &unknown) {
			return out, err
		}
		select {
		case <-ctx.Done():
			return Outcome{}, fmt.Errorf("transaction %s: outcome unknown: %w (then %w)", id, unknown.err, ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// unknownOutcomeError: the request may or may not have reached the
// coordinator; sending it again is safe.
type unknownOutcomeError struct{ err error }

func (e *unknownOutcomeError) Error() string { return e.err.Error() }

func (c *Coordinator) post(ctx context.Context, body []byte) (Outcome, error) {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/v1/transactions", bytes.NewReader(body))
	if err != nil {
		return Outcome{}, err
	}
	hreq.Header.Set("Content-Type", "application/json")
	tracing.Header().Inject(ctx, propagation.HeaderCarrier(hreq.Header))
	resp, err := c.hc.Do(hreq)
	if err != nil {
		if ctx.Err() != nil {
			return Outcome{}, fmt.Errorf("coordinator %s: %w", c.base, err)
		}
		return Outcome{}, &unknownOutcomeError{fmt.Errorf("coordinator %s: %w", c.base, err)}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return Outcome{}, &unknownOutcomeError{fmt.Errorf("coordinator %s: reading the answer: %w", c.base, err)}
	}
	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented:
		// The coordinator may have begun it; its answer is unknown.
		return Outcome{}, &unknownOutcomeError{fmt.Errorf("coordinator %s: %s: %s", c.base, resp.Status, errorText(raw))}
	default:
		return Outcome{}, fmt.Errorf("coordinator %s refused the transaction: %s: %s", c.base, resp.Status, errorText(raw))
	}
	var out Outcome
	if err := json.Unmarshal(raw, &out); err != nil {
		return Outcome{}, fmt.Errorf("coordinator %s: undecodable answer %q: %w", c.base, raw, err)
	}
	if out.State != "committed" && out.State != "aborted" {
		return Outcome{}, fmt.Errorf("coordinator %s: answer in state %q, expected committed or aborted", c.base, out.State)
	}
	return out, nil
}

// errorText is the "error" field of a JSON error body, or the body itself.
func errorText(raw []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(raw, &e) == nil && e.Error != "" {
		return e.Error
	}
	return strings.TrimSpace(string(raw))
}

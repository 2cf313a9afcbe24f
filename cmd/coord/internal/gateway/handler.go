package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/concord-tx/concord/internal/tracing"
	"github.com/concord-tx/concord/participant"
	"github.com/concord-tx/concord/protocol"
	"go.opentelemetry.io/otel/propagation"
	"go.uber.org/zap"
)

// RefusedError is the service's no to a Prepare: the vote's reason.
type RefusedError struct{ Reason string }

func (e *RefusedError) Error() string { return e.Reason }

// handler is the participant.Handler that calls the service.
type handler struct {
	cfg Config
	log *zap.Logger
}

var _ participant.Handler = (*handler)(nil)

// Prepare asks the service until it answers: yes (2xx) or no (409, 422).
// Other failures are asked again, with backoff, until ctx ends at the
// deadline or at the decision; the SDK votes on neither.
func (h *handler) Prepare(ctx context.Context, tx participant.Tx) error {
	backoff := h.cfg.MinBackoff
	for {
		err := h.call(ctx, PhasePrepare, tx)
		var refused *RefusedError
		if err == nil || errors.As(err, &refused) {
			return err
		}
		h.log.Warn("prepare call failed; asking again", zap.String("txid", tx.ID), zap.Error(err), zap.Duration("backoff", backoff))
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, h.cfg.MaxBackoff)
	}
}

// Commit and Abort succeed on a 2xx only; the SDK asks again otherwise.
func (h *handler) Commit(ctx context.Context, tx participant.Tx) error {
	return h.apply(ctx, PhaseCommit, tx)
}

func (h *handler) Abort(ctx context.Context, tx participant.Tx) error {
	return h.apply(ctx, PhaseAbort, tx)
}

func (h *handler) apply(ctx context.Context, phase Phase, tx participant.Tx) error {
	err := h.call(ctx, phase, tx)
	var refused *RefusedError
	if errors.As(err, &refused) {
		// A decided outcome cannot be refused: asked again until applied.
		return fmt.Errorf("service refused %s (asked again until it applies it): %s", phase, refused.Reason)
	}
	return err
}

func (h *handler) url(phase Phase) string {
	switch phase {
	case PhasePrepare:
		return h.cfg.PrepareURL
	case PhaseCommit:
		return h.cfg.CommitURL
	default:
		return h.cfg.AbortURL
	}
}

// call makes one signed call. It returns nil on a 2xx, a *RefusedError on
// a 409 or 422, and another error for anything else.
func (h *handler) call(ctx context.Context, phase Phase, tx participant.Tx) error {
	r := NewRequest(h.cfg.Name, phase, tx)
	body, err := json.Marshal(r)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, h.cfg.CallTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, http.MethodPost, h.url(phase), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", r.IdempotencyKey())
	// The call's span (the participant SDK's, in the transaction's trace)
	// goes on to the service, whose own spans then join that trace.
	tracing.Header().Inject(cctx, propagation.HeaderCarrier(req.Header))
	if len(h.cfg.Secret) > 0 {
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		req.Header.Set(HeaderTimestamp, ts)
		req.Header.Set(HeaderSignature, Sign(h.cfg.Secret, ts, body))
	}
	resp, err := h.cfg.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", phase, h.url(phase), err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		h.log.Debug("service answered", zap.String("txid", tx.ID), zap.String("phase", string(phase)), zap.Int("status", resp.StatusCode))
		return nil
	case resp.StatusCode == http.StatusConflict || resp.StatusCode == http.StatusUnprocessableEntity:
		return &RefusedError{Reason: reasonOf(answer, resp.StatusCode)}
	default:
		return fmt.Errorf("%s %s: HTTP %d: %s", phase, h.url(phase), resp.StatusCode, protocol.CutText(strings.TrimSpace(string(answer)), 200))
	}
}

// reasonOf reads a refusal's reason: {"reason": "..."}, else the plain
// text, else the status. It is not cut here: the vote cuts it as the
// protocol says (MaxReasonLength bytes, no mark), as for any participant.
func reasonOf(body []byte, status int) string {
	var v struct {
		Reason string `json:"reason"`
	}
	if json.Unmarshal(body, &v) == nil && v.Reason != "" {
		return v.Reason
	}
	if s := strings.TrimSpace(string(body)); s != "" && !json.Valid(body) {
		return s
	}
	return fmt.Sprintf("refused by the service (HTTP %d)", status)
}

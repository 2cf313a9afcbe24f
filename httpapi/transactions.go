package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/concord-tx/concord/coordinator"
	"github.com/concord-tx/concord/protocol"
	"github.com/google/uuid"
	"go.uber.org/zap"
)

// Paging bounds of GET /v1/transactions.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// begin handles POST /v1/transactions[?wait=false].
func (a *api) begin(w http.ResponseWriter, r *http.Request) {
	req, wait, aerr := a.parseBegin(r)
	if aerr != nil {
		fail(w, aerr)
		return
	}
	caller, _ := CallerOf(r.Context())
	release, aerr := a.pending.acquire(caller.Name)
	if aerr != nil {
		a.Logger.Warn("begin refused: limit reached", zap.String("txid", req.ID), zap.String("limit", aerr.body.Limit),
			zap.String("credential", caller.Name), zap.String("remote", r.RemoteAddr))
		fail(w, aerr)
		return
	}
	timeout := req.Timeout
	if timeout == 0 {
		timeout = a.DefaultTimeout
	}
	if !wait {
		a.beginNoWait(w, r, req, timeout, release)
		return
	}
	defer release()
	// The leader aborts at the deadline; the grace covers a leader change.
	ctx, cancel := context.WithTimeout(r.Context(), timeout+a.WaitGrace)
	defer cancel()
	out, err := a.Client.Do(ctx, req)
	if err != nil {
		switch {
		case r.Context().Err() != nil:
			// The client went away, or the server is shutting down.
			fail(w, &apiError{status: http.StatusServiceUnavailable, body: ErrorBody{
				Error: "request cancelled before the decision (the coordinator is shutting down or the client went away); if the transaction was begun it goes on: GET /v1/transactions/" + req.ID + " tells its state",
				ID:    req.ID,
			}})
		case ctx.Err() != nil:
			a.undecided(w, r, req.ID, timeout+a.WaitGrace)
		default:
			a.failBegin(w, r, req.ID, err)
		}
		return
	}
	a.Logger.Debug("decided", zap.String("txid", out.ID), zap.Stringer("state", out.State), zap.String("cause", string(out.Cause)))
	writeJSON(w, http.StatusOK, Outcome{ID: out.ID, State: out.State, Cause: out.Cause, Reason: out.Reason})
}

// beginNoWait begins and answers 202 at once. A repeated begin of an
// existing id answers with that transaction's current state. The
// transaction counts against the limits until decided: release is called
// then, or at once when nothing new was begun.
func (a *api) beginNoWait(w http.ResponseWriter, r *http.Request, req coordinator.Request, timeout time.Duration, release func()) {
	ctx, cancel := context.WithTimeout(r.Context(), a.RequestTimeout)
	defer cancel()
	b, err := a.Client.Begin(ctx, req)
	if err != nil || !b.Created || !a.background(func(ctx context.Context) {
		defer release()
		wctx, cancel := context.WithTimeout(ctx, timeout+a.WaitGrace)
		defer cancel()
		a.Client.Wait(wctx, b.ID)
	}) {
		release()
	}
	if err != nil {
		a.failBegin(w, r, req.ID, err)
		return
	}
	out := Outcome{ID: b.ID, State: protocol.StatePreparing}
	if !b.Created {
		tx, err := a.Client.Get(ctx, b.ID)
		if err != nil {
			a.failBegin(w, r, req.ID, err)
			return
		}
		out = Outcome{ID: tx.ID, State: tx.State, Cause: tx.Cause, Reason: tx.Reason}
	}
	a.Logger.Debug("begun", zap.String("txid", b.ID), zap.Int64("rev", b.Revision), zap.Bool("created", b.Created))
	writeJSON(w, http.StatusAccepted, out)
}

// failBegin answers a begin that failed after its request was accepted as
// valid: the transaction may exist (etcd did not answer in time) or does
// (another request holds the id), so the answer names it, and on a 409
// gives its state if it can be read.
func (a *api) failBegin(w http.ResponseWriter, r *http.Request, id string, err error) {
	e := errorOf(err)
	if e.status == http.StatusBadRequest {
		fail(w, e)
		return
	}
	e.body.ID = id
	if e.status == http.StatusConflict {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if tx, err := a.Client.Get(ctx, id); err == nil {
			e.body.State = tx.State
		}
	}
	fail(w, e)
}

// undecided answers 504 for a transaction still undecided when the wait
// ended, with its state if it can be read.
func (a *api) undecided(w http.ResponseWriter, r *http.Request, id string, waited time.Duration) {
	body := ErrorBody{
		Error: fmt.Sprintf("no decision after %v; the transaction goes on: GET /v1/transactions/%s tells its state", waited, id),
		ID:    id,
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if tx, err := a.Client.Get(ctx, id); err == nil {
		body.State = tx.State
	}
	a.Logger.Warn("no decision in time", zap.String("txid", id), zap.Duration("waited", waited))
	writeJSON(w, http.StatusGatewayTimeout, body)
}

// beginBody is BeginRequest with branches left raw, so that errors can
// name the branch by index.
type beginBody struct {
	ID       string            `json:"id,omitempty"`
	Branches []json.RawMessage `json:"branches"`
	Timeout  string            `json:"timeout,omitempty"`
}

func (a *api) parseBegin(r *http.Request) (coordinator.Request, bool, *apiError) {
	q, aerr := query(r, "wait")
	if aerr != nil {
		return coordinator.Request{}, false, aerr
	}
	wait := true
	if s := q.Get("wait"); s != "" {
		v, err := strconv.ParseBool(s)
		if err != nil {
			return coordinator.Request{}, false, badRequest("wait: %s is not a boolean (expected true or false)", quoteCut(s))
		}
		wait = v
	}
	data, aerr := readBody(r)
	if aerr != nil {
		return coordinator.Request{}, false, aerr
	}
	var body beginBody
	if aerr := decodeStrict(data, &body, "body"); aerr != nil {
		return coordinator.Request{}, false, aerr
	}
	req := coordinator.Request{ID: body.ID, Branches: make([]protocol.Branch, len(body.Branches))}
	if req.ID == "" {
		// Chosen here rather than by the client so that a 504 can name it.
		req.ID = uuid.NewString()
	}
	for i, raw := range body.Branches {
		var br BranchRequest
		if aerr := decodeStrict(raw, &br, fmt.Sprintf("branches[%d]", i)); aerr != nil {
			return coordinator.Request{}, false, aerr
		}
		req.Branches[i].Participant = br.Participant
		if len(br.Payload) > 0 {
			p, err := canonicalJSON(br.Payload)
			if err != nil {
				return coordinator.Request{}, false, badRequest("branches[%d].payload: %v", i, err)
			}
			req.Branches[i].Payload = p
		}
	}
	if body.Timeout != "" {
		d, err := time.ParseDuration(body.Timeout)
		if err != nil {
			return coordinator.Request{}, false, badRequest("timeout: %s is not a duration (expected e.g. \"5s\")", quoteCut(body.Timeout))
		}
		if d <= 0 {
			return coordinator.Request{}, false, badRequest("timeout: %s is not positive (expected e.g. \"5s\"; omit it for the default, %v)", quoteCut(body.Timeout), a.DefaultTimeout)
		}
		req.Timeout = d
	}
	return req, wait, nil
}

// get handles GET /v1/transactions/{id}.
func (a *api) get(w http.ResponseWriter, r *http.Request) {
	if _, aerr := query(r); aerr != nil {
		fail(w, aerr)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.RequestTimeout)
	defer cancel()
	tx, err := a.Client.Get(ctx, r.PathValue("id"))
	if err != nil {
		fail(w, errorOf(err))
		return
	}
	writeJSON(w, http.StatusOK, detailOf(tx))
}

// list handles GET /v1/transactions?state=&limit=&after=. state may be
// Unfinished: every state not terminal, read from the inbox keys.
func (a *api) list(w http.ResponseWriter, r *http.Request) {
	q, aerr := query(r, "state", "limit", "after")
	if aerr != nil {
		fail(w, aerr)
		return
	}
	opt := coordinator.ListOptions{Limit: DefaultPageSize, After: q.Get("after")}
	if s := q.Get("state"); s == Unfinished {
		opt.Unfinished = true
	} else if s != "" {
		st, err := protocol.ParseState(s)
		if err != nil {
			fail(w, badRequest("state: %s is not a state (expected one of %s, or %s: every state not terminal)", quoteCut(s), stateNames(), Unfinished))
			return
		}
		opt.State = st
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxPageSize {
			fail(w, badRequest("limit: %s is not a whole number between 1 and %d", quoteCut(s), MaxPageSize))
			return
		}
		opt.Limit = n
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.RequestTimeout)
	defer cancel()
	page, err := a.Client.List(ctx, opt)
	if err != nil {
		fail(w, errorOf(err))
		return
	}
	out := List{Transactions: make([]Transaction, len(page.Transactions)), Next: page.Next}
	for i, rec := range page.Transactions {
		out.Transactions[i] = transactionOf(rec.Record)
	}
	writeJSON(w, http.StatusOK, out)
}

// abort handles POST /v1/transactions/{id}/abort with an optional body
// {"reason": "..."}.
func (a *api) abort(w http.ResponseWriter, r *http.Request) {
	if _, aerr := query(r); aerr != nil {
		fail(w, aerr)
		return
	}
	data, aerr := readBody(r)
	if aerr != nil {
		fail(w, aerr)
		return
	}
	var body AbortRequest
	if len(bytes.TrimSpace(data)) > 0 {
		if aerr := decodeStrict(data, &body, "body"); aerr != nil {
			fail(w, aerr)
			return
		}
	}
	id := r.PathValue("id")
	// Every abort is logged with who asked and from where.
	caller, _ := CallerOf(r.Context())
	who := []zap.Field{zap.String("txid", cut(id)), zap.String("credential", caller.Name), zap.String("remote", r.RemoteAddr)}
	ctx, cancel := context.WithTimeout(r.Context(), a.RequestTimeout)
	defer cancel()
	rec, err := a.Client.Abort(ctx, id, body.Reason)
	if err != nil {
		ae := errorOf(err)
		if errors.Is(err, coordinator.ErrAlreadyCommitted) {
			ae.body.ID, ae.body.State = rec.ID, rec.State
		}
		a.Logger.Warn("abort requested, not done", append(who, zap.String("reason", body.Reason), zap.Int("status", ae.status), zap.String("error", ae.body.Error))...)
		fail(w, ae)
		return
	}
	a.Logger.Info("abort requested", append(who, zap.Stringer("state", rec.State), zap.String("reason", rec.Reason))...)
	writeJSON(w, http.StatusOK, Outcome{ID: rec.ID, State: rec.State, Cause: rec.Cause, Reason: rec.Reason})
}

// query returns the request's query parameters, refusing any not in
// allowed: a misspelt filter must not silently list everything.
func query(r *http.Request, allowed ...string) (url.Values, *apiError) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, badRequest("query: %v", err)
	}
	for name := range q {
		if !slices.Contains(allowed, name) {
			expected := "none"
			if len(allowed) > 0 {
				expected = strings.Join(allowed, ", ")
			}
			return nil, badRequest("query: unknown parameter %s (expected %s)", quoteCut(name), expected)
		}
	}
	return q, nil
}

func stateNames() string {
	names := make([]string, len(protocol.States()))
	for i, s := range protocol.States() {
		names[i] = s.String()
	}
	return strings.Join(names, ", ")
}

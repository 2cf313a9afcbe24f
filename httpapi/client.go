package httpapi

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/concord-tx/concord/protocol"
	"github.com/google/uuid"
)

// Client calls a coordinator's HTTP API. It is safe for concurrent use.
type Client struct {
	base  string // scheme://host[:port][/path], no trailing slash
	http  *http.Client
	token string
}

// ClientOption configures a Client.
type ClientOption interface{ apply(*clientOptions) }

type clientOptions struct {
	http    *http.Client
	token   string
	roots   *x509.CertPool
	timeout time.Duration
}

type clientOptionFunc func(*clientOptions)

func (f clientOptionFunc) apply(o *clientOptions) { f(o) }

// WithHTTPClient makes the client send its requests with hc (default: a
// client of its own). WithRootCAs and WithTimeout do not apply to hc.
func WithHTTPClient(hc *http.Client) ClientOption {
	return clientOptionFunc(func(o *clientOptions) { o.http = hc })
}

// WithToken sends token as the bearer credential of every request.
func WithToken(token string) ClientOption {
	return clientOptionFunc(func(o *clientOptions) { o.token = token })
}

// WithRootCAs trusts the certificates in pool (instead of the system's)
// for https:// addresses; see LoadCAFile.
func WithRootCAs(pool *x509.CertPool) ClientOption {
	return clientOptionFunc(func(o *clientOptions) { o.roots = pool })
}

// WithTimeout bounds each request, the wait for a decision included
// (default: none, only the context).
func WithTimeout(d time.Duration) ClientOption {
	return clientOptionFunc(func(o *clientOptions) { o.timeout = d })
}

// LoadCAFile reads the PEM certificates of the authority that signed the
// coordinator's certificate, for WithRootCAs.
func LoadCAFile(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

// NewClient returns a client of the coordinator at addr, e.g.
// "http://127.0.0.1:7070" or "https://coord.example:7070".
func NewClient(addr string, opts ...ClientOption) (*Client, error) {
	u, err := url.Parse(addr)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%s is not an http(s) URL (expected e.g. http://127.0.0.1:7070)", quoteCut(addr))
	}
	var o clientOptions
	for _, opt := range opts {
		opt.apply(&o)
	}
	hc := o.http
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: o.roots}
		hc = &http.Client{Transport: tr, Timeout: o.timeout}
	}
	return &Client{base: strings.TrimSuffix(u.String(), "/"), http: hc, token: o.token}, nil
}

// Errors of the client, to test with errors.Is. An *Error (an answer of
// the API other than success) matches the one for its status; use
// errors.As to read its status and body.
var (
	ErrBadRequest   = errors.New("httpapi: request refused as malformed")                            // 400, 413, 415
	ErrUnauthorized = errors.New("httpapi: no valid credential")                                     // 401
	ErrForbidden    = errors.New("httpapi: not allowed")                                             // 403: role, or a cross-site request
	ErrNotFound     = errors.New("httpapi: transaction not found")                                   // 404
	ErrConflict     = errors.New("httpapi: conflict with the transaction's state")                   // 409
	ErrLimit        = errors.New("httpapi: limit reached")                                           // 429
	ErrNoSpace      = errors.New("httpapi: etcd is out of space")                                    // 507
	ErrUnavailable  = errors.New("httpapi: coordinator or etcd unavailable")                         // 5xx but 501 and 507
	ErrUnknown      = errors.New("httpapi: outcome unknown; the same request is safe to send again") // no answer, or ErrUnavailable
)

// Error is an error answer of the API.
type Error struct {
	Status int
	ErrorBody
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s (HTTP %d %s)", e.ErrorBody.Error, e.Status, http.StatusText(e.Status))
}

// Is matches the sentinel of the answer's status.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrBadRequest:
		return e.Status == http.StatusBadRequest || e.Status == http.StatusRequestEntityTooLarge || e.Status == http.StatusUnsupportedMediaType
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized
	case ErrForbidden:
		return e.Status == http.StatusForbidden
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrConflict:
		return e.Status == http.StatusConflict
	case ErrLimit:
		return e.Status == http.StatusTooManyRequests
	case ErrNoSpace:
		return e.Status == http.StatusInsufficientStorage
	case ErrUnavailable, ErrUnknown:
		return e.Status >= 500 && e.Status != http.StatusNotImplemented && e.Status != http.StatusInsufficientStorage
	}
	return false
}

// noAnswerError is a request that got no answer: it may or may not have
// reached the coordinator.
type noAnswerError struct{ err error }

func (e *noAnswerError) Error() string        { return e.err.Error() }
func (e *noAnswerError) Unwrap() error        { return e.err }
func (e *noAnswerError) Is(target error) bool { return target == ErrUnknown }

// Begin begins a transaction. wait: answer with the decision (200);
// otherwise at once (202, state preparing). Without an id the coordinator
// picks one; with one, sending the same request again is harmless.
func (c *Client) Begin(ctx context.Context, req BeginRequest, wait bool) (Outcome, error) {
	path := "/v1/transactions"
	if !wait {
		path += "?wait=false"
	}
	var out Outcome
	return out, c.do(ctx, http.MethodPost, path, req, &out)
}

// Do begins the transaction and waits for its decision, sending the same
// request again while its outcome is unknown (no answer, or a 5xx that
// says it may have been begun) until ctx ends. The id is chosen here when
// req has none, so that every attempt names the same transaction. The
// answer is committed or aborted.
func (c *Client) Do(ctx context.Context, req BeginRequest) (Outcome, error) {
	if req.ID == "" {
		req.ID = uuid.NewString()
	}
	backoff := 50 * time.Millisecond
	for {
		out, err := c.Begin(ctx, req, true)
		if err == nil {
			if !out.State.Terminal() {
				return out, fmt.Errorf("coordinator %s: answer in state %v, expected committed or aborted", c.base, out.State)
			}
			return out, nil
		}
		if !errors.Is(err, ErrUnknown) || ctx.Err() != nil {
			return Outcome{ID: req.ID}, err
		}
		select {
		case <-ctx.Done():
			return Outcome{ID: req.ID}, fmt.Errorf("transaction %s: outcome unknown: %w (then %w)", req.ID, err, ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// Get reads one transaction with its branches.
func (c *Client) Get(ctx context.Context, id string) (Transaction, error) {
	var out Transaction
	return out, c.do(ctx, http.MethodGet, "/v1/transactions/"+url.PathEscape(id), nil, &out)
}

// ListOptions selects one page of GET /v1/transactions. Zero values are
// left out of the request.
type ListOptions struct {
	State protocol.State // zero: every state
	// Unfinished lists every state not terminal (State must be zero):
	// ?state=unfinished.
	Unfinished bool
	Limit      int    // page size; 0: the server's default
	After      string // the Next of the previous page
}

// Unfinished is the value of ?state= that lists every transaction not yet
// terminal, whatever its state.
const Unfinished = "unfinished"

// List reads one page of transactions.
func (c *Client) List(ctx context.Context, opt ListOptions) (List, error) {
	q := url.Values{}
	switch {
	case opt.Unfinished && opt.State != 0:
		return List{}, fmt.Errorf("httpapi: list: state %v with unfinished: give one or the other", opt.State)
	case opt.Unfinished:
		q.Set("state", Unfinished)
	case opt.State != 0:
		q.Set("state", opt.State.String())
	}
	if opt.Limit != 0 {
		q.Set("limit", strconv.Itoa(opt.Limit))
	}
	if opt.After != "" {
		q.Set("after", opt.After)
	}
	path := "/v1/transactions"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out List
	return out, c.do(ctx, http.MethodGet, path, nil, &out)
}

// Abort asks for transaction id to be aborted. A committed one answers
// ErrConflict.
func (c *Client) Abort(ctx context.Context, id, reason string) (Outcome, error) {
	var out Outcome
	return out, c.do(ctx, http.MethodPost, "/v1/transactions/"+url.PathEscape(id)+"/abort", AbortRequest{Reason: reason}, &out)
}

// Health reads /healthz. A 503 is returned as the Health it carries and an
// *Error.
func (c *Client) Health(ctx context.Context) (Health, error) {
	var out Health
	return out, c.do(ctx, http.MethodGet, "/healthz", nil, &out)
}

// maxAnswerBytes bounds what is read of an answer.
const maxAnswerBytes = 64 << 20

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	injectTrace(ctx, req.Header)
	resp, err := c.http.Do(req)
	if err != nil {
		return &noAnswerError{err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return &noAnswerError{fmt.Errorf("%s %s: reading the answer: %w", method, path, err)}
	}
	if resp.StatusCode >= 300 {
		e := &Error{Status: resp.StatusCode}
		if json.Unmarshal(data, &e.ErrorBody) != nil || e.ErrorBody.Error == "" {
			e.ErrorBody.Error = strings.TrimSpace(string(data))
		}
		json.Unmarshal(data, out) // a 503 from /healthz still says why
		return e
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: answer is not the expected JSON: %w", method, path, err)
	}
	return nil
}

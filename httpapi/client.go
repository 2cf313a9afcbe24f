package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Client calls a coordinator's HTTP API. It is safe for concurrent use.
type Client struct {
	base string // scheme://host[:port][/path], no trailing slash
	http *http.Client
}

// NewClient returns a client of the coordinator at addr, e.g.
// "http://127.0.0.1:7070". hc nil: http.DefaultClient.
func NewClient(addr string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(addr)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%q is not an http(s) URL (expected e.g. http://127.0.0.1:7070)", addr)
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: strings.TrimSuffix(u.String(), "/"), http: hc}, nil
}

// Error is an error answer of the API.
type Error struct {
	Status int
	ErrorBody
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s (HTTP %d %s)", e.ErrorBody.Error, e.Status, http.StatusText(e.Status))
}

// Begin begins a transaction. wait: answer with the decision (200);
// otherwise at once (202, state preparing).
func (c *Client) Begin(ctx context.Context, req BeginRequest, wait bool) (Outcome, error) {
	path := "/v1/transactions"
	if !wait {
		path += "?wait=false"
	}
	var out Outcome
	return out, c.do(ctx, http.MethodPost, path, req, &out)
}

// Get reads one transaction with its branches.
func (c *Client) Get(ctx context.Context, id string) (Transaction, error) {
	var out Transaction
	return out, c.do(ctx, http.MethodGet, "/v1/transactions/"+url.PathEscape(id), nil, &out)
}

// ListOptions selects one page of GET /v1/transactions. Zero values are
// left out of the request.
type ListOptions struct {
	State string // a state name; empty: all
	Limit int    // page size; 0: the server's default
	After string // the Next of the previous page
}

// List reads one page of transactions.
func (c *Client) List(ctx context.Context, opt ListOptions) (List, error) {
	q := url.Values{}
	if opt.State != "" {
		q.Set("state", opt.State)
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

// Abort asks for transaction id to be aborted.
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
	injectTrace(ctx, req.Header)
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
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

package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/concord-tx/concord/coordinator"
)

// The request decoders of the API, fuzzed: every body and query a client
// can send is answered with a decoded request or a 400 that names the
// field; a decoded request, sent again, decodes the same. See FUZZING.md
// at the root for the runs made and what they found.

// fields an error answer may start with, one per input the API reads.
var errorFields = []string{"body", "branches[", "timeout:", "wait:", "query:"}

func checkNamesField(t *testing.T, what string, e *apiError) {
	t.Helper()
	if e.status != http.StatusBadRequest && e.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("%s: status %d (%s), want 400 or 413", what, e.status, e.body.Error)
	}
	if !utf8.ValidString(e.body.Error) {
		t.Fatalf("%s: error %q is not UTF-8", what, e.body.Error)
	}
	for _, f := range errorFields {
		if strings.HasPrefix(e.body.Error, f) {
			return
		}
	}
	t.Fatalf("%s: error %q names no field (expected one of %q first)", what, e.body.Error, errorFields)
}

func beginHTTPRequest(query string, body []byte) *http.Request {
	return &http.Request{
		Method: http.MethodPost,
		URL:    &url.URL{Path: "/v1/transactions", RawQuery: query},
		Header: http.Header{"Content-Type": {"application/json"}},
		Body:   io.NopCloser(bytes.NewReader(body)),
	}
}

// FuzzParseBegin: POST /v1/transactions's query and body.
func FuzzParseBegin(f *testing.F) {
	for _, s := range []struct{ query, body string }{
		{"", `{"id":"t1","branches":[{"participant":"bank-a","payload":{"account":"alice","amount":-5}},{"participant":"bank-b","payload":{"amount":5}}],"timeout":"5s"}`},
		{"wait=false", `{"branches":[{"participant":"a"}]}`},
		{"wait=maybe", `{}`},
		{"wait=1&wait=0", `{"branches":[]}`},
		{"wiat=true", `{}`},
		{"%zz", `{}`},
		{"", ``},
		{"", `{"branches":[{"participant":"a","payload":"<\u2028>"}]} x`},
		{"", `{"branches":[{"participant":"a","extra":1}]}`},
		{"", `{"branches":[{"participant":7}]}`},
		{"", `{"branches":{}}`},
		{"", `{"timeout":"-1s","branches":[]}`},
		{"", `{"timeout":"1e3","branches":[]}`},
		{"", `{"timeout":"9223372036854775807ns","branches":[]}`},
		{"", `{"id":"\ud800","branches":[{"participant":"a","payload":null}]}`},
		{"", `{"branches":[{"participant":"a","payload":  [1, 2 ,{"b" : true}] }]}`},
		{"", `[`},
		{"", `{"id":"` + strings.Repeat("x", 10000) + `"}`},
	} {
		f.Add(s.query, []byte(s.body))
	}
	a := &api{Config: Config{DefaultTimeout: coordinator.DefaultTimeout}}
	f.Fuzz(func(t *testing.T, query string, body []byte) {
		req, wait, e := a.parseBegin(beginHTTPRequest(query, body))
		if e != nil {
			checkNamesField(t, "parseBegin", e)
			return
		}
		if req.ID == "" || req.Timeout < 0 {
			t.Fatalf("parseBegin(%q, %q) = %+v", query, body, req)
		}
		// Send it again as the Go client would: it decodes the same.
		again := BeginRequest{ID: req.ID, Branches: make([]BranchRequest, len(req.Branches))}
		for i, b := range req.Branches {
			if len(b.Payload) > 0 && !json.Valid(b.Payload) {
				t.Fatalf("parseBegin(%q): branch %d payload %q is not JSON", body, i, b.Payload)
			}
			again.Branches[i] = BranchRequest{Participant: b.Participant, Payload: json.RawMessage(b.Payload)}
		}
		if req.Timeout > 0 {
			again.Timeout = req.Timeout.String()
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(again); err != nil {
			t.Fatalf("encoding %+v: %v", again, err)
		}
		q := "wait=false"
		if wait {
			q = ""
		}
		req2, wait2, e := a.parseBegin(beginHTTPRequest(q, buf.Bytes()))
		if e != nil {
			t.Fatalf("parseBegin(%q) accepted, but not as re-sent %s: %s", body, buf.Bytes(), e.body.Error)
		}
		if wait2 != wait || !sameRequest(req, req2) {
			t.Fatalf("round trip of %q:\n got %+v wait %v\nwant %+v wait %v", body, req2, wait2, req, wait)
		}
	})
}

func sameRequest(a, b coordinator.Request) bool {
	if a.ID != b.ID || a.Timeout != b.Timeout || len(a.Branches) != len(b.Branches) {
		return false
	}
	for i := range a.Branches {
		if a.Branches[i].Participant != b.Branches[i].Participant || !bytes.Equal(a.Branches[i].Payload, b.Branches[i].Payload) {
			return false
		}
	}
	return true
}

// FuzzDecodeAbort: the optional body of POST /v1/transactions/{id}/abort.
func FuzzDecodeAbort(f *testing.F) {
	for _, s := range []string{``, `{}`, `{"reason":"ops said so"}`, `{"reason":"\u001b[2J"}`, `{"reason":1}`, `{"why":"x"}`, `{"reason":"a"}{}`, `null`, ` `} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var r AbortRequest
		if e := decodeStrict(body, &r, "body"); e != nil {
			checkNamesField(t, "decodeStrict(abort)", e)
			return
		}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var r2 AbortRequest
		if e := decodeStrict(b, &r2, "body"); e != nil || r2 != r {
			t.Fatalf("round trip of %q: %+v then %+v, %v", body, r, r2, e)
		}
	})
}

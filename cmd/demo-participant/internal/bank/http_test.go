package bank

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync/atomic"
	"testing"

	"go.uber.org/zap/zaptest"
)

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	body, _ := io.ReadAll(rec.Body)
	return rec.Code, string(body)
}

func TestHTTP(t *testing.T) {
	s := newStore(t, map[string]int64{"alice": 100, "bob": 50})
	if _, err := s.Prepare("t-1", 1, payloadOf(t, Move{"alice", -10})); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prepare("t-2", 1, payloadOf(t, Move{"bob", -500})); err == nil {
		t.Fatal("an overdraft was prepared")
	}
	if _, err := s.Abort("t-3", 1, "deadline"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prepare("t-4", 1, payloadOf(t, Move{"bob", 5})); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit("t-4", 1); err != nil {
		t.Fatal(err)
	}
	var active atomic.Bool
	h := NewHTTPHandler(s, "bank-a", active.Load, zaptest.NewLogger(t))

	code, body := get(t, h, "/accounts")
	var accounts map[string]Account
	if err := json.Unmarshal([]byte(body), &accounts); code != 200 || err != nil {
		t.Fatalf("GET /accounts: %d %s %v", code, body, err)
	}
	if len(accounts) != 2 || accounts["alice"] != (Account{100, 10, 0}) || accounts["bob"] != (Account{55, 0, 0}) {
		t.Errorf("GET /accounts: %v", accounts)
	}

	code, body = get(t, h, "/applied")
	var applied map[string]string
	if err := json.Unmarshal([]byte(body), &applied); code != 200 || err != nil {
		t.Fatalf("GET /applied: %d %s %v", code, body, err)
	}
	want := map[string]string{"t-1": "prepared", "t-2": "refused", "t-3": "aborted", "t-4": "committed"}
	if len(applied) != len(want) {
		t.Errorf("GET /applied: %v, want %v", applied, want)
	}
	for id, p := range want {
		if applied[id] != p {
			t.Errorf("GET /applied: %s is %q, want %q", id, applied[id], p)
		}
	}

	code, body = get(t, h, "/applied?phase=prepared")
	applied = nil
	if err := json.Unmarshal([]byte(body), &applied); code != 200 || err != nil || len(applied) != 1 || applied["t-1"] != "prepared" {
		t.Errorf("GET /applied?phase=prepared: %d %s, want only t-1", code, body)
	}
	if code, body := get(t, h, "/applied?phase=done"); code != http.StatusBadRequest {
		t.Errorf("GET /applied?phase=done: %d %s, want 400", code, body)
	}

	if code, body := get(t, h, "/healthz"); code != http.StatusServiceUnavailable {
		t.Errorf("GET /healthz while not registered: %d %s, want 503", code, body)
	}
	active.Store(true)
	if code, body := get(t, h, "/healthz"); code != http.StatusOK {
		t.Errorf("GET /healthz while registered: %d %s, want 200", code, body)
	}
	// Errors are JSON, and name what was expected.
	for _, tt := range []struct {
		method, path string
		code         int
		says         string
	}{
		{http.MethodGet, "/nothing", http.StatusNotFound, `{"error":"no such path /nothing (expected /accounts, /applied or /healthz)"}`},
		{http.MethodPost, "/accounts", http.StatusMethodNotAllowed, `{"error":"POST /accounts: expected GET"}`},
		{http.MethodGet, "/applied?phse=prepared", http.StatusBadRequest, `{"error":"query parameter \"phse\": /applied takes phase"}`},
		{http.MethodGet, "/accounts?x=1", http.StatusBadRequest, `{"error":"query parameter \"x\": /accounts takes none"}`},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
		var got, want any
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || json.Unmarshal([]byte(tt.says), &want) != nil || rec.Code != tt.code || !reflect.DeepEqual(got, want) {
			t.Errorf("%s %s: %d %s, want %d %s", tt.method, tt.path, rec.Code, rec.Body.String(), tt.code, tt.says)
		}
	}
}

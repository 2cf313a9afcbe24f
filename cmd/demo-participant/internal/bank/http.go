package bank

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"go.uber.org/zap"
)

// NewHTTPHandler serves the bank's read-only HTTP API:
//
//	GET /accounts  {"alice": {"balance": 90, "held": 10}, ...}
//	GET /applied   {"<txid>": "prepared"|"committed"|"aborted"|"refused", ...}
//	GET /applied?phase=prepared   only the transactions in that phase
//	GET /healthz   200 {"status": "ok", ...} while active, 503 otherwise
//
// JSON objects are written with their keys sorted; errors too are JSON,
// {"error": "..."}, and a query parameter a path does not take is one (400).
// active reports whether the participant holds its registration and has
// caught up with its inbox.
func NewHTTPHandler(store Ledger, name string, active func() bool, log *zap.Logger) http.Handler {
	mux := http.NewServeMux()
	paths := map[string]bool{"/accounts": true, "/applied": true, "/healthz": true}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if paths[r.URL.Path] {
			w.Header().Set("Allow", "GET, HEAD")
			writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": r.Method + " " + r.URL.Path + ": expected GET"})
			return
		}
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such path " + r.URL.Path + " (expected /accounts, /applied or /healthz)"})
	})
	mux.HandleFunc("GET /accounts", func(w http.ResponseWriter, r *http.Request) {
		if !queryOnly(w, r) {
			return
		}
		accounts, err := store.Accounts()
		if err != nil {
			log.Error("GET /accounts", zap.Error(err))
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, accounts)
	})
	mux.HandleFunc("GET /applied", func(w http.ResponseWriter, r *http.Request) {
		if !queryOnly(w, r, "phase") {
			return
		}
		var only Phase
		if s := r.URL.Query().Get("phase"); s != "" {
			if err := only.UnmarshalText([]byte(s)); err != nil {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("bank: unknown phase %q (expected prepared, committed, aborted or refused)", s)})
				return
			}
		}
		applied, err := store.Applied()
		if err != nil {
			log.Error("GET /applied", zap.Error(err))
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		if only != PhaseInvalid {
			for id, p := range applied {
				if p != only {
					delete(applied, id)
				}
			}
		}
		writeJSON(w, http.StatusOK, applied)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if !queryOnly(w, r) {
			return
		}
		if !active() {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "standby", "participant": name, "active": false})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "participant": name, "active": true})
	})
	return mux
}

// queryOnly answers 400 and returns false if r has a query parameter other
// than allowed: a misspelt filter would otherwise be ignored in silence.
func queryOnly(w http.ResponseWriter, r *http.Request, allowed ...string) bool {
	for k := range r.URL.Query() {
		if !slices.Contains(allowed, k) {
			want := "none"
			if len(allowed) > 0 {
				want = strings.Join(allowed, ", ")
			}
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("query parameter %q: %s takes %s", k, r.URL.Path, want)})
			return false
		}
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

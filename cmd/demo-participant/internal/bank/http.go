package bank

import (
	"encoding/json"
	"net/http"

	"go.uber.org/zap"
)

// NewHTTPHandler serves the bank's read-only HTTP API:
//
//	GET /accounts  {"alice": {"balance": 90, "held": 10}, ...}
//	GET /applied   {"<txid>": "prepared"|"committed"|"aborted"|"refused", ...}
//	GET /applied?phase=prepared   only the transactions in that phase
//	GET /healthz   200 {"status": "ok", ...} while active, 503 otherwise
//
// JSON objects are written with their keys sorted. active reports whether
// the participant holds its registration and has caught up with its inbox.
func NewHTTPHandler(store *Store, name string, active func() bool, log *zap.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /accounts", func(w http.ResponseWriter, r *http.Request) {
		accounts, err := store.Accounts()
		if err != nil {
			log.Error("GET /accounts", zap.Error(err))
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, accounts)
	})
	mux.HandleFunc("GET /applied", func(w http.ResponseWriter, r *http.Request) {
		var only Phase
		if s := r.URL.Query().Get("phase"); s != "" {
			if err := only.UnmarshalText([]byte(s)); err != nil {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
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
		if !active() {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "standby", "participant": name, "active": false})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "participant": name, "active": true})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

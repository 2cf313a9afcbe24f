// Package coordtest serves, for tests, the part of cmd/coord's HTTP API
// that the demo uses, in front of an in-process coordinator.Client:
//
//	POST /v1/transactions        {"id","branches":[{"participant","payload"}],"timeout"}
//	                             -> 200 {"id","state","reason"} once decided
//	GET  /v1/transactions/{id}   -> 200 {"id","state","reason","branches":[{"participant","acked"}]}
//
// It lets the bank and the transfer tool be tested against a real
// coordinator (and a real etcd) without building cmd/coord.
package coordtest

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/concord-tx/concord/coordinator"
	"github.com/concord-tx/concord/protocol"
)

// Handler returns the HTTP API of c.
func Handler(c *coordinator.Client) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/transactions", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			ID       string `json:"id"`
			Branches []struct {
				Participant string          `json:"participant"`
				Payload     json.RawMessage `json:"payload"`
			} `json:"branches"`
			Timeout string `json:"timeout"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			reply(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		cr := coordinator.Request{ID: req.ID}
		if req.Timeout != "" {
			d, err := time.ParseDuration(req.Timeout)
			if err != nil {
				reply(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
				return
			}
			cr.Timeout = d
		}
		for _, b := range req.Branches {
			cr.Branches = append(cr.Branches, protocol.Branch{Participant: b.Participant, Payload: b.Payload})
		}
		out, err := c.Do(r.Context(), cr)
		switch {
		case errors.Is(err, coordinator.ErrInvalidRequest) || errors.Is(err, coordinator.ErrConflict):
			reply(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		case err != nil:
			reply(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
		default:
			reply(w, http.StatusOK, map[string]string{"id": out.ID, "state": out.State.String(), "reason": out.Reason})
		}
	})
	mux.HandleFunc("GET /v1/transactions/{id}", func(w http.ResponseWriter, r *http.Request) {
		tx, err := c.Get(r.Context(), r.PathValue("id"))
		switch {
		case errors.Is(err, coordinator.ErrNotFound):
			reply(w, http.StatusNotFound, map[string]string{"error": err.Error()})
			return
		case err != nil:
			reply(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
			return
		}
		type branch struct {
			Participant string `json:"participant"`
			Acked       bool   `json:"acked"`
		}
		out := struct {
			ID       string   `json:"id"`
			State    string   `json:"state"`
			Reason   string   `json:"reason,omitempty"`
			Branches []branch `json:"branches"`
		}{ID: tx.ID, State: tx.State.String(), Reason: tx.Reason}
		for _, b := range tx.Branches {
			out.Branches = append(out.Branches, branch{b.Participant, b.Acked})
		}
		reply(w, http.StatusOK, out)
	})
	return mux
}

func reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

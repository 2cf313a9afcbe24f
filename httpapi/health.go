package httpapi

import (
	"context"
	"net/http"
	"time"
)

// healthTimeout bounds the etcd read behind /healthz.
const healthTimeout = 2 * time.Second

// health handles GET /healthz: 200 while etcd answers a linearizable read,
// 503 otherwise.
func (a *api) health(w http.ResponseWriter, r *http.Request) {
	out := Health{Status: "ok"}
	if a.Leader != nil {
		out.Leader = a.Leader()
	}
	if a.Health != nil {
		ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
		defer cancel()
		rev, err := a.Health(ctx)
		if err != nil {
			out.Status, out.Error = "unavailable", "etcd: "+err.Error()
			writeJSON(w, http.StatusServiceUnavailable, out)
			return
		}
		out.Revision = rev
	}
	writeJSON(w, http.StatusOK, out)
}

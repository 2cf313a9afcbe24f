package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/concord-tx/concord/coordinator"
	"github.com/concord-tx/concord/protocol"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// errorOf answers each of the coordinator's errors, wrapped as the
// coordinator wraps them, with its status; the API's own answers pass
// through.
func TestErrorOf(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("coordinator: begin t-1: %w", err) }
	own := &apiError{status: http.StatusTeapot, body: ErrorBody{Error: "mine"}}
	for _, tc := range []struct {
		err    error
		status int
		says   string
		limit  string
	}{
		{fmt.Errorf("%w: branches: expected 1 to 100, got 0", coordinator.ErrInvalidRequest), http.StatusBadRequest, "branches: expected 1 to 100, got 0", ""},
		{wrap(coordinator.ErrNotFound), http.StatusNotFound, "not found", ""},
		{wrap(coordinator.ErrConflict), http.StatusConflict, "", ""},
		{wrap(coordinator.ErrAlreadyCommitted), http.StatusConflict, "", ""},
		{wrap(&coordinator.LimitError{Limit: coordinator.LimitPendingMessages, Participant: "bank-a", Value: 3, Max: 3}), http.StatusTooManyRequests, "participant bank-a has 3 messages pending, at most 3", coordinator.LimitPendingMessages},
		{wrap(fmt.Errorf("%w: %w", coordinator.ErrNoSpace, rpctypes.ErrGRPCNoSpace)), http.StatusInsufficientStorage, "nothing was written. To recover", ""},
		{wrap(rpctypes.ErrGRPCNoSpace), http.StatusInsufficientStorage, "etcdctl alarm disarm", ""},
		{wrap(context.DeadlineExceeded), http.StatusGatewayTimeout, "etcd did not answer in time", ""},
		{wrap(protocol.ErrMalformed), http.StatusInternalServerError, "", ""},
		{wrap(errors.New("connection refused")), http.StatusServiceUnavailable, "connection refused", ""},
		{fmt.Errorf("read: %w", own), http.StatusTeapot, "mine", ""},
	} {
		got := errorOf(tc.err)
		if got.status != tc.status || !strings.Contains(got.body.Error, tc.says) || got.body.Limit != tc.limit {
			t.Errorf("errorOf(%v) = %d %+v, want %d saying %q, limit %q", tc.err, got.status, got.body, tc.status, tc.says, tc.limit)
		}
	}
}

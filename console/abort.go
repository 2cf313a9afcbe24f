package console

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/concord-tx/concord/coordinator"
	"go.uber.org/zap"
)

// abortData is the confirmation page.
type abortData struct {
	Tx        coordinator.Transaction
	Undecided bool
}

func (c *Console) confirmAbort(w http.ResponseWriter, r *http.Request, v visitor) {
	ctx, cancel := c.requestContext(r)
	defer cancel()
	tx, ok := c.getTransaction(ctx, w, v, r.PathValue("id"))
	if !ok {
		return
	}
	c.render(w, http.StatusOK, "abort", v, abortData{Tx: tx, Undecided: !tx.State.Decided()})
}

// abort decides abort for an undecided transaction, logs who asked and
// from where, and shows the transaction.
func (c *Console) abort(w http.ResponseWriter, r *http.Request, v visitor) {
	id := r.PathValue("id")
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	if reason == "" {
		reason = "aborted from the console by " + v.who.Name
	}
	ctx, cancel := c.requestContext(r)
	defer cancel()
	_, err := c.client.Abort(ctx, id, reason)
	switch {
	case errors.Is(err, coordinator.ErrInvalidRequest):
		c.fail(w, http.StatusBadRequest, v, "Not a transaction id", err.Error())
		return
	case errors.Is(err, coordinator.ErrNotFound):
		c.fail(w, http.StatusNotFound, v, "No such transaction", fmt.Sprintf("No transaction %s: nothing was aborted.", id))
		return
	case errors.Is(err, coordinator.ErrAlreadyCommitted):
		c.fail(w, http.StatusConflict, v, "Already committed", fmt.Sprintf("Transaction %s committed before the abort: its outcome cannot change.", id))
		return
	case err != nil:
		c.fail(w, http.StatusServiceUnavailable, v, "Abort not confirmed", fmt.Sprintf("etcd did not confirm the abort of %s (%v); look at the transaction again before retrying.", id, err))
		return
	}
	c.log.Info("aborted from the console", zap.String("txid", id), zap.String("who", v.who.Name), zap.String("from", r.RemoteAddr), zap.String("reason", reason))
	http.Redirect(w, r, "/transactions/"+url.PathEscape(id), http.StatusSeeOther)
}

func urlPathEscape(s string) string { return url.PathEscape(s) }

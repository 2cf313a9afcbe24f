package console

import (
	"net/http"
)

// overviewData is the overview page: the numbers as of now, and the panel
// of replicas and participants.
type overviewData struct {
	Live       Live
	Cluster    Cluster
	StuckAfter string
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request, v visitor) {
	ctx, cancel := c.requestContext(r)
	defer cancel()
	// The first page after a quiet spell starts the watch: wait for its
	// first read of the records, so the numbers are not zeros.
	select {
	case <-c.hub.demand():
	case <-ctx.Done():
	}
	live := c.hub.overview()
	cl := c.cluster.get(ctx, live.Summary)
	c.render(w, http.StatusOK, "overview", v, overviewData{Live: live, Cluster: cl, StuckAfter: formatDuration(c.opts.stuckAfter)})
}

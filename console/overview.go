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
	live := c.hub.overview()
	ctx, cancel := c.requestContext(r)
	defer cancel()
	cl := c.cluster.get(ctx, live.Summary)
	c.render(w, http.StatusOK, "overview", v, overviewData{Live: live, Cluster: cl, StuckAfter: formatDuration(c.opts.stuckAfter)})
}

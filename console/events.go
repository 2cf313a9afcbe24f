package console

import (
	"net/http"
	"time"
)

// pingEvery keeps an idle stream alive through proxies, and is when a
// stream notices that its credential was removed.
const pingEvery = 15 * time.Second

// events streams a page's live updates (server-sent events) from the hub.
// ?view=overview adds the overview's numbers and panel.
func (c *Console) events(w http.ResponseWriter, r *http.Request, v visitor) {
	sub, err := c.hub.subscribe(r.URL.Query().Get("view") == "overview")
	if err != nil {
		http.Error(w, "console is shutting down", http.StatusServiceUnavailable)
		return
	}
	defer c.hub.unsubscribe(sub)
	// Wait for the watch: once the stream opens, the page may rely on
	// being told of every change from then on (console.js re-reads the
	// page then, for what changed while it was loading).
	select {
	case <-sub.ready:
	case <-r.Context().Done():
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	rc := http.NewResponseController(w)
	// A dropped page reconnects after 2s, and reloads what it missed.
	if _, err := w.Write([]byte("retry: 2000\n\n")); err != nil {
		return
	}
	rc.Flush()
	ping := time.NewTicker(pingEvery)
	defer ping.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case b, open := <-sub.ch:
			if !open {
				return // dropped, or the console is closing
			}
			if _, err := w.Write(b); err != nil {
				return
			}
		case <-ping.C:
			if c.opts.auth != nil {
				if _, ok := c.opts.auth.Authenticate(v.sess.token); !ok {
					return
				}
			}
			if _, err := w.Write([]byte(": ping\n\n")); err != nil {
				return
			}
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

package console

import (
	"context"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"sync"

	"github.com/concord-tx/concord/coordinator"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

//go:embed templates static
var files embed.FS

// Console serves the console's pages. Build one with New; Close stops its
// watch and ends the pages' event streams.
type Console struct {
	cli      *clientv3.Client
	client   *coordinator.Client
	opts     options
	log      *zap.Logger
	hub      *hub
	cluster  *clusterView
	sessions *sessions
	pages    map[string]*template.Template
	mux      *http.ServeMux
	origin   *http.CrossOriginProtection
	close    sync.Once
}

// New returns a Console reading etcd through cli (records, participants,
// replicas) and client (one transaction, the transactions in flight,
// abort, and the changes its chart and list follow), neither of which it
// closes. Both must reach the same etcd cluster, under the same prefix.
// Its one watch starts when a page first opens, and stops a minute after
// the last one closed: a console nobody looks at costs etcd nothing.
func New(cli *clientv3.Client, client *coordinator.Client, opts ...Option) (*Console, error) {
	if cli == nil || client == nil {
		return nil, fmt.Errorf("%w: etcd client and coordinator client are required", ErrInvalidConfig)
	}
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	c := &Console{
		cli: cli, client: client, opts: o, log: o.logger, pages: pages,
		sessions: newSessions(o.sessionTTL, o.maxSessions, o.now),
		mux:      http.NewServeMux(),
		origin:   http.NewCrossOriginProtection(),
	}
	c.cluster = newClusterView(cli, o)
	c.routes()
	c.hub = startHub(cli, client, o, c.cluster)
	return c, nil
}

// Close stops the watch and ends every page's event stream (the browsers
// reconnect to another replica or when this one is back). It may be called
// more than once, e.g. from http.Server.RegisterOnShutdown and a defer.
func (c *Console) Close() error {
	c.close.Do(c.hub.close)
	return nil
}

// Mount returns a handler that routes the HTTP API's paths (/v1/...,
// /healthz, /metrics) to api and every other path to the console.
func (c *Console) Mount(api http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/v1/", api)
	mux.Handle("/healthz", api)
	mux.Handle("/metrics", api)
	mux.Handle("/", c)
	return mux
}

// Watches reports how many etcd watches the Console has opened: one each
// time pages opened after a quiet minute, plus one each time etcd ended it
// (compaction, a member left).
func (c *Console) Watches() int64 { return c.hub.watches.Load() }

func (c *Console) routes() {
	static, _ := fs.Sub(files, "static")
	c.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	c.mux.HandleFunc("GET /signin", c.signinForm)
	c.mux.HandleFunc("POST /signin", c.signin)
	c.mux.HandleFunc("POST /signout", c.guard(RoleRead, c.signout))
	c.mux.HandleFunc("GET /{$}", c.guard(RoleRead, c.overview))
	c.mux.HandleFunc("GET /transactions", c.guard(RoleRead, c.list))
	c.mux.HandleFunc("GET /transactions/{id}", c.guard(RoleRead, c.transaction))
	c.mux.HandleFunc("GET /transactions/{id}/abort", c.guard(RoleAdmin, c.confirmAbort))
	c.mux.HandleFunc("POST /transactions/{id}/abort", c.guard(RoleAdmin, c.abort))
	c.mux.HandleFunc("GET /events", c.guard(RoleRead, c.events))
	c.mux.HandleFunc("/", c.guard(RoleRead, c.notFound))
}

// ServeHTTP serves a console page with headers that forbid framing,
// inline script and style, and content sniffing.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	}
	c.mux.ServeHTTP(w, r)
}

// visitor is who makes a request, and their session.
type visitor struct {
	who  Identity
	sess *session
}

// identify returns the request's visitor. On an open console a browser
// without a session gets one, for its CSRF token.
func (c *Console) identify(w http.ResponseWriter, r *http.Request) (visitor, bool) {
	var sess *session
	if ck, err := r.Cookie(sessionCookie); err == nil {
		sess, _ = c.sessions.lookup(ck.Value)
	}
	if c.opts.auth == nil {
		if sess == nil {
			var id string
			id, sess = c.sessions.create("")
			setCookie(w, r, id, c.opts.sessionTTL)
		}
		return visitor{who: openIdentity, sess: sess}, true
	}
	if sess == nil {
		return visitor{}, false
	}
	who, ok := c.opts.auth.Authenticate(sess.token)
	if !ok {
		return visitor{}, false
	}
	return visitor{who: who, sess: sess}, true
}

// guard lets a request through when its visitor holds role; a request
// that changes state must also come from a console page: same origin, and
// the session's CSRF token in its form.
func (c *Console) guard(role Role, h func(http.ResponseWriter, *http.Request, visitor)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, ok := c.identify(w, r)
		if !ok {
			if r.URL.Path == "/events" {
				http.Error(w, "sign in first", http.StatusUnauthorized)
				return
			}
			c.render(w, http.StatusUnauthorized, "signin", visitor{}, signinData{Next: r.URL.RequestURI()})
			return
		}
		if !v.who.Can(role) {
			c.fail(w, http.StatusForbidden, v, "Not allowed", fmt.Sprintf("%s does not hold the %s role, which this needs.", v.who.Name, role))
			return
		}
		if r.Method == http.MethodPost {
			if err := c.origin.Check(r); err != nil {
				c.fail(w, http.StatusForbidden, v, "Refused", "This request did not come from a console page (cross-origin request refused).")
				return
			}
			if !v.sess.checkCSRF(r.PostFormValue("csrf")) {
				c.fail(w, http.StatusForbidden, v, "Refused", "This form has expired or did not come from a console page. Reload the page and try again.")
				return
			}
		}
		h(w, r, v)
	}
}

// requestContext bounds the etcd reads behind one page.
func (c *Console) requestContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), c.opts.requestTimeout)
}

package httpapi

import (
	"context"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"sync/atomic"

	"go.uber.org/zap"
)

// Gate is the middleware chain in front of every handler of coord serve
// that needs a caller: first cross-site requests are refused, then the
// caller is authenticated by its bearer token and its role checked. The
// API's routes sit behind it, and so can any other handler (a console):
// wrap it with Require.
//
// Cross-site rules, for requests other than GET, HEAD and OPTIONS: a
// request whose Sec-Fetch-Site says cross-site or same-site, or whose
// Origin is not the server's own host, gets 403; a body must be
// application/json (415 otherwise), a type no page of another site can
// send without the browser asking the server first (CORS preflight, which
// this server never grants). So a web page open in an operator's browser
// cannot make it begin or abort anything, with or without credentials.
//
// Without credentials every caller is Anonymous with the admin role: the
// service then listens only on loopback (coord serve refuses otherwise).
type Gate struct {
	creds  atomic.Pointer[Credentials]
	log    *zap.Logger
	origin *http.CrossOriginProtection
}

// NewGate returns a gate that lets in the holders of creds (none: everyone,
// as Anonymous admin). log receives every refusal, never a token.
func NewGate(creds *Credentials, log *zap.Logger) *Gate {
	if log == nil {
		log = zap.NewNop()
	}
	g := &Gate{log: log, origin: http.NewCrossOriginProtection()}
	g.SetCredentials(creds)
	return g
}

// SetCredentials replaces the credentials let in, for the requests that
// follow (coord serve: on SIGHUP, to rotate tokens without a restart).
func (g *Gate) SetCredentials(creds *Credentials) {
	if creds == nil {
		creds = &Credentials{}
	}
	g.creds.Store(creds)
}

// Authenticate reports whose token this is and the role it holds, against
// the credentials in use now: for another front end over the same
// credentials (the console) that takes a token once at sign-in and checks
// it again on each request, so that a token removed on SIGHUP stops
// working there too. It compares in constant time, like Require.
func (g *Gate) Authenticate(token string) (name string, role Role, ok bool) {
	return g.creds.Load().lookup(token)
}

// Require wraps next so that it only sees same-site requests of callers
// with at least role; CallerOf(r.Context()) tells next who called.
func (g *Gate) Require(role Role, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if aerr := g.sameSite(r); aerr != nil {
			g.refuse(w, r, "", aerr)
			return
		}
		caller, aerr := g.authenticate(r)
		if aerr != nil {
			g.refuse(w, r, "", aerr)
			return
		}
		if caller.Role < role {
			g.refuse(w, r, caller.Name, &apiError{status: http.StatusForbidden, body: ErrorBody{
				Error: fmt.Sprintf("credential %q has the %v role; %s %s needs %v", caller.Name, caller.Role, r.Method, r.URL.Path, role),
			}})
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, caller)))
	})
}

// sameSite refuses what a browser sends on behalf of another site.
func (g *Gate) sameSite(r *http.Request) *apiError {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return nil
	}
	if err := g.origin.Check(r); err != nil {
		return &apiError{status: http.StatusForbidden, body: ErrorBody{Error: fmt.Sprintf(
			"cross-site request refused (Origin %s, Sec-Fetch-Site %s, this server %s): %s requests are accepted only from the API's own clients, not from web pages of other sites",
			quoteCut(r.Header.Get("Origin")), quoteCut(r.Header.Get("Sec-Fetch-Site")), quoteCut(r.Host), r.Method)}}
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" && r.ContentLength == 0 {
		return nil // no body: nothing to say what it is
	}
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
		return &apiError{status: http.StatusUnsupportedMediaType, body: ErrorBody{Error: fmt.Sprintf(
			"Content-Type %s refused: a %s body must be application/json (curl: -H 'Content-Type: application/json')", quoteCut(ct), r.Method)}}
	}
	return nil
}

// authenticate finds the caller of r by its bearer token.
func (g *Gate) authenticate(r *http.Request) (Caller, *apiError) {
	creds := g.creds.Load()
	if creds.Len() == 0 {
		return Caller{Name: Anonymous, Role: RoleAdmin, Remote: r.RemoteAddr}, nil
	}
	auth := r.Header.Get("Authorization")
	scheme, token, _ := strings.Cut(auth, " ")
	if auth == "" || !strings.EqualFold(scheme, "Bearer") {
		return Caller{}, &apiError{status: http.StatusUnauthorized, body: ErrorBody{
			Error: "no credential: send Authorization: Bearer <token> (coord tx and the demo's transfer tool: --token or $CONCORD_TOKEN)",
		}}
	}
	name, role, ok := creds.lookup(strings.TrimSpace(token))
	if !ok {
		return Caller{}, &apiError{status: http.StatusUnauthorized, body: ErrorBody{Error: "credential not recognised: the bearer token matches none of the server's credentials"}}
	}
	return Caller{Name: name, Role: role, Remote: r.RemoteAddr}, nil
}

// refuse answers aerr and logs who was refused and why, without the
// token.
func (g *Gate) refuse(w http.ResponseWriter, r *http.Request, name string, aerr *apiError) {
	if aerr.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="concord"`)
	}
	g.log.Warn("request refused", zap.Int("status", aerr.status), zap.String("method", r.Method), zap.String("path", cut(r.URL.Path)),
		zap.String("remote", r.RemoteAddr), zap.String("credential", name), zap.String("why", aerr.body.Error))
	fail(w, aerr)
}

package console

import (
	"net/http"
	"strings"
)

// signinData is the sign-in form.
type signinData struct {
	Next  string // where to go once signed in: a path on this server
	Error string
}

func (c *Console) signinForm(w http.ResponseWriter, r *http.Request) {
	if c.opts.auth == nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	c.render(w, http.StatusOK, "signin", visitor{}, signinData{Next: localPath(r.URL.Query().Get("next"))})
}

// signin exchanges a pasted token for a session. The token never goes
// back to the browser, and the answer is the same for every bad token.
func (c *Console) signin(w http.ResponseWriter, r *http.Request) {
	if c.opts.auth == nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	next := localPath(r.PostFormValue("next"))
	if err := c.origin.Check(r); err != nil {
		c.render(w, http.StatusForbidden, "signin", visitor{}, signinData{Next: next, Error: "Refused: this sign-in did not come from the console's own page."})
		return
	}
	token := strings.TrimSpace(r.PostFormValue("token"))
	if _, ok := c.opts.auth.Authenticate(token); !ok || token == "" {
		c.render(w, http.StatusUnauthorized, "signin", visitor{}, signinData{Next: next, Error: "That token is not valid here."})
		return
	}
	if ck, err := r.Cookie(sessionCookie); err == nil {
		c.sessions.end(ck.Value) // a new session id at sign-in, never the old one
	}
	id, _ := c.sessions.create(token)
	setCookie(w, r, id, c.opts.sessionTTL)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (c *Console) signout(w http.ResponseWriter, r *http.Request, _ visitor) {
	if ck, err := r.Cookie(sessionCookie); err == nil {
		c.sessions.end(ck.Value)
	}
	clearCookie(w, r)
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}

// localPath returns p if it is a path on this server, else "/": a sign-in
// must not redirect elsewhere.
func localPath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.ContainsAny(p, "\\\r\n") {
		return "/"
	}
	return p
}

package console

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/concord-tx/concord/protocol"
	"go.uber.org/zap"
)

// pageNames are the templates under templates/, each rendered inside
// layout.html.
var pageNames = []string{"overview", "list", "transaction", "abort", "signin", "error"}

func parsePages() (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"ts":     formatTime,
		"dur":    formatDuration,
		"ago":    func(t time.Time) string { return formatDuration(time.Since(t)) },
		"join":   func(s []string) string { return strings.Join(s, ", ") },
		"states": func() []protocol.State { return protocol.States() },
	}
	pages := make(map[string]*template.Template, len(pageNames))
	for _, name := range pageNames {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(files, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// pageData is what the layout needs, with the page's own data in Body.
type pageData struct {
	Page     string
	Who      Identity
	SignedIn bool
	Open     bool   // no Authenticator: nobody signs in
	CSRF     string // for the page's forms
	Body     any
}

// render writes page with status; the page is built whole before any of
// it is sent, so that a template error is a clean 500.
func (c *Console) render(w http.ResponseWriter, status int, page string, v visitor, body any) {
	d := pageData{Page: page, Who: v.who, SignedIn: v.sess != nil, Open: c.opts.auth == nil, Body: body}
	if v.sess != nil {
		d.CSRF = v.sess.csrf
	}
	var b bytes.Buffer
	if err := c.pages[page].Execute(&b, d); err != nil {
		c.log.Error("console: render", zap.String("page", page), zap.Error(err))
		http.Error(w, "console: could not render the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(b.Bytes())
}

// errorData is the error page's content.
type errorData struct {
	Status  int
	Title   string
	Message string
}

// fail renders the error page.
func (c *Console) fail(w http.ResponseWriter, status int, v visitor, title, message string) {
	c.render(w, status, "error", v, errorData{Status: status, Title: title, Message: message})
}

func (c *Console) notFound(w http.ResponseWriter, r *http.Request, v visitor) {
	c.fail(w, http.StatusNotFound, v, "No such page", "There is no console page at "+r.URL.Path+".")
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05.000Z")
}

// formatDuration rounds d for people: 850ms, 12.3s, 4m10s, 2h5m.
func formatDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Second:
		return d.Round(time.Millisecond / 10).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	case d < time.Hour:
		return d.Round(time.Second).String()
	}
	return d.Round(time.Minute).String()
}

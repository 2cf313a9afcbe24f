package console

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/concord-tx/concord/protocol"
)

// listData is the list page.
type listData struct {
	Filter Filter
	// Form echoes the filter's fields as typed, for the form.
	Form    map[string]string
	Page    ListPage
	Live    bool   // the first page: new transactions appear at the top
	NextURL string // "" on the last page
	Err     string // a filter that could not be read
}

func (c *Console) list(w http.ResponseWriter, r *http.Request, v visitor) {
	q := r.URL.Query()
	d := listData{Form: map[string]string{}}
	for _, k := range []string{"state", "participant", "id", "since", "until"} {
		d.Form[k] = q.Get(k)
	}
	f, err := parseFilter(q.Get)
	if err != nil {
		d.Err = err.Error()
		c.render(w, http.StatusBadRequest, "list", v, d)
		return
	}
	ctx, cancel := c.requestContext(r)
	defer cancel()
	var page ListPage
	if f.State.Valid() && !f.State.Terminal() {
		page, err = listUnfinished(ctx, c.client, f)
	} else {
		page, err = c.newest(ctx, f)
	}
	if err != nil {
		c.fail(w, http.StatusServiceUnavailable, v, "etcd did not answer", err.Error())
		return
	}
	d.Filter, d.Page, d.Live = f, page, f.Before == 0
	if page.Next > 0 {
		d.NextURL = "/transactions?" + f.query(page.Next)
	}
	c.render(w, http.StatusOK, "list", v, d)
}

// parseFilter reads the list's query; errors name the field and what was
// expected.
func parseFilter(get func(string) string) (Filter, error) {
	var f Filter
	var err error
	if s := get("state"); s != "" {
		if f.State, err = protocol.ParseState(s); err != nil {
			return f, fmt.Errorf("state: %w", err)
		}
	}
	if s := get("participant"); s != "" {
		if err := protocol.ValidateName(s); err != nil {
			return f, fmt.Errorf("participant: %w", err)
		}
		f.Participant = s
	}
	if s := get("id"); s != "" {
		if err := protocol.ValidateID(s); err != nil {
			return f, fmt.Errorf("id prefix: %w", err)
		}
		f.IDPrefix = s
	}
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if s := get(t.name); s != "" {
			if *t.dst, err = parseTime(s); err != nil {
				return f, fmt.Errorf("%s: %q: expected a time such as 2026-01-02T15:04 (UTC) or RFC 3339", t.name, s)
			}
		}
	}
	if s := get("before"); s != "" {
		if f.Before, err = strconv.ParseInt(s, 10, 64); err != nil || f.Before <= 0 {
			return f, fmt.Errorf("before: %q: expected a positive revision (from the next-page link)", s)
		}
	}
	return f, nil
}

// parseTime accepts RFC 3339 and the browser's datetime-local form, read
// as UTC.
func parseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("not a time: %q", s)
}

package console_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/concord-tx/concord/console"
	"github.com/concord-tx/concord/coordinator"
	"github.com/concord-tx/concord/internal/testkit/etcdtest"
	"github.com/concord-tx/concord/internal/testkit/poll"
	"github.com/concord-tx/concord/protocol"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// rowIDs returns the transaction ids of the list's rows, top first.
func (b *browser) rowIDs() []string {
	b.t.Helper()
	return eval[[]string](b, `Array.from(document.querySelectorAll("#txs tbody tr")).map(function(r){return r.getAttribute("data-id")})`)
}

// The list page's rows and its link to the next page.
var (
	listRow  = regexp.MustCompile(`<tr data-id="([^"]+)">`)
	listNext = regexp.MustCompile(`<a href="([^"]+)" id="next">`)
)

// parseList returns a list page's ids, top first, and the path of its
// next page ("" on the last).
func parseList(body string) (ids []string, next string) {
	for _, m := range listRow.FindAllStringSubmatch(body, -1) {
		ids = append(ids, m[1])
	}
	if m := listNext.FindStringSubmatch(body); m != nil {
		next = strings.ReplaceAll(m[1], "&amp;", "&")
	}
	return ids, next
}

// listPages follows the list's pages from path, at most 10, and returns
// the ids they show, top first; check, if not nil, sees each page's.
func listPages(t *testing.T, h *browserless, path string, check func(path string, ids []string, more bool)) []string {
	t.Helper()
	var all []string
	for pages := 0; path != ""; pages++ {
		if pages > 10 {
			t.Fatalf("more than 10 pages, at %s", path)
		}
		code, body := h.do("GET", path, nil, nil)
		if code != 200 {
			t.Fatalf("GET %s: %d", path, code)
		}
		ids, next := parseList(body)
		if check != nil {
			check(path, ids, next != "")
		}
		all = append(all, ids...)
		path = next
	}
	return all
}

func TestBrowserListFilters(t *testing.T) {
	b := newBrowser(t)
	f := newFixture(t)
	for _, p := range []string{"bank-a", "bank-b", "bank-c"} {
		f.participant(t, p, yes)
	}
	f.participant(t, "hold", silent)
	ab := f.transfer(t, "bank-a", "bank-b").ID
	ac := f.transfer(t, "bank-a", "bank-c").ID
	undecided := f.begin(t, protocol.Branch{Participant: "hold", Payload: []byte(`{}`)})

	b.open(f.url, "/transactions?participant=bank-c", "#txs")
	if got := b.rowIDs(); !slices.Equal(got, []string{ac}) {
		t.Errorf("participant=bank-c lists %v, want [%s]", got, ac)
	}
	b.open(f.url, "/transactions?state=preparing", "#txs")
	if got := b.rowIDs(); !slices.Equal(got, []string{undecided}) {
		t.Errorf("state=preparing lists %v, want [%s]", got, undecided)
	}
	b.open(f.url, "/transactions?id="+ab[:8], "#txs")
	if got := b.rowIDs(); !slices.Contains(got, ab) || slices.Contains(got, ac) && ac[:8] != ab[:8] {
		t.Errorf("id=%s lists %v, want %s", ab[:8], got, ab)
	}
	b.open(f.url, "/transactions?until="+url.QueryEscape(time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)), "#txs")
	if got := b.rowIDs(); len(got) != 0 {
		t.Errorf("until an hour ago lists %v, want none", got)
	}
	// The form: choose committed, filter; newest first.
	b.open(f.url, "/transactions", "#txs")
	b.do(chromedp.SetValue(chromedp.CSS(`select[name="state"]`), "committed"), chromedp.Click(chromedp.CSS(`form.filters button`)))
	poll.Until(t, 30*time.Second, "the filtered list loads", func() (bool, string) {
		loc := eval[string](b, `document.readyState === "complete" ? location.search : ""`)
		return strings.Contains(loc, "state=committed"), loc
	})
	b.do(chromedp.WaitVisible(chromedp.CSS(`#txs`)))
	if got := b.rowIDs(); !slices.Equal(got, []string{ac, ab}) {
		t.Errorf("state=committed from the form lists %v, want [%s %s] (newest first)", got, ac, ab)
	}
	// Live: a new transfer appears at the top of the first page.
	b.mark()
	fresh := f.transfer(t, "bank-b", "bank-c").ID
	poll.Until(t, 30*time.Second, "the new transfer appears in the list", func() (bool, string) {
		got := b.rowIDs()
		return len(got) > 0 && got[0] == fresh, fmt.Sprint(got)
	})
	if !b.notReloaded() {
		t.Error("the list reloaded to show the transfer; want a live update")
	}
	b.waitText(`#txs tbody tr[data-id="`+fresh+`"] td.state`, "the new row's state", func(s string) bool { return s == "committed" })
}

// TestListPagesOverManyRecords: a page holds 50, newest first; following
// the pages shows every record once, including ids begun in one Txn
// (group commit gives them one revision).
func TestListPagesOverManyRecords(t *testing.T) {
	f := newFixture(t)
	f.participant(t, "hold", silent)
	const n = 130
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			b, err := f.client.Begin(ctx, coordinator.Request{Branches: []protocol.Branch{{Participant: "hold", Payload: []byte(`{}`)}}, Timeout: 5 * time.Minute})
			if err != nil {
				t.Error(err)
			}
			ids[i] = b.ID
		}()
	}
	wg.Wait()
	begun := make(map[string]int64, n)
	for _, id := range ids {
		tx, err := f.client.Get(context.Background(), id)
		if err != nil || tx.BeginRevision == 0 {
			t.Fatalf("get %s: begin revision %d, %v", id, tx.BeginRevision, err)
		}
		begun[id] = tx.BeginRevision
	}
	h := f.http(t)
	want := slices.Clone(ids)
	slices.Sort(want)
	// Every record, or those in a state not terminal (read from the inbox
	// keys, sorted by the console): the same pages.
	for _, first := range []string{"/transactions", "/transactions?state=preparing"} {
		seen := listPages(t, h, first, func(path string, rows []string, more bool) {
			// 50, or a few more: a page ends with the whole of its last revision.
			if len(rows) >= n || more && len(rows) < 50 {
				t.Errorf("GET %s: %d rows of %d, want 50 or a few more (fewer only on the last page)", path, len(rows), n)
			}
		})
		got := slices.Clone(seen)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s: pages show %d ids (%d distinct), want the %d begun", first, len(seen), len(slices.Compact(got)), n)
		}
		// Newest first: begin revisions never rise down the pages.
		for i := 1; i < len(seen); i++ {
			if a, b := begun[seen[i-1]], begun[seen[i]]; b > a {
				t.Errorf("%s: %s (begun at %d) after %s (begun at %d)", first, seen[i], b, seen[i-1], a)
				break
			}
		}
	}
}

// TestListNewestFromWhatTheConsoleSaw: the list's newest pages come from
// the begins the console has seen through the coordinator client's watch,
// read by id, with no sorted read of the records range (etcd reads and
// sorts every record kept for that); records created before the console
// started follow from the sorted read, in order, none twice.
func TestListNewestFromWhatTheConsoleSaw(t *testing.T) {
	f := newFixture(t)
	f.participant(t, "bank-a", yes)
	f.participant(t, "bank-b", yes)
	transfers := func(n int) []string {
		ids := make([]string, n)
		for i := range ids {
			ids[i] = f.transfer(t, "bank-a", "bank-b").ID
		}
		return ids
	}
	// Each returned once the client's watch had delivered its decision, so
	// after its begin: the console below does not see these.
	old := transfers(30)

	sorted := etcdtest.NewHold()
	sorted.Release() // not held: counted
	keys, err := protocol.NewKeys(f.prefix)
	if err != nil {
		t.Fatal(err)
	}
	_, end := keys.Records()
	sorted.Range(end)
	con, err := console.New(etcd.Client(t, sorted.DialOptions()...), f.client, console.WithPrefix(f.prefix), console.WithLogger(f.log))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(con)
	t.Cleanup(func() {
		con.Close()
		srv.Close()
	})
	recent := transfers(60)

	get := func(path string) (ids []string, nextPath string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %v", path, resp.StatusCode, err)
		}
		return parseList(string(body))
	}
	newestFirst := func(ids []string) []string {
		out := slices.Clone(ids)
		slices.Reverse(out)
		return out
	}
	var first []string
	var second string
	poll.Until(t, 10*time.Second, "the first page lists the 50 newest without a sorted read", func() (bool, string) {
		before := sorted.Held()
		first, second = get("/transactions")
		return sorted.Held() == before && slices.Equal(first, newestFirst(recent)[:50]) && second != "",
			fmt.Sprintf("%d sorted reads; rows %v; next %q", sorted.Held()-before, first, second)
	})
	before := sorted.Held()
	rest, more := get(second)
	if want := append(newestFirst(recent)[50:], newestFirst(old)...); !slices.Equal(rest, want) {
		t.Errorf("second page: %v\nwant %v", rest, want)
	}
	if more != "" {
		t.Errorf("a third page after all 90: %s", more)
	}
	if sorted.Held() == before {
		t.Error("the records begun before the console started were listed without the sorted read")
	}
}

// TestListNewestBeyondOneLook: a page looks at about 5,000 of the begins
// the console remembers, and the next pages go on from where it stopped:
// nothing is skipped when a filter found nothing among the first 5,000,
// or when the 5,000th begin shares its revision with the next (begins
// committed together).
func TestListNewestBeyondOneLook(t *testing.T) {
	f := newFixture(t, noReplica())
	keys, err := protocol.NewKeys(f.prefix)
	if err != nil {
		t.Fatal(err)
	}
	// 6,000 records, oldest first, three to a Txn: one revision each three.
	// Record 50 is the only one under the id prefix zzz; records 999 and
	// 1,000 (the 5,001st and 5,000th newest) share a revision, and are the
	// only ones committed.
	const n = 6000
	id := func(i int) string {
		if i == 50 {
			return "zzz-old"
		}
		return fmt.Sprintf("r%04d", i)
	}
	now := time.Now().UTC()
	var puts []clientv3.Op
	for i := range n {
		rec := protocol.Record{ID: id(i), State: protocol.StatePreparing, Participants: []string{"a", "b"}, Created: now, Deadline: now.Add(time.Hour)}
		if i == 999 || i == 1000 {
			rec.State, rec.Decided, rec.Finished = protocol.StateCommitted, now, now
		}
		v, err := protocol.EncodeRecord(rec)
		if err != nil {
			t.Fatal(err)
		}
		if puts = append(puts, clientv3.OpPut(keys.Record(rec.ID), string(v))); len(puts) == 3 {
			if _, err := f.cli.Txn(t.Context()).Then(puts...).Commit(); err != nil {
				t.Fatal(err)
			}
			puts = nil
		}
	}
	h := f.http(t)
	poll.Until(t, 10*time.Second, "the console has seen the newest begin", func() (bool, string) {
		_, body := h.do("GET", "/transactions", nil, nil)
		m := listRow.FindStringSubmatch(body)
		return m != nil && m[1] == id(n-1), fmt.Sprintf("first row %v", m)
	})
	if got := listPages(t, h, "/transactions?id=zzz", nil); !slices.Equal(got, []string{"zzz-old"}) {
		t.Errorf("id prefix zzz: %v, want [zzz-old]", got)
	}
	got := listPages(t, h, "/transactions?state=committed", nil)
	slices.Sort(got)
	if !slices.Equal(got, []string{id(999), id(1000)}) {
		t.Errorf("committed: %v, want %s and %s", got, id(999), id(1000))
	}
}

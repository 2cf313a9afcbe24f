package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/concord-tx/concord/coordinator"
	"github.com/concord-tx/concord/httpapi"
	"github.com/concord-tx/concord/protocol"
	"go.uber.org/zap"
)

// FuzzListQuery sends GET /v1/transactions with any query to the real
// handler over a real coordinator client and etcd (three transactions,
// one aborted): the answer is a page that obeys the query, or a 400 that
// names the parameter — never a 5xx.
func FuzzListQuery(f *testing.F) {
	for _, q := range []string{
		"", "state=preparing", "state=unfinished", "state=ABORTED", "state=done", "limit=1", "limit=0", "limit=1001", "limit=-1", "limit=1e3",
		"after=t1", "after=%ff", "after=t1&after=t2", "limit=2&state=preparing&after=", "stat=preparing", "%zz", "a=b;c=d", "state=%20preparing%0a",
	} {
		f.Add(q)
	}
	cli := etcd.Client(f)
	prefix := fmt.Sprintf("/t%d", prefixes.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, err := coordinator.NewClient(ctx, cli, coordinator.WithPrefix(prefix), coordinator.WithLogger(zap.NewNop()))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { client.Close() })
	for _, id := range []string{"t1", "t2", "t3"} {
		if _, err := client.Begin(ctx, coordinator.Request{ID: id, Timeout: time.Hour, Branches: []protocol.Branch{{Participant: "nobody"}}}); err != nil {
			f.Fatal(err)
		}
	}
	if _, err := client.Abort(ctx, "t2", "fuzz"); err != nil {
		f.Fatal(err)
	}
	h := httpapi.New(httpapi.Config{Client: client, Logger: zap.NewNop(), RequestTimeout: 5 * time.Second})

	f.Fuzz(func(t *testing.T, rawQuery string) {
		r := httptest.NewRequest(http.MethodGet, "/v1/transactions", nil)
		r.URL.RawQuery = rawQuery
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code == http.StatusBadRequest {
			var e httpapi.ErrorBody
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
				t.Fatalf("?%s: 400 not JSON: %q", rawQuery, w.Body)
			}
			for _, field := range []string{"query:", "state:", "limit:", "after:"} {
				if strings.HasPrefix(e.Error, field) {
					return
				}
			}
			t.Fatalf("?%s: 400 %q names no parameter", rawQuery, e.Error)
		}
		if w.Code != http.StatusOK {
			t.Fatalf("?%s: %d %s, want 200 or 400", rawQuery, w.Code, w.Body)
		}
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			t.Fatalf("?%s: 200 for a query that does not parse: %v", rawQuery, err)
		}
		var page httpapi.List
		if err := json.Unmarshal(w.Body.Bytes(), &page); err != nil {
			t.Fatalf("?%s: 200 not a list: %v %s", rawQuery, err, w.Body)
		}
		limit := httpapi.DefaultPageSize
		if s := q.Get("limit"); s != "" {
			if limit, err = strconv.Atoi(s); err != nil || limit < 1 || limit > httpapi.MaxPageSize {
				t.Fatalf("?%s: limit %q accepted", rawQuery, s)
			}
		}
		if len(page.Transactions) > limit {
			t.Fatalf("?%s: %d transactions, more than the limit %d", rawQuery, len(page.Transactions), limit)
		}
		want, _ := protocol.ParseState(q.Get("state"))
		for i, tx := range page.Transactions {
			if tx.ID <= q.Get("after") || (i > 0 && tx.ID <= page.Transactions[i-1].ID) {
				t.Fatalf("?%s: %s out of order or not after %q", rawQuery, tx.ID, q.Get("after"))
			}
			if want.Valid() && tx.State != want {
				t.Fatalf("?%s: %s is %v", rawQuery, tx.ID, tx.State)
			}
		}
	})
}

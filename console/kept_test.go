package console_test

import (
	"fmt"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/concord-tx/concord/console"
	"github.com/concord-tx/concord/internal/testkit/poll"
	"github.com/concord-tx/concord/protocol"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestPagesWithManyKept measures the console's pages with CONCORD_KEPT
// finished transactions kept for the retention window (a record and two
// votes each): how soon the overview counts an undecided transaction,
// and how long the list takes, whole and filtered by an unfinished state,
// and whole on a console started after they were written. Opt-in: writing the records takes a
// while, and the times it prints are this machine's.
func TestPagesWithManyKept(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("CONCORD_KEPT"))
	if n <= 0 {
		t.Skip("opt-in: CONCORD_KEPT=200000 go test ./console -run PagesWithManyKept -v -timeout 15m")
	}
	f := newFixture(t, noReplica())
	keys, err := protocol.NewKeys(f.prefix)
	if err != nil {
		t.Fatal(err)
	}
	f.participant(t, "bank-a", yes)
	finished := time.Now().UTC().Add(-2 * time.Minute)
	var puts []clientv3.Op
	for i := range n {
		id := fmt.Sprintf("done-%07d", i)
		v, err := protocol.EncodeRecord(protocol.Record{ID: id, State: protocol.StateCommitted, Participants: []string{"a", "b"},
			Created: finished, Deadline: finished.Add(time.Minute), Decided: finished, Finished: finished})
		if err != nil {
			t.Fatal(err)
		}
		puts = append(puts, clientv3.OpPut(keys.Record(id), string(v)), clientv3.OpPut(keys.Vote(id, "a"), "yes"), clientv3.OpPut(keys.Vote(id, "b"), "yes"))
		if len(puts) >= 120 || i == n-1 {
			if _, err := f.cli.Txn(t.Context()).Then(puts...).Commit(); err != nil {
				t.Fatal(err)
			}
			puts = nil
		}
	}
	undecided := f.begin(t, protocol.Branch{Participant: "bank-a", Payload: []byte(`{}`)}, protocol.Branch{Participant: "ghost", Payload: []byte(`{}`)})
	start := time.Now()
	counted := openPage(t, f.url+"/events?view=overview", `"undecided":1`)
	defer counted.close()
	poll.Until(t, 5*time.Minute, "the overview counts the undecided transaction", func() (bool, string) { return counted.seen.Load() > 0, "not yet" })
	t.Logf("%d finished transactions kept: the overview counted the undecided one after %v", n, time.Since(start).Round(time.Millisecond))
	b := f.http(t)
	for _, q := range []string{"/transactions", "/transactions?state=preparing"} {
		start = time.Now()
		code, body := b.do("GET", q, nil, nil)
		t.Logf("GET %s: %d in %v", q, code, time.Since(start).Round(time.Millisecond))
		if code != 200 {
			t.Errorf("GET %s: %d", q, code)
		}
		if !strings.Contains(body, undecided) {
			t.Errorf("GET %s does not list %s", q, undecided)
		}
	}
	// A console started after them has seen no begin: its first page is
	// etcd's sorted read.
	con, err := console.New(f.cli, f.client, console.WithPrefix(f.prefix), console.WithLogger(f.log))
	if err != nil {
		t.Fatal(err)
	}
	defer con.Close()
	rec := httptest.NewRecorder()
	start = time.Now()
	con.ServeHTTP(rec, httptest.NewRequest("GET", "/transactions", nil))
	t.Logf("GET /transactions of a console started since: %d in %v", rec.Code, time.Since(start).Round(time.Millisecond))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), undecided) {
		t.Errorf("GET /transactions of a console started since: %d, lists %s: %v", rec.Code, undecided, strings.Contains(rec.Body.String(), undecided))
	}
}

package console_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/concord-tx/concord/console"
	"github.com/concord-tx/concord/coordinator"
	"github.com/concord-tx/concord/internal/testkit/etcdtest"
	"github.com/concord-tx/concord/internal/testkit/poll"
	"github.com/concord-tx/concord/participant"
	"github.com/concord-tx/concord/protocol"
)

func TestBrowserOverviewShowsACommitLive(t *testing.T) {
	b := newBrowser(t)
	screenshots := os.Getenv("CONSOLE_SCREENSHOTS") != ""
	var opts []fixtureOption
	if screenshots {
		opts = append(opts, withConsoleOptions(console.WithStuckAfter(3*time.Second)))
	}
	f := newFixture(t, opts...)
	f.participant(t, "bank-a", yes)
	f.participant(t, "bank-b", yes)
	b.open(f.url, "/", "#tps")
	if got := b.text("#committed"); got != "0" {
		t.Fatalf("committed before any transfer: %q, want 0", got)
	}
	b.mark()
	if out := f.transfer(t, "bank-a", "bank-b"); !out.Committed() {
		t.Fatalf("transfer: %v (%s), want committed", out.State, out.Reason)
	}
	b.waitText("#committed", "the overview counts the commit", func(s string) bool { return s == "1" })
	if !b.notReloaded() {
		t.Error("the overview reloaded to show the commit; want a live update")
	}
	poll.Until(t, 30*time.Second, "the chart draws the commit", func() (bool, string) {
		n := b.count("#chart rect")
		return n > 0, fmt.Sprintf("%d bars", n)
	})
	b.waitText("#participants", "the participants panel lists both banks", func(s string) bool {
		return strings.Contains(s, "bank-a") && strings.Contains(s, "bank-b")
	})
	b.waitText("#replicas", "the replicas panel shows the leader", func(s string) bool { return strings.Contains(s, "leader") })

	if screenshots {
		undecided := load(t, f)
		b.waitText("#undecided", "the undecided transaction is counted", func(s string) bool { return s != "0" })
		b.waitText("#stuck", "the unapplied commit is listed", func(s string) bool { return strings.Contains(s, "jammed") })
		b.screenshot("console-overview.png")
		b.open(f.url, "/transactions/"+undecided, "#branches")
		b.waitText(`#branches tr[data-participant="bank-a"]`, "bank-a's yes vote", func(s string) bool { return strings.Contains(s, "yes") })
		b.screenshot("console-transaction.png")
	}
}

// TestOverviewFlagsWhatIsStuck: a participant named by an undecided
// transaction but not registered stands out, and so does a transaction
// decided but not applied past the threshold, with who it waits for.
func TestOverviewFlagsWhatIsStuck(t *testing.T) {
	f := newFixture(t, noReplica(), withConsoleOptions(console.WithStuckAfter(time.Second)))
	f.participant(t, "bank-a", yes)
	f.participant(t, "jammed", participant.HandlerFuncs{CommitFunc: func(context.Context, participant.Tx) error {
		return errors.New("disk full") // retried, never applied
	}})
	// No replica runs, so nothing aborts a transaction naming ghost.
	undecided := f.begin(t, protocol.Branch{Participant: "bank-a", Payload: []byte(`{}`)}, protocol.Branch{Participant: "ghost", Payload: []byte(`{}`)})
	jammed := f.transfer(t, "bank-a", "jammed")
	if !jammed.Committed() {
		t.Fatalf("transfer to jammed: %v, want committed", jammed.State)
	}
	b := f.http(t)
	var body string
	poll.Until(t, 30*time.Second, "overview flags ghost and the unapplied commit", func() (bool, string) {
		_, body = b.do("GET", "/", nil, nil)
		return strings.Contains(body, `<tr class="alert"><td>ghost</td><td>not registered</td>`) &&
			regexp.MustCompile(`(?s)<tr class="alert"><td><a href="/transactions/[^"]+">[^<]+</a></td><td>committing</td>.*?<td>jammed</td></tr>`).MatchString(body), body
	})
	if !strings.Contains(body, "no replica is running") {
		t.Error("overview without a replica does not say so")
	}
	// The transaction's page tells why jammed has not applied it.
	poll.Until(t, 30*time.Second, "the transaction page shows jammed's failing Commit", func() (bool, string) {
		_, body = b.do("GET", "/transactions/"+jammed.ID, nil, nil)
		return regexp.MustCompile(`(?s)<tr data-participant="jammed">.*?not yet</span>: its commit handler has failed [1-9][0-9]* times since [^,]+, last with <span class="failure">disk full</span>`).MatchString(body), body
	})
	if got := f.state(t, undecided).State; got != protocol.StatePreparing {
		t.Errorf("transaction %s is %v, want preparing", undecided, got)
	}
}

// load runs transfers for a few seconds, some of which a participant
// refuses, leaves one undecided (it returns its id) and one committed that
// a participant cannot apply: what the screenshots show.
func load(t *testing.T, f *fixture) string {
	t.Helper()
	f.participant(t, "jammed", participant.HandlerFuncs{CommitFunc: func(context.Context, participant.Tx) error {
		return errors.New("disk full")
	}})
	f.transfer(t, "bank-a", "jammed")
	f.participant(t, "bank-c", participant.HandlerFuncs{PrepareFunc: func(_ context.Context, tx participant.Tx) error {
		if strings.Contains(string(tx.Payload), `"amount":-7`) {
			return errors.New("insufficient funds: dave has 3, debit of 7")
		}
		return nil
	}})
	f.participant(t, "hold", silent)
	undecided := f.begin(t, protocol.Branch{Participant: "bank-a", Payload: []byte(`{"account":"alice","amount":-5}`)}, protocol.Branch{Participant: "hold", Payload: []byte(`{"account":"erin","amount":5}`)})
	var wg sync.WaitGroup
	deadline := time.Now().Add(8 * time.Second)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				amount := 10
				if (i+w)%5 == 0 {
					amount = 7
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				f.client.Do(ctx, coordinator.Request{Branches: []protocol.Branch{
					{Participant: "bank-c", Payload: []byte(`{"account":"dave","amount":-` + strconv.Itoa(amount) + `}`)},
					{Participant: []string{"bank-a", "bank-b"}[i%2], Payload: []byte(`{"account":"bob","amount":` + strconv.Itoa(amount) + `}`)},
				}, Timeout: 5 * time.Second})
				cancel()
				time.Sleep(time.Duration(20+10*w) * time.Millisecond) // pacing for the chart's shape, not a wait
			}
		}()
	}
	wg.Wait()
	return undecided
}

// TestChartNeedsNoReadOfTheRecords: the chart's numbers follow the
// coordinator client's watch, which runs whether or not a page is open. A
// page opened after a commit counts it at once, though the console's
// reads of the records range (every record kept for the retention window)
// are held throughout: it never makes one. A commit while the page's own
// watch runs is counted once, not by both watches.
func TestChartNeedsNoReadOfTheRecords(t *testing.T) {
	hold := etcdtest.NewHold()
	defer hold.Release()
	cli := etcd.Client(t, hold.DialOptions()...)
	f := newFixture(t, consoleOn(cli))
	keys, err := protocol.NewKeys(f.prefix)
	if err != nil {
		t.Fatal(err)
	}
	_, end := keys.Records()
	hold.Range(end) // the fixture's prefix is known once it exists
	f.participant(t, "bank-a", yes)
	f.participant(t, "bank-b", yes)
	if out := f.transfer(t, "bank-a", "bank-b"); !out.Committed() {
		t.Fatalf("transfer: %v, want committed", out.State)
	}
	b := f.http(t)
	committed := regexp.MustCompile(`id="committed">(\d+)<`)
	count := func() (int, string) {
		_, body := b.do("GET", "/", nil, nil)
		m := committed.FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("the overview shows no committed count: %s", body)
		}
		n, _ := strconv.Atoi(m[1])
		return n, body
	}
	poll.Until(t, 10*time.Second, "the overview counts the commit made before it opened", func() (bool, string) {
		n, _ := count()
		return n == 1, fmt.Sprintf("%d committed", n)
	})
	// The page's watch now runs (idle after a minute): two more commits,
	// each counted once. A count by both watches could come late; by the
	// time the third is counted, one of the second would have.
	for want := 2; want <= 3; want++ {
		if out := f.transfer(t, "bank-a", "bank-b"); !out.Committed() {
			t.Fatalf("transfer: %v, want committed", out.State)
		}
		poll.Until(t, 10*time.Second, fmt.Sprintf("the overview counts commit %d, once", want), func() (bool, string) {
			n, _ := count()
			if n > want {
				t.Fatalf("%d committed after %d commits", n, want)
			}
			return n == want, fmt.Sprintf("%d committed", n)
		})
	}
	if n := hold.Held(); n != 0 {
		t.Errorf("the console read the records range %d times", n)
	}
}

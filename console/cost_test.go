package console_test

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/concord-tx/concord/console"
	"github.com/concord-tx/concord/coordinator"
	"github.com/concord-tx/concord/internal/flowcontrol"
	"github.com/concord-tx/concord/internal/testkit/poll"
	"github.com/concord-tx/concord/participant"
	"github.com/concord-tx/concord/protocol"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

// requests counts the etcd requests of one client: unary calls and
// streams opened (a watch stream per watcher), by method.
type requests struct {
	mu     sync.Mutex
	counts map[string]int
}

func (r *requests) add(method string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.counts[path.Base(method)]++
}

func (r *requests) snapshot() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.counts)
}

// countedClient is an etcd client whose requests are counted.
func countedClient(t *testing.T) (*clientv3.Client, *requests) {
	r := &requests{counts: make(map[string]int)}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   etcd.Endpoints,
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
		DialOptions: append(flowcontrol.DialOptions(),
			grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
				r.add(method)
				return invoker(ctx, method, req, reply, cc, opts...)
			}),
			grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
				r.add(method + " (stream)")
				return streamer(ctx, desc, cc, method, opts...)
			})),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli, r
}

// page is one open console page's event stream, counting the frames that
// name a transaction.
type page struct {
	cancel context.CancelFunc
	done   chan struct{}
	seen   atomic.Int64
}

func openPage(t *testing.T, url, want string) *page {
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %v %v", url, resp, err)
	}
	p := &page{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "data:") && strings.Contains(sc.Text(), want) {
				p.seen.Add(1)
			}
		}
	}()
	return p
}

func (p *page) close() {
	p.cancel()
	<-p.done
}

// TestOneWatchForAnyNumberOfPages: the console's etcd requests do not
// grow with the pages open. It reports what one and twenty pages cost.
func TestOneWatchForAnyNumberOfPages(t *testing.T) {
	cli, counted := countedClient(t)
	f := newFixture(t, consoleOn(cli))
	f.participant(t, "bank-a", yes)
	f.participant(t, "bank-b", yes)
	// Each window is a fixed span of time: what the console costs per
	// second is the measurement.
	const span = 3 * time.Second
	// Nobody looks: no watch, no request.
	f.transfer(t, "bank-a", "bank-b")
	time.Sleep(span) // the window being measured
	if idle := counted.snapshot(); len(idle) != 0 || f.console.Watches() != 0 {
		t.Errorf("console with no page open: etcd requests %v, %d watches; want none", idle, f.console.Watches())
	}
	// The first page starts the watch.
	first := openPage(t, f.url+"/events", `"txs"`)
	poll.Until(t, 10*time.Second, "the console watches", func() (bool, string) {
		n := counted.snapshot()["Watch (stream)"]
		return n == 1, fmt.Sprintf("%d watch streams", n)
	})
	first.close() // the watch runs on for the idle time
	measure := func(pages int) map[string]int {
		t.Helper()
		var open []*page
		for i := range pages {
			view := "/events"
			if i%2 == 0 {
				view = "/events?view=overview"
			}
			open = append(open, openPage(t, f.url+view, `"txs"`))
		}
		before := counted.snapshot()
		start := time.Now()
		f.transfer(t, "bank-a", "bank-b")
		time.Sleep(span - time.Since(start)) // the window being measured
		after := counted.snapshot()
		poll.Until(t, 10*time.Second, "every page is told of the transfer", func() (bool, string) {
			for _, p := range open {
				if p.seen.Load() == 0 {
					return false, "a page has not seen it"
				}
			}
			return true, ""
		})
		for _, p := range open {
			p.close()
		}
		d := make(map[string]int)
		for k, v := range after {
			if v-before[k] != 0 {
				d[k] = v - before[k]
			}
		}
		return d
	}
	one := measure(1)
	twenty := measure(20)
	t.Logf("etcd requests of the console in %v: 1 page %v; 20 pages %v", span, one, twenty)
	if one["Watch (stream)"] != 0 || twenty["Watch (stream)"] != 0 || f.console.Watches() != 1 {
		t.Errorf("watches opened while pages were open: %d with 1 page, %d with 20 (console opened %d in all), want none beyond the one", one["Watch (stream)"], twenty["Watch (stream)"], f.console.Watches())
	}
	total := func(m map[string]int) int {
		n := 0
		for _, v := range m {
			n += v
		}
		return n
	}
	if total(twenty) > total(one)+total(one)/2+4 {
		t.Errorf("20 pages cost %d etcd requests in %v, 1 page %d: the cost grows with the pages", total(twenty), span, total(one))
	}
}

// TestWatchStopsWhenNobodyLooks: a minute (here a second) after the last
// page closed, the console stops its watch and makes no more requests; the
// next page starts it again, and the chart still has the earlier commit
// (counted all along from the coordinator client's watch).
func TestWatchStopsWhenNobodyLooks(t *testing.T) {
	cli, counted := countedClient(t)
	f := newFixture(t, consoleOn(cli), withConsoleOptions(console.WithIdleAfter(time.Second)))
	f.participant(t, "bank-a", yes)
	f.participant(t, "bank-b", yes)
	f.transfer(t, "bank-a", "bank-b")
	p := openPage(t, f.url+"/events?view=overview", `"committed":1`)
	poll.Until(t, 10*time.Second, "the page gets the chart with the earlier commit", func() (bool, string) {
		return p.seen.Load() > 0, "not yet"
	})
	p.close()
	poll.Until(t, 20*time.Second, "the console goes quiet", func() (bool, string) {
		before := counted.snapshot()
		time.Sleep(time.Second) // a window in which no request may come
		after := counted.snapshot()
		return maps.Equal(before, after), fmt.Sprintf("requests %v then %v", before, after)
	})
	p = openPage(t, f.url+"/events?view=overview", `"committed":1`)
	defer p.close()
	poll.Until(t, 10*time.Second, "a new page gets the chart with the earlier commit", func() (bool, string) {
		return p.seen.Load() > 0, "not yet"
	})
	poll.Until(t, 10*time.Second, "a second watch, for the second time pages are open", func() (bool, string) {
		n := f.console.Watches()
		return n == 2, fmt.Sprintf("%d watches", n)
	})
}

// TestCostUnderLoad measures throughput at concurrency 64 with no console,
// a console nobody watches, and a console with 10 pages open (5 overview,
// 5 list), interleaved, and the console's etcd requests in each. Opt-in
// (CONSOLE_COST=transactions per run): it takes minutes, and its clock
// figures mean little on a shared machine.
func TestCostUnderLoad(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("CONSOLE_COST"))
	if n <= 0 {
		t.Skip("opt-in: CONSOLE_COST=5000 go test ./console -run CostUnderLoad -v")
	}
	const concurrency = 64
	run := func(mode string) {
		cli, counted := countedClient(t)
		prefix := fmt.Sprintf("/cost%d", prefixes.Add(1))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		ecli := etcd.Client(t)
		for _, name := range []string{"p1", "p2"} {
			p, err := participant.New(ecli, name, participant.HandlerFuncs{}, participant.WithPrefix(prefix), participant.WithWorkers(concurrency))
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if err := p.WaitActive(ctx); err != nil {
				t.Fatal(err)
			}
		}
		replica, err := coordinator.NewReplica(ecli, coordinator.WithPrefix(prefix))
		if err != nil {
			t.Fatal(err)
		}
		defer replica.Close()
		client, err := coordinator.NewClient(ctx, ecli, coordinator.WithPrefix(prefix))
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		var pages []*page
		if mode != "no console" {
			con, err := console.New(cli, client, console.WithPrefix(prefix), console.WithLeader(replica.IsLeader))
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(con)
			defer srv.Close()
			defer con.Close()
			if mode == "10 pages" {
				for i := range 10 {
					view := "/events"
					if i%2 == 0 {
						view = "/events?view=overview"
					}
					pages = append(pages, openPage(t, srv.URL+view, `"txs"`))
				}
			}
		}
		before := counted.snapshot()
		var next atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for range concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for next.Add(1) <= int64(n) {
					out, err := client.Do(ctx, coordinator.Request{Branches: []protocol.Branch{{Participant: "p1", Payload: []byte("{}")}, {Participant: "p2", Payload: []byte("{}")}}})
					if err != nil || !out.Committed() {
						t.Errorf("transaction: %v %v", out.State, err)
						return
					}
				}
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		after := counted.snapshot()
		frames := int64(0)
		for _, p := range pages {
			frames += p.seen.Load()
			p.close()
		}
		d := make(map[string]int)
		for k, v := range after {
			if v-before[k] != 0 {
				d[k] = v - before[k]
			}
		}
		t.Logf("%-12s %6.0f tx/s (%d in %v); console's etcd requests %v; txs frames delivered to pages %d", mode, float64(n)/elapsed.Seconds(), n, elapsed.Round(time.Millisecond), d, frames)
	}
	for range 2 {
		for _, mode := range []string{"no console", "console", "10 pages"} {
			run(mode)
		}
	}
}

package console_test

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"net/http"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/concord-tx/concord/internal/flowcontrol"
	"github.com/concord-tx/concord/internal/testkit/poll"
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
	poll.Until(t, 10*time.Second, "the console watches", func() (bool, string) {
		n := counted.snapshot()["Watch (stream)"]
		return n == 1, fmt.Sprintf("%d watch streams", n)
	})
	// Each window is a fixed span of time: what the console costs per
	// second is the measurement.
	const span = 3 * time.Second
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

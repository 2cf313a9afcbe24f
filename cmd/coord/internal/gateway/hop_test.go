package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/concord-tx/concord/coordinator"
	"github.com/concord-tx/concord/internal/testkit/etcdtest"
	"github.com/concord-tx/concord/internal/testkit/poll"
	"github.com/concord-tx/concord/participant"
	"github.com/concord-tx/concord/protocol"
)

// TestGatewayHop measures what the gateway's HTTP hop costs: two-branch
// transactions whose second participant runs the Go SDK directly, then
// the same through a gateway in front of an HTTP service doing the same
// (nothing). It is a measurement, not a check: run it with
//
//	CONCORD_GATEWAY_HOP=1 go test -run TestGatewayHop -v ./cmd/coord/internal/gateway
func TestGatewayHop(t *testing.T) {
	if os.Getenv("CONCORD_GATEWAY_HOP") != "1" {
		t.Skip("a measurement: set CONCORD_GATEWAY_HOP=1 to run it")
	}
	etcd := etcdtest.Start(t)
	cli := etcd.Client(t)
	for _, name := range []string{"a", "b"} {
		p, err := participant.New(cli, name, participant.HandlerFuncs{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	g := startGateway(t, cli, "via-gateway", srv.URL)
	poll.Until(t, 10*time.Second, "gateway active", func() (bool, string) { return g.IsActive(), "" })
	c := newClient(t, cli)
	for _, second := range []string{"b", "via-gateway"} {
		for _, workers := range []int{1, 16} {
			n, p50, p99 := run(t, c, second, workers, 5*time.Second)
			t.Logf("a + %-11s %2d at once: %6.0f tx/s, p50 %5.2f ms, p99 %5.2f ms", second, workers, float64(n)/5, ms(p50), ms(p99))
		}
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// run begins and waits for transactions from workers goroutines for d.
func run(t *testing.T, c *coordinator.Client, second string, workers int, d time.Duration) (int, time.Duration, time.Duration) {
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	end := time.Now().Add(d)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(end); i++ {
				start := time.Now()
				out, err := c.Do(context.Background(), coordinator.Request{ID: fmt.Sprintf("%s-%d-%d-%d", second, workers, w, i), Branches: []protocol.Branch{{Participant: "a"}, {Participant: second}}})
				if err != nil || !out.Committed() {
					t.Errorf("%+v %v", out, err)
					return
				}
				mu.Lock()
				lat = append(lat, time.Since(start))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	slices.Sort(lat)
	if len(lat) == 0 {
		return 0, 0, 0
	}
	return len(lat), lat[len(lat)/2], lat[len(lat)*99/100]
}

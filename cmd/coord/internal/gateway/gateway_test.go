package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/concord-tx/concord/cmd/coord/internal/gateway"
	"github.com/concord-tx/concord/coordinator"
	"github.com/concord-tx/concord/internal/testkit/etcdtest"
	"github.com/concord-tx/concord/internal/testkit/leaktest"
	"github.com/concord-tx/concord/internal/testkit/poll"
	"github.com/concord-tx/concord/participant"
	"github.com/concord-tx/concord/protocol"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

var secret = []byte("shared-secret")

// service is an HTTP participant service, as a team would write one: it
// checks the signature and answers each prepare as the test scripted.
type service struct {
	t       *testing.T
	healthy atomic.Bool
	mu      sync.Mutex
	calls   []call                    // every call, in order
	script  map[string][]int          // transaction id → statuses to answer prepare with, in turn
	reasons map[string]string         // transaction id → reason of a refusal
	bodies  map[string]map[string]any // "<id>:<phase>" → last body
}

type call struct {
	phase, key string
	signed     bool
}

func newService(t *testing.T) (*service, *httptest.Server) {
	s := &service{t: t, script: map[string][]int{}, reasons: map[string]string{}, bodies: map[string]map[string]any{}}
	s.healthy.Store(true)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if !s.healthy.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("POST /{phase}", s.handle)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return s, srv
}

func (s *service) handle(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	ts := r.Header.Get(gateway.HeaderTimestamp)
	signed := r.Header.Get(gateway.HeaderSignature) == gateway.Sign(secret, ts, body)
	var req map[string]any
	if err := json.Unmarshal(body, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	id, phase := req["id"].(string), r.PathValue("phase")
	s.mu.Lock()
	s.calls = append(s.calls, call{phase: phase, key: r.Header.Get("Idempotency-Key"), signed: signed})
	s.bodies[id+":"+phase] = req
	status := http.StatusOK
	if phase == "prepare" && len(s.script[id]) > 0 {
		status, s.script[id] = s.script[id][0], s.script[id][1:]
	}
	reason := s.reasons[id]
	s.mu.Unlock()
	if !signed {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	w.WriteHeader(status)
	if status == http.StatusConflict {
		fmt.Fprintf(w, `{"reason": %q}`, reason)
	}
}

func (s *service) body(id, phase string) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bodies[id+":"+phase]
}

func (s *service) callsOf(id string) []call {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []call
	for _, c := range s.calls {
		if strings.HasPrefix(c.key, id+":") {
			out = append(out, c)
		}
	}
	return out
}

// startGateway starts a gateway for participant name in front of the
// service at base, signing with secret, polling health every 50ms, with a
// lease TTL of 2s and the participant options opts; it closes at cleanup.
func startGateway(t *testing.T, cli *clientv3.Client, name, base string, opts ...participant.Option) *gateway.Gateway {
	t.Helper()
	prepare, commit, abort, health := gateway.URLs(base)
	g, err := gateway.New(cli, gateway.Config{
		Name: name, PrepareURL: prepare, CommitURL: commit, AbortURL: abort, HealthURL: health,
		Secret: secret, HealthInterval: 50 * time.Millisecond, HealthFailures: 2,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		Participant: append([]participant.Option{participant.WithLeaseTTL(2 * time.Second)}, opts...),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

func newClient(t *testing.T, cli *clientv3.Client) *coordinator.Client {
	c, err := coordinator.NewClient(context.Background(), cli)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func do(t *testing.T, c *coordinator.Client, id string, payload []byte) coordinator.Outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := c.Do(ctx, coordinator.Request{ID: id, Timeout: 20 * time.Second, Branches: []protocol.Branch{{Participant: "svc", Payload: payload}}})
	if err != nil {
		t.Fatalf("%s: %v", id, err)
	}
	return out
}

// TestAnswersBecomeVotes: 2xx is yes, 409 no with the service's reason,
// and a 503 is asked again rather than voted on; every call is signed and
// carries the idempotency key and the payload as JSON or base64.
func TestAnswersBecomeVotes(t *testing.T) {
	etcd := etcdtest.Start(t)
	cli := etcd.Client(t)
	svc, srv := newService(t)
	g := startGateway(t, cli, "svc", srv.URL)
	poll.Until(t, 10*time.Second, "gateway active", func() (bool, string) { return g.IsActive(), "" })
	c := newClient(t, cli)

	out := do(t, c, "yes", []byte(`{"sku": "a-1", "qty": 2}`))
	if !out.Committed() {
		t.Fatalf("yes: %+v, expected committed", out)
	}
	b := svc.body("yes", "prepare")
	if p, _ := b["payload"].(map[string]any); p["sku"] != "a-1" || b["participant"] != "svc" || b["revision"].(float64) <= 0 {
		t.Fatalf("prepare body %v: expected the JSON payload, the participant and the begin revision", b)
	}
	rev := int64(b["revision"].(float64))
	poll.Until(t, 10*time.Second, "commit call", func() (bool, string) { return svc.body("yes", "commit") != nil, "" })
	calls := svc.callsOf("yes")
	if want := fmt.Sprintf("yes:%d:prepare", rev); calls[0].key != want || !calls[0].signed {
		t.Fatalf("first call %+v, expected key %s and a valid signature", calls[0], want)
	}

	svc.mu.Lock()
	svc.script["no"], svc.reasons["no"] = []int{http.StatusConflict}, "out of stock"
	svc.script["flaky"] = []int{http.StatusServiceUnavailable, http.StatusBadGateway}
	svc.mu.Unlock()
	out = do(t, c, "no", []byte(`{}`))
	if out.Committed() || out.Cause != protocol.CauseVoteNo || out.Reason != "svc: out of stock" {
		t.Fatalf("no: %+v, expected aborted by the vote no with the service's reason", out)
	}
	poll.Until(t, 10*time.Second, "abort call", func() (bool, string) { return svc.body("no", "abort") != nil, "" })

	out = do(t, c, "flaky", []byte(`{}`))
	if !out.Committed() {
		t.Fatalf("flaky: %+v, expected committed after the service recovered", out)
	}
	if n := len(svc.callsOf("flaky")); n < 3 {
		t.Fatalf("flaky: %d calls, expected prepare three times, then commit", n)
	}

	out = do(t, c, "binary", []byte{0xff, 0x00, 0x01})
	if !out.Committed() || svc.body("binary", "prepare")["payload_base64"] != "/wAB" {
		t.Fatalf("binary: %+v, body %v: expected payload_base64 \"/wAB\"", out, svc.body("binary", "prepare"))
	}
}

// TestUnhealthyServiceReleasesTheName: a gateway whose service stops
// answering its health check releases the registration, and a standby
// gateway in front of a healthy instance takes over.
func TestUnhealthyServiceReleasesTheName(t *testing.T) {
	etcd := etcdtest.Start(t)
	cli := etcd.Client(t)
	svc1, srv1 := newService(t)
	svc2, srv2 := newService(t)
	g1 := startGateway(t, cli, "svc", srv1.URL)
	poll.Until(t, 10*time.Second, "first gateway active", func() (bool, string) { return g1.IsActive(), "" })
	g2 := startGateway(t, cli, "svc", srv2.URL)
	c := newClient(t, cli)
	if out := do(t, c, "first", []byte(`{}`)); !out.Committed() || svc1.body("first", "prepare") == nil || svc2.body("first", "prepare") != nil {
		t.Fatalf("first: %+v, expected committed through the first service only", out)
	}
	svc1.healthy.Store(false)
	poll.Until(t, 10*time.Second, "standby gateway active", func() (bool, string) { return g2.IsActive() && !g1.IsActive(), "" })
	if out := do(t, c, "second", []byte(`{}`)); !out.Committed() || svc2.body("second", "prepare") == nil {
		t.Fatalf("second: %+v, expected committed through the second service", out)
	}
}

// TestInvalidParticipantOptionsStop: participant options the SDK refuses
// stop the gateway (rather than retrying them at every health poll), and
// Close says why.
func TestInvalidParticipantOptionsStop(t *testing.T) {
	etcd := etcdtest.Start(t)
	_, srv := newService(t)
	g := startGateway(t, etcd.Client(t), "svc", srv.URL, participant.WithWorkers(0))
	select {
	case <-g.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the gateway still runs with a participant option the SDK refuses")
	}
	if err := g.Close(); !errors.Is(err, participant.ErrInvalidConfig) {
		t.Fatalf("Close: %v, expected participant.ErrInvalidConfig", err)
	}
}

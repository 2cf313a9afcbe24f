package httpapi_test

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/concord-tx/concord/httpapi"
	"github.com/concord-tx/concord/internal/testkit/poll"
	"github.com/concord-tx/concord/participant"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

func TestEtcdDown(t *testing.T) {
	// The coordinator reaches etcd through a proxy that the test cuts.
	proxy := newCutProxy(t, strings.TrimPrefix(etcd.Endpoints[0], "http://"))
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{proxy.addr}, DialTimeout: time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	f := newFixture(t, onEtcd(cli), noReplica(), withConfig(func(c *httpapi.Config) {
		c.RequestTimeout = 500 * time.Millisecond
		c.Leader = func() bool { return true }
	}))
	h, err := f.api.Health(t.Context())
	if err != nil || h.Status != "ok" || !h.Leader || h.Revision == 0 {
		t.Fatalf("healthz: %+v %v, want ok, leader, a revision", h, err)
	}
	proxy.Cut()

	start := time.Now()
	h, err = f.api.Health(t.Context())
	var apiErr *httpapi.Error
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusServiceUnavailable || h.Status != "unavailable" || !strings.HasPrefix(h.Error, "etcd: ") {
		t.Fatalf("healthz with etcd down: %+v %v, want 503 unavailable", h, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("healthz took %v with etcd down", d)
	}

	// Other requests give up after the request timeout.
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/v1/transactions/x", ""},
		{"GET", "/v1/transactions", ""},
		{"POST", "/v1/transactions/x/abort", ""},
		{"POST", "/v1/transactions?wait=false", `{"branches": [{"participant": "a"}]}`},
	} {
		start := time.Now()
		status, body := f.do(t, c.method, c.path, c.body)
		if status != http.StatusGatewayTimeout || !strings.Contains(body, "etcd did not answer in time") {
			t.Errorf("%s %s with etcd down: %d %s, want 504", c.method, c.path, status, body)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("%s %s took %v with etcd down", c.method, c.path, d)
		}
	}
}

func TestMetrics(t *testing.T) {
	f := newFixture(t)
	f.participant(t, "bank-a", participant.HandlerFuncs{})
	f.participant(t, "bank-b", participant.HandlerFuncs{PrepareFunc: func(context.Context, participant.Tx) error { return errors.New("no") }})
	ctx := context.Background()
	for range 3 {
		if _, err := f.api.Begin(ctx, httpapi.BeginRequest{Branches: []httpapi.BranchRequest{{Participant: "bank-a"}}}, true); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.api.Begin(ctx, httpapi.BeginRequest{Branches: []httpapi.BranchRequest{{Participant: "bank-b"}}}, true); err != nil {
		t.Fatal(err)
	}
	f.do(t, "GET", "/v1/transactions/unknown", "")

	want := map[string]float64{
		`concord_transactions_begun_total`:                                          4,
		`concord_transactions_committed_total`:                                      3,
		`concord_transactions_aborted_total{cause="vote_no"}`:                       1,
		`concord_transactions_aborted_total{cause="deadline"}`:                      0,
		`concord_decision_latency_seconds_count{outcome="committed"}`:               3,
		`concord_decision_latency_seconds_count{outcome="aborted"}`:                 1,
		`concord_transactions_in_flight`:                                            0,
		`concord_replica_leader`:                                                    1,
		`concord_recovery_actions_total{action="abort_deadline"}`:                   0,
		`concord_http_requests_total{code="200",route="POST /v1/transactions"}`:     4,
		`concord_http_requests_total{code="404",route="GET /v1/transactions/{id}"}`: 1,
		`concord_recovery_actions_total{action="abort_participant_lost"}`:           0,
		`concord_transactions_aborted_total{cause="participant_lost"}`:              0,
		`concord_decision_latency_seconds_bucket{outcome="committed",le="+Inf"}`:    3,
		`concord_transactions_aborted_total{cause="operator"}`:                      0,
		`concord_recovery_actions_total{action="gc"}`:                               0,
		`concord_decision_latency_seconds_bucket{outcome="aborted",le="+Inf"}`:      1,
	}
	// Decisions are seen by the leader's watch, a moment after the answer.
	poll.Until(t, 10*time.Second, "metrics", func() (bool, string) {
		status, body := f.do(t, "GET", "/metrics", "")
		if status != 200 {
			return false, body
		}
		for name, v := range want {
			got, ok := sample(body, name)
			if !ok || got != v {
				return false, name + " = " + strconv.FormatFloat(got, 'g', -1, 64) + ", want " + strconv.FormatFloat(v, 'g', -1, 64)
			}
		}
		return true, ""
	})
}

// sample finds one sample of the text exposition format.
func sample(body, name string) (float64, bool) {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(m[1], 64)
	return v, err == nil
}

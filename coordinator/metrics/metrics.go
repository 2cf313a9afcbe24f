package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/concord-tx/concord/coordinator"
	"github.com/concord-tx/concord/protocol"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds every collector of one coordinator process. It implements
// coordinator.Observer. Decisions, the in-flight count and recovery actions
// are reported by the leading replica only (see coordinator.Observer), so
// a deployment sums them over its replicas.
type Metrics struct {
	registry  *prometheus.Registry
	begun     prometheus.Counter
	committed prometheus.Counter
	aborted   *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	inFlight  prometheus.Gauge
	recovery  *prometheus.CounterVec
	etcdErrs  *prometheus.CounterVec
	requests  *prometheus.CounterVec
}

var _ coordinator.Observer = (*Metrics)(nil)

// etcdOps are the operations the coordinator names in EtcdError today;
// others get a series when they first fail.
func etcdOps() []string { return []string{"begin", "get", "txn"} }

// New returns the collectors registered in a new registry, with the Go
// runtime and process collectors. leader reports whether this replica leads
// now (nil: not exported).
func New(leader func() bool) *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		begun: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "concord_transactions_begun_total",
			Help: "Transactions created by this process's client (repeated begins of one id are not counted).",
		}),
		committed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "concord_transactions_committed_total",
			Help: "Transactions decided commit, as seen by the leading replica.",
		}),
		aborted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "concord_transactions_aborted_total",
			Help: "Transactions decided abort, by cause (vote_no, deadline, participant_lost, operator), as seen by the leading replica.",
		}, []string{"cause"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "concord_decision_latency_seconds",
			Help:    "Time from a transaction's creation to its decision, by outcome.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16), // 1ms to ~33s
		}, []string{"outcome"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "concord_transactions_in_flight",
			Help: "Transactions not yet terminal, as last counted by this replica while it led.",
		}),
		recovery: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "concord_recovery_actions_total",
			Help: "Actions of the leading replica: abort_deadline, abort_participant_lost, finish_abandoned, gc (records deleted).",
		}, []string{"action"}),
		etcdErrs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "concord_etcd_request_errors_total",
			Help: "Failed etcd requests, by operation (each failed attempt of a retried request counts).",
		}, []string{"op"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "concord_http_requests_total",
			Help: "HTTP API requests, by route and status code.",
		}, []string{"route", "code"}),
	}
	m.registry.MustRegister(m.begun, m.committed, m.aborted, m.latency, m.inFlight, m.recovery, m.etcdErrs, m.requests,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if leader != nil {
		m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "concord_replica_leader",
			Help: "1 while this replica leads the coordinator replicas, else 0.",
		}, func() float64 {
			if leader() {
				return 1
			}
			return 0
		}))
	}
	for _, c := range protocol.Causes() {
		m.aborted.WithLabelValues(string(c))
	}
	for _, o := range []protocol.State{protocol.StateCommitted, protocol.StateAborted} {
		m.latency.WithLabelValues(o.String())
	}
	// Every recovery action's series exists from the start, so that
	// rate() works before the first one.
	for _, a := range coordinator.Actions() {
		m.recovery.WithLabelValues(a.String())
	}
	for _, op := range etcdOps() {
		m.etcdErrs.WithLabelValues(op)
	}
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

// Registry returns the registry, for tests and for adding collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

// Request counts one HTTP API request. route is the matched pattern
// ("unmatched" for none), so the label set stays bounded.
func (m *Metrics) Request(route string, code int) {
	m.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
}

// Begun implements coordinator.Observer.
func (m *Metrics) Begun(string) { m.begun.Inc() }

// Decided implements coordinator.Observer.
func (m *Metrics) Decided(_ string, state protocol.State, cause protocol.Cause, latency time.Duration) {
	outcome := state.Outcome()
	if outcome == protocol.StateCommitted {
		m.committed.Inc()
	} else {
		if cause == protocol.CauseNone {
			cause = "unknown"
		}
		m.aborted.WithLabelValues(string(cause)).Inc()
	}
	m.latency.WithLabelValues(outcome.String()).Observe(max(latency, 0).Seconds())
}

// Active implements coordinator.Observer.
func (m *Metrics) Active(n int) { m.inFlight.Set(float64(n)) }

// Recovery implements coordinator.Observer.
func (m *Metrics) Recovery(action coordinator.Action, n int) {
	m.recovery.WithLabelValues(action.String()).Add(float64(n))
}

// EtcdError implements coordinator.Observer.
func (m *Metrics) EtcdError(op string, _ error) { m.etcdErrs.WithLabelValues(op).Inc() }

package metrics_test

import (
	"testing"

	"github.com/concord-tx/concord/coordinator"
	"github.com/concord-tx/concord/coordinator/metrics"
	"github.com/concord-tx/concord/internal/testkit/leaktest"
	"github.com/concord-tx/concord/protocol"
	dto "github.com/prometheus/client_model/go"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

// series returns the value of every series of family name, by its label.
func series(t *testing.T, m *metrics.Metrics, name, label string) map[string]float64 {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, s := range mf.GetMetric() {
			out[labelValue(s, label)] = value(s)
		}
	}
	return out
}

func labelValue(s *dto.Metric, label string) string {
	for _, l := range s.GetLabel() {
		if l.GetName() == label {
			return l.GetValue()
		}
	}
	return ""
}

func value(s *dto.Metric) float64 {
	switch {
	case s.Counter != nil:
		return s.Counter.GetValue()
	case s.Gauge != nil:
		return s.Gauge.GetValue()
	}
	return -1
}

// TestEveryActionHasASeriesFromTheStart: each of coordinator.Actions()
// (the set the replica emits from, see coordinator's
// TestEveryEmittedActionIsListed) has its series at 0 before anything
// happened, and no other series exists; each counts what it is given.
func TestEveryActionHasASeriesFromTheStart(t *testing.T) {
	m := metrics.New(nil)
	got := series(t, m, "concord_recovery_actions_total", "action")
	if len(got) != len(coordinator.Actions()) {
		t.Errorf("series at start %v, expected one per action %v", got, coordinator.Actions())
	}
	for _, a := range coordinator.Actions() {
		if v, ok := got[a.String()]; !ok || v != 0 {
			t.Errorf("action %s: series %v (present %v) at start, expected 0", a, v, ok)
		}
		m.Recovery(a, 2)
	}
	for a, v := range series(t, m, "concord_recovery_actions_total", "action") {
		if v != 2 {
			t.Errorf("action %s counted %v, expected 2", a, v)
		}
	}
	causes := series(t, m, "concord_transactions_aborted_total", "cause")
	for _, c := range protocol.Causes() {
		if _, ok := causes[string(c)]; !ok {
			t.Errorf("abort cause %s has no series at start (%v)", c, causes)
		}
	}
}

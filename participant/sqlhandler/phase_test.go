package sqlhandler_test

import (
	"testing"

	"github.com/concord-tx/concord/participant/sqlhandler"
)

// A phase is stored and shown by name: the four valid ones round-trip,
// the invalid one and unknown names are errors.
func TestPhaseText(t *testing.T) {
	for _, p := range []sqlhandler.Phase{sqlhandler.PhasePrepared, sqlhandler.PhaseCommitted, sqlhandler.PhaseAborted, sqlhandler.PhaseRefused} {
		b, err := p.MarshalText()
		if err != nil || string(b) != p.String() {
			t.Fatalf("%v marshals to %q, %v", p, b, err)
		}
		var q sqlhandler.Phase
		if err := q.UnmarshalText(b); err != nil || q != p {
			t.Errorf("%v round-trips to %v, %v", p, q, err)
		}
	}
	if _, err := sqlhandler.PhaseInvalid.MarshalText(); err == nil {
		t.Error("the invalid phase marshals")
	}
	var q sqlhandler.Phase
	if err := q.UnmarshalText([]byte("done")); err == nil || q != sqlhandler.PhaseInvalid {
		t.Errorf("an unknown phase name parses to %v, %v", q, err)
	}
}

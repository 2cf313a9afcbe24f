package chaos

import (
	"testing"

	"github.com/concord-tx/concord/protocol"
)

// TestReachable: a re-list may skip states, but only along the state
// machine.
func TestReachable(t *testing.T) {
	for _, c := range []struct {
		from, to protocol.State
		want     bool
	}{
		{protocol.StatePreparing, protocol.StateCommitted, true},
		{protocol.StatePreparing, protocol.StateAborted, true},
		{protocol.StateCommitting, protocol.StateCommitted, true},
		{protocol.StateCommitting, protocol.StateAborted, false},
		{protocol.StateAborting, protocol.StateCommitted, false},
		{protocol.StateCommitted, protocol.StatePreparing, false},
	} {
		if got := reachable(c.from, c.to); got != c.want {
			t.Errorf("reachable(%v, %v) = %v, want %v", c.from, c.to, got, c.want)
		}
	}
}

package coordinator

import (
	"slices"
	"testing"

	"github.com/concord-tx/concord/protocol"
)

// Collection deletes inbox keys only where a terminal record can have left
// some: an abort a replica finished for participants that went away. A
// commit's last acknowledgement required them all gone.
func TestInboxesLeft(t *testing.T) {
	names := []string{"a", "b", "c"}
	for _, tc := range []struct {
		state protocol.State
		want  []string
	}{
		{protocol.StateCommitted, nil},
		{protocol.StateAborted, names},
	} {
		rec := protocol.Record{ID: "t1", State: tc.state, Participants: names}
		if got := inboxesLeft(rec); !slices.Equal(got, tc.want) {
			t.Errorf("%s: inbox keys to delete %v, want %v", tc.state, got, tc.want)
		}
		if got, want := gcOps(gcEntry{inboxesLeft: inboxesLeft(rec)}), 2+len(tc.want); got != want {
			t.Errorf("%s: %d operations counted, want %d", tc.state, got, want)
		}
	}
}

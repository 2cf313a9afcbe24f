package poll

import (
	"testing"
	"time"
)

// Until calls cond until it reports true, backing off from 5ms to 100ms
// between calls, and fails the test if within passes first; the failure
// names what was awaited and the last state cond described.
func Until(t testing.TB, within time.Duration, what string, cond func() (ok bool, state string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	backoff := 5 * time.Millisecond
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; last: %s", what, within, state)
		}
		time.Sleep(backoff)
		backoff = min(2*backoff, 100*time.Millisecond)
	}
}

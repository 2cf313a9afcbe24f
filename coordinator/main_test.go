package coordinator

import (
	"testing"

	"github.com/concord-tx/concord/internal/testkit/leaktest"
)

// TestMain fails the package's tests if any goroutine they started is
// still running at the end.
func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

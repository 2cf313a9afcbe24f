package embedded

import (
	"testing"

	"github.com/concord-tx/concord/internal/testkit/leaktest"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

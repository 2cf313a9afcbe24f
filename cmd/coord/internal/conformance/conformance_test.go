package conformance_test

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/concord-tx/concord/cmd/coord/internal/conformance"
	"github.com/concord-tx/concord/internal/testkit/leaktest"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

// TestGoSDKConforms runs the whole suite against the Go SDK's conformance
// participant: the SDK must pass every case.
func TestGoSDKConforms(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "goparticipant")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/concord-tx/concord/cmd/coord/internal/conformance/goparticipant").CombinedOutput(); err != nil {
		t.Fatalf("go build goparticipant: %v\n%s", err, out)
	}
	var progress bytes.Buffer
	results, err := conformance.Run(context.Background(), conformance.Config{Command: bin, Dir: t.TempDir(), Progress: &progress})
	var table bytes.Buffer
	conformance.PrintTable(&table, results)
	t.Logf("\n%s", table.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(results) < 13 {
		t.Fatalf("%d cases ran, expected every case (13 or more)", len(results))
	}
}

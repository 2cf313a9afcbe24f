package conformance_test

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/concord-tx/concord/cmd/coord/internal/conformance"
	"github.com/concord-tx/concord/internal/testkit/leaktest"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

// TestGoSDKConforms runs the whole suite against the Go SDK's conformance
// participant: the SDK must pass every case.
func TestGoSDKConforms(t *testing.T) {
	bin := buildParticipant(t)
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

func buildParticipant(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "goparticipant")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/concord-tx/concord/cmd/coord/internal/conformance/goparticipant").CombinedOutput(); err != nil {
		t.Fatalf("go build goparticipant: %v\n%s", err, out)
	}
	return bin
}

// TestCatchesALeaseLeftToExpire: a participant that exits on SIGTERM
// without revoking its lease fails the shutdown case, and only it.
func TestCatchesALeaseLeftToExpire(t *testing.T) {
	bin := buildParticipant(t)
	results, err := conformance.Run(context.Background(), conformance.Config{
		Command: "GOPARTICIPANT_EXIT_WITHOUT_REVOKE=1 " + bin, Dir: t.TempDir(),
		Run: regexp.MustCompile("^(commit alone|shutdown revokes the lease)$"),
	})
	if !errors.Is(err, conformance.ErrFailed) || len(results) != 2 || !results[0].Passed || results[1].Passed ||
		!strings.Contains(results[1].Detail, "not revoked") {
		t.Fatalf("results %+v, error %v: expected the commit to pass and the shutdown case to fail for a lease not revoked", results, err)
	}
}

// TestFailsAParticipantThatDoesNothing: a participant that registers and
// never votes or acknowledges fails every case it is run through; the
// cases judge by etcd's keys, not by the process staying up.
func TestFailsAParticipantThatDoesNothing(t *testing.T) {
	bin := buildParticipant(t)
	results, err := conformance.Run(context.Background(), conformance.Config{
		Command: "GOPARTICIPANT_DO_NOTHING=1 " + bin, Dir: t.TempDir(),
		LeaseTTL: 2 * time.Second, CaseTimeout: time.Second,
		Run: regexp.MustCompile("^(commit alone|abort without prepare)$"),
	})
	if !errors.Is(err, conformance.ErrFailed) || len(results) != 2 {
		t.Fatalf("results %+v, error %v: expected both cases to run and fail", results, err)
	}
	for _, r := range results {
		if r.Passed || !strings.Contains(r.Detail, "expected") {
			t.Errorf("%s: %+v, expected a failure saying what etcd should have held", r.Case, r)
		}
	}
}

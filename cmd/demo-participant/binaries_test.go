package main

import (
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// binaries are the demo-participant and coord executables, built once per
// test run into a temporary directory.
var binaries struct {
	dir string // set by TestMain

	demoOnce sync.Once
	demo     string
	demoErr  error

	coordOnce sync.Once
	coord     string
	coordErr  error
}

func build(pkg, name string, race bool) (string, error) {
	out := filepath.Join(binaries.dir, name)
	args := []string{"build", "-o", out}
	if race {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, pkg)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", &buildError{pkg: pkg, out: string(b), err: err}
	}
	return out, nil
}

type buildError struct {
	pkg, out string
	err      error
}

func (e *buildError) Error() string { return "go build " + e.pkg + ": " + e.err.Error() + "\n" + e.out }

// demoBinary returns the path of the demo-participant executable, built
// with -race when the tests are.
func demoBinary(t *testing.T) string {
	t.Helper()
	binaries.demoOnce.Do(func() {
		binaries.demo, binaries.demoErr = build("github.com/concord-tx/concord/cmd/demo-participant", "demo-participant", raceEnabled)
	})
	if binaries.demoErr != nil {
		t.Fatal(binaries.demoErr)
	}
	return binaries.demo
}

// coordBinary returns the path of the coord executable, or why it could
// not be built.
func coordBinary() (string, error) {
	binaries.coordOnce.Do(func() {
		binaries.coord, binaries.coordErr = build("github.com/concord-tx/concord/cmd/coord", "coord", false)
	})
	return binaries.coord, binaries.coordErr
}

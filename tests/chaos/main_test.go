package chaos

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// bins is built once per test binary, lazily: a test that needs only etcd
// does not wait for the other builds.
var bins *Binaries

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "concord-chaos-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	bins = &Binaries{Dir: dir, Race: raceForChildren()}
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goroutines left behind: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// raceForChildren says whether the commands under test are built with the
// race detector: CHAOS_RACE=1 or 0, else as the suite itself was built.
func raceForChildren() bool {
	switch os.Getenv("CHAOS_RACE") {
	case "1", "true":
		return true
	case "0", "false":
		return false
	}
	return raceEnabled
}

// binary returns the path of a built binary, failing the test if it does
// not build.
func binary(t testing.TB, name string) string {
	t.Helper()
	p, err := bins.Path(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

package etcdtest

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/concord-tx/concord/internal/testkit/leaktest"
)

// Main is a TestMain for a package whose tests share one etcd (each under
// a key prefix of its own): it starts the etcd, stores it in *shared, runs
// the tests, stops the etcd, checks that no goroutine is left (allowing
// leaktest.Ignored) and exits with the result.
//
//	var etcd *etcdtest.Server
//
//	func TestMain(m *testing.M) { etcdtest.Main(m, &etcd) }
func Main(m *testing.M, shared **Server) {
	os.Exit(runShared(m, shared))
}

func runShared(m *testing.M, shared **Server) int {
	dir, err := os.MkdirTemp("", "etcdtest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "etcdtest:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	s, err := StartDir(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "etcdtest:", err)
		return 1
	}
	*shared = s
	code := m.Run()
	s.Close()
	if code == 0 {
		if err := goleak.Find(leaktest.Ignored...); err != nil {
			fmt.Fprintln(os.Stderr, "goroutine leak:", err)
			return 1
		}
	}
	return code
}

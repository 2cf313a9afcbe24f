package leaktest

import (
	"testing"

	"go.uber.org/goleak"
)

// Ignored are the process-wide goroutines of etcd's embedded server and
// gRPC, which are not ours to stop.
var Ignored = []goleak.Option{
	goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
	goleak.IgnoreAnyFunction("google.golang.org/grpc/internal/grpcsync.(*CallbackSerializer).run"),
	goleak.IgnoreTopFunction("gopkg.in/natefinch/lumberjack%2ev2.(*Logger).millRun"),
}

// VerifyTestMain runs the package's tests and fails if goroutines remain.
func VerifyTestMain(m *testing.M, extra ...goleak.Option) {
	goleak.VerifyTestMain(m, append(append([]goleak.Option(nil), Ignored...), extra...)...)
}

package bench

import (
	"runtime/metrics"
	"time"
)

// usage is what this process has used of the machine so far: CPU time
// (user and system), system calls (reads and writes: sockets, pipes and
// files, etcd's WAL included when etcd runs here) and goroutines started
// (each one a start and a stack that grows again). Unlike latency, the
// counts hardly change with a noisy machine's speed.
type usage struct {
	cpu        time.Duration
	syscalls   int64 // -1 if the system will not say
	goroutines uint64
}

func processUsage() usage {
	return usage{cpu: processCPU(), syscalls: processSyscalls(), goroutines: goroutinesStarted()}
}

// goroutinesStarted is how many goroutines this process has started so
// far.
func goroutinesStarted() uint64 {
	s := []metrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// add adds what was used since start to u.
func (u *usage) add(start usage) {
	now := processUsage()
	u.cpu += now.cpu - start.cpu
	u.goroutines += now.goroutines - start.goroutines
	if start.syscalls < 0 || now.syscalls < 0 || u.syscalls < 0 {
		u.syscalls = -1
		return
	}
	u.syscalls += now.syscalls - start.syscalls
}

// per returns CPU milliseconds, system calls and goroutines started per
// transaction, for n transactions; system calls are -1 if unknown (or n is
// 0).
func (u usage) per(n int) (cpuMs, syscalls, goroutines float64) {
	if n == 0 {
		return 0, -1, 0
	}
	cpuMs = float64(u.cpu.Microseconds()) / 1000 / float64(n)
	goroutines = float64(u.goroutines) / float64(n)
	if u.syscalls < 0 {
		return cpuMs, -1, goroutines
	}
	return cpuMs, float64(u.syscalls) / float64(n), goroutines
}

package bench

import "time"

// usage is what this process has used of the machine so far: CPU time
// (user and system) and system calls (reads and writes: sockets, pipes and
// files, etcd's WAL included when etcd runs here). Unlike latency, both
// change little with a noisy machine's speed.
type usage struct {
	cpu      time.Duration
	syscalls int64 // -1 if the system will not say
}

func processUsage() usage {
	return usage{cpu: processCPU(), syscalls: processSyscalls()}
}

// add adds what was used since start to u.
func (u *usage) add(start usage) {
	now := processUsage()
	u.cpu += now.cpu - start.cpu
	if start.syscalls < 0 || now.syscalls < 0 || u.syscalls < 0 {
		u.syscalls = -1
		return
	}
	u.syscalls += now.syscalls - start.syscalls
}

// per returns CPU milliseconds and system calls per transaction, for n
// transactions; system calls are -1 if unknown (or n is 0).
func (u usage) per(n int) (cpuMs, syscalls float64) {
	if n == 0 {
		return 0, -1
	}
	cpuMs = float64(u.cpu.Microseconds()) / 1000 / float64(n)
	if u.syscalls < 0 {
		return cpuMs, -1
	}
	return cpuMs, float64(u.syscalls) / float64(n)
}

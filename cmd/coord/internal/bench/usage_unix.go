//go:build unix

package bench

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// processCPU is the CPU time this process has used so far, user and system;
// 0 if the system will not say.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(syscall.TimevalToNsec(ru.Utime) + syscall.TimevalToNsec(ru.Stime))
}

// processSyscalls is how many read and write system calls this process has
// made so far, from Linux's /proc/self/io; -1 where there is none.
func processSyscalls() int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return -1
	}
	var n int64
	found := 0
	for line := range strings.Lines(string(b)) {
		name, value, ok := strings.Cut(strings.TrimSpace(line), ": ")
		if !ok || name != "syscr" && name != "syscw" {
			continue
		}
		v, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return -1
		}
		n += v
		found++
	}
	if found != 2 {
		return -1
	}
	return n
}

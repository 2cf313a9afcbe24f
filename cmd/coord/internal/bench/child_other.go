//go:build !linux

package bench

import (
	"errors"
	"syscall"
	"time"
)

func sysProcAttr() *syscall.SysProcAttr { return nil }

func processCPUOf(pid int) (time.Duration, error) {
	return 0, errors.New("read from /proc/<pid>/stat, which only Linux has")
}

//go:build !linux

package bench

import (
	"errors"
	"os"
	"syscall"
	"time"
)

func sysProcAttr() *syscall.SysProcAttr { return nil }

// signal sends sig to the child; a child already gone is not an error.
func (c *child) signal(sig syscall.Signal) error {
	if err := c.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	return nil
}

func processCPUOf(pid int) (time.Duration, error) {
	return 0, errors.New("read from /proc/<pid>/stat, which only Linux has")
}

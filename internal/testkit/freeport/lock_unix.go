//go:build unix

package freeport

import (
	"os"
	"path/filepath"
	"syscall"
)

// openLocks opens the file whose bytes stand for ports. The descriptor is
// never closed: closing any descriptor of the file would drop all of this
// process's locks on it.
func openLocks() *os.File {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "concord-freeport.lock"), os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return nil
	}
	return f
}

// reserve takes port's byte lock, which no other process holds once it
// succeeds. Locks are per process, so taking one this process holds
// succeeds too; given covers that case.
func reserve(port int) bool {
	if locks == nil {
		return true
	}
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: 0, Start: int64(port), Len: 1}
	return syscall.FcntlFlock(locks.Fd(), syscall.F_SETLK, &lk) == nil
}

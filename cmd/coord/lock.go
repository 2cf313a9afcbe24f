package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// lockFileName is the file in --data-dir that `coord serve` holds a lock
// on while it runs the embedded etcd there, with its process id inside.
//
// Without it a second `coord serve` on the same directory (other ports)
// hung forever inside etcd, which waits without limit for the lock on its
// database file, and ignored SIGINT and SIGTERM while it did. The lock is
// taken before etcd starts and never waited for: a directory in use is
// an error at once, naming the process that holds it. It is released by
// the kernel when the process ends, however it ends; the file stays.
const lockFileName = "coord.lock"

// dataDirInUseError: another process holds the data directory's lock.
type dataDirInUseError struct {
	dir  string
	pid  string // as written in the lock file; "" if it could not be read
	file string
}

func (e *dataDirInUseError) Error() string {
	holder := "another process"
	if e.pid != "" {
		holder = "process " + e.pid
	}
	return fmt.Sprintf("--data-dir %s is in use by %s (it holds %s); stop that process, or give this one another --data-dir", e.dir, holder, e.file)
}

// lockDataDir creates dir if needed and takes its lock, writing this
// process's id in the lock file. unlock releases it.
func lockDataDir(dir string) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("--data-dir %s: %w", dir, err)
	}
	path := filepath.Join(dir, lockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("--data-dir %s: lock file: %w", dir, err)
	}
	held, err := tryLock(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("--data-dir %s: locking %s: %w", dir, path, err)
	}
	if !held {
		b, _ := os.ReadFile(path)
		f.Close()
		pid := strings.TrimSpace(string(b))
		if _, err := strconv.Atoi(pid); err != nil {
			pid = ""
		}
		return nil, &dataDirInUseError{dir: dir, pid: pid, file: path}
	}
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("--data-dir %s: writing %s: %w", dir, path, err)
	}
	return func() { f.Close() }, nil
}

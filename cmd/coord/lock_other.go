//go:build !unix

package main

import "os"

// tryLock: no advisory lock on this system; a second `coord serve` on the
// directory is left to etcd's own locks.
func tryLock(*os.File) (bool, error) { return true, nil }

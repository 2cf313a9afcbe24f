//go:build !unix

package freeport

import "os"

func openLocks() *os.File { return nil }

// reserve cannot see other processes' reservations here.
func reserve(int) bool { return true }

//go:build !unix

package bench

import "time"

func processCPU() time.Duration { return 0 }

func processSyscalls() int64 { return -1 }

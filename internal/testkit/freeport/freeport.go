package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// lowest is the lowest port handed out: below it live well-known services.
const lowest = 10000

var (
	mu    sync.Mutex
	given = map[int]bool{}
	locks = openLocks() // nil when the lock file cannot be opened
)

// Addrs returns n distinct "127.0.0.1:port" addresses that were free a moment
// ago.
func Addrs(n int) ([]string, error) {
	mu.Lock()
	defer mu.Unlock()
	lo, hi := candidates()
	out := make([]string, 0, n)
	for tries := 0; len(out) < n; tries++ {
		if tries > 1000 {
			return nil, fmt.Errorf("freeport: no free port in [%d, %d) after %d tries", lo, hi, tries)
		}
		port := lo + rand.IntN(hi-lo)
		if given[port] || !reserve(port) {
			continue
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			given[port] = true // in use; keeping the reservation does no harm
			continue
		}
		l.Close()
		given[port] = true
		out = append(out, addr)
	}
	return out, nil
}

// candidates is the range [lo, hi) to draw from: below the kernel's
// ephemeral range, or above it when it starts too low to leave room.
func candidates() (lo, hi int) {
	elo, ehi := 32768, 60999 // Linux default
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			a, errA := strconv.Atoi(f[0])
			b, errB := strconv.Atoi(f[1])
			if errA == nil && errB == nil && a <= b {
				elo, ehi = a, b
			}
		}
	}
	if elo-lowest >= 2000 {
		return lowest, elo
	}
	if 65535-ehi >= 2000 {
		return ehi + 1, 65536
	}
	return lowest, 65536 // no room outside: take the risk
}

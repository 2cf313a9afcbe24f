package httpapi

import (
	"fmt"
	"net/http"
	"sync"
)

// Default limits on transactions begun through one API server and not yet
// decided. Each holds its branches' payloads in etcd until decided, so
// they bound what callers can make etcd hold (with the payload limits of
// package protocol); the deadline bounds how long.
const (
	DefaultMaxUndecided              = 1000
	DefaultMaxUndecidedPerCredential = 500
)

// Names of the limits, as 429 answers give them (ErrorBody.Limit) and as
// coord serve's flags are named.
const (
	LimitUndecided              = "max-undecided"
	LimitUndecidedPerCredential = "max-undecided-per-credential"
)

// undecided counts the transactions begun through this server and not yet
// decided, by credential; the total is their sum (credentials are few: the
// operator's file), so the two cannot disagree. It is the server's own
// count: with several replicas, each has these limits. Every acquire that
// succeeds is matched by one call of its release: when the wait for the
// decision ends (decided, timed out, or cut short by Handler.Close), or at
// once when the begin wrote nothing new.
type undecided struct {
	max, perCaller int
	mu             struct {
		sync.Mutex
		byCaller map[string]int
	}
}

func newUndecided(max, perCaller int) *undecided {
	u := &undecided{max: max, perCaller: perCaller}
	u.mu.byCaller = make(map[string]int)
	return u
}

// acquire counts one more undecided transaction of caller, or answers 429
// naming the limit reached. release is called once it is decided (or no
// longer waited for); calls after the first do nothing.
func (u *undecided) acquire(caller string) (release func(), aerr *apiError) {
	u.mu.Lock()
	defer u.mu.Unlock()
	switch {
	case u.totalLocked() >= u.max:
		return nil, &apiError{status: http.StatusTooManyRequests, body: ErrorBody{
			Error: fmt.Sprintf("limit reached: %d transactions begun through this server are undecided (--%s); retry once some are decided", u.max, LimitUndecided),
			Limit: LimitUndecided,
		}}
	case u.mu.byCaller[caller] >= u.perCaller:
		return nil, &apiError{status: http.StatusTooManyRequests, body: ErrorBody{
			Error: fmt.Sprintf("limit reached: %d transactions begun by credential %q through this server are undecided (--%s); retry once some are decided", u.perCaller, caller, LimitUndecidedPerCredential),
			Limit: LimitUndecidedPerCredential,
		}}
	}
	u.mu.byCaller[caller]++
	var once sync.Once
	return func() {
		once.Do(func() {
			u.mu.Lock()
			defer u.mu.Unlock()
			if u.mu.byCaller[caller]--; u.mu.byCaller[caller] == 0 {
				delete(u.mu.byCaller, caller)
			}
		})
	}, nil
}

func (u *undecided) totalLocked() int {
	total := 0
	for _, n := range u.mu.byCaller {
		total += n
	}
	return total
}

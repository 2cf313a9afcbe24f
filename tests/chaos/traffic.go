package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/concord-tx/concord/httpapi"
	"github.com/concord-tx/concord/protocol"
)

// Traffic sends random concurrent transfers to the coordinator replicas
// and records each request and its answer in a History. Amounts are drawn
// so that some debits exceed what the account has: those transfers are
// bound to abort.
type Traffic struct {
	Coords    []string            // base URLs of the coordinator replicas
	Banks     map[string][]string // accounts of each bank
	History   *History
	TxTimeout time.Duration // prepare timeout of each transaction
	MaxAmount int64
	IDPrefix  string

	client *http.Client
	next   atomic.Int64
	phase  atomic.Value // Phase
}

// SetPhase says which phase of the run answers from now on belong to.
func (tr *Traffic) SetPhase(p Phase) { tr.phase.Store(p) }

func (tr *Traffic) currentPhase() Phase {
	p, _ := tr.phase.Load().(Phase)
	return p
}

// Run starts workers that send transfers until ctx ends, then waits for
// the requests in flight: they are answered, not cancelled.
func (tr *Traffic) Run(ctx context.Context, workers int, seed uint64) {
	tr.client = &http.Client{
		Timeout:   tr.TxTimeout + 12*time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: workers, IdleConnTimeout: 5 * time.Second},
	}
	defer tr.client.CloseIdleConnections()
	var banks []string
	for b := range tr.Banks {
		banks = append(banks, b)
	}
	slices.Sort(banks)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(w)+1))
			for ctx.Err() == nil {
				op := tr.transfer(rng, banks)
				if op.Result == Unknown {
					// A coordinator is down or stuck: do not spin.
					select {
					case <-ctx.Done():
					case <-time.After(time.Duration(20+rng.IntN(80)) * time.Millisecond):
					}
				}
			}
		}()
	}
	wg.Wait()
}

// plan draws one transfer: a debit at one bank and one or two credits at
// others, summing to zero.
func (tr *Traffic) plan(rng *rand.Rand, banks []string) []Leg {
	perm := rng.Perm(len(banks))
	amount := 1 + rng.Int64N(tr.MaxAmount)
	pick := func(b string) string { a := tr.Banks[b]; return a[rng.IntN(len(a))] }
	debit := Leg{Bank: banks[perm[0]], Amount: -amount}
	debit.Account = pick(debit.Bank)
	if len(banks) >= 3 && amount >= 2 && rng.IntN(4) == 0 {
		part := 1 + rng.Int64N(amount-1)
		b1, b2 := banks[perm[1]], banks[perm[2]]
		return []Leg{debit, {Bank: b1, Account: pick(b1), Amount: part}, {Bank: b2, Account: pick(b2), Amount: amount - part}}
	}
	b := banks[perm[1]]
	return []Leg{debit, {Bank: b, Account: pick(b), Amount: amount}}
}

// maxAttempts bounds the calls made for one transfer.
const maxAttempts = 3

// MaxTransferTime bounds the time spent on one transfer, retries included.
const MaxTransferTime = 20 * time.Second

// call makes one POST and says what the answer means, and whether trying
// again may tell more.
func (tr *Traffic) call(coord string, req httpapi.BeginRequest, giveUp time.Time) (res Result, reason, errText string, retry bool) {
	ctx, cancel := context.WithDeadline(context.Background(), giveUp)
	defer cancel()
	cl, err := httpapi.NewClient(coord, httpapi.WithHTTPClient(tr.client))
	if err != nil {
		return Unknown, "", err.Error(), false
	}
	out, err := cl.Begin(ctx, req, true)
	var apiErr *httpapi.Error
	switch {
	case errors.As(err, &apiErr):
		return Unknown, "", fmt.Sprintf("HTTP %d: %s", apiErr.Status, truncateString(apiErr.ErrorBody.Error, 300)), errors.Is(err, httpapi.ErrUnknown)
	case err != nil:
		return Unknown, "", err.Error(), errors.Is(err, httpapi.ErrUnknown)
	case out.State == protocol.StateCommitted:
		return Committed, "", "", false
	case out.State == protocol.StateAborted:
		return Aborted, out.Reason, "", false
	}
	return Unknown, "", fmt.Sprintf("state %v in answer %+v", out.State, out), false
}

// transfer sends one transfer and records it.
func (tr *Traffic) transfer(rng *rand.Rand, banks []string) Op {
	legs := tr.plan(rng, banks)
	op := Op{
		ID:    fmt.Sprintf("%s%06d", tr.IDPrefix, tr.next.Add(1)),
		Legs:  legs,
		Start: time.Now(),
	}
	req := httpapi.BeginRequest{ID: op.ID, Timeout: tr.TxTimeout.String()}
	for _, l := range legs {
		p, _ := json.Marshal(map[string]any{"account": l.Account, "amount": l.Amount})
		req.Branches = append(req.Branches, httpapi.BranchRequest{Participant: l.Bank, Payload: p})
	}
	// Like a careful client, retry a failed call with the same id on the
	// next replica: a begin with an id is idempotent, so a retry either
	// begins the transaction or finds it and waits for its decision.
	first := rng.IntN(len(tr.Coords))
	giveUp := op.Start.Add(MaxTransferTime)
	for attempt := 0; attempt < maxAttempts && time.Now().Before(giveUp); attempt++ {
		op.Coord = tr.Coords[(first+attempt)%len(tr.Coords)]
		op.Attempts = attempt + 1
		var retry bool
		op.Result, op.Reason, op.Error, retry = tr.call(op.Coord, req, giveUp)
		if !retry {
			break
		}
		time.Sleep(time.Duration(50+rng.IntN(100)) * time.Millisecond)
	}
	op.End = time.Now()
	op.Phase = tr.currentPhase()
	tr.History.Add(op)
	return op
}

func truncateString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Package transfer is the client side of the demo: it turns a transfer
// between two bank accounts into one Concord transaction, sends it to the
// coordinator's HTTP API, and runs random transfers as a load test.
package transfer

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/concord-tx/concord/cmd/demo-participant/internal/bank"
	"github.com/concord-tx/concord/httpapi"
	"github.com/concord-tx/concord/protocol"
)

// ErrInvalidArgument: a transfer was described wrongly; nothing was sent.
var ErrInvalidArgument = errors.New("transfer: invalid argument")

// Endpoint is one account at one bank, written "bank-a:alice".
type Endpoint struct {
	Bank    string // the bank's participant name
	Account string
}

func (e Endpoint) String() string { return e.Bank + ":" + e.Account }

// ParseEndpoint parses "bank:account".
func ParseEndpoint(s string) (Endpoint, error) {
	b, a, ok := strings.Cut(s, ":")
	if !ok || b == "" || a == "" {
		return Endpoint{}, fmt.Errorf("%w: %q: expected bank:account, e.g. bank-a:alice", ErrInvalidArgument, s)
	}
	if err := protocol.ValidateName(b); err != nil {
		return Endpoint{}, fmt.Errorf("%w: %q: bank: %w", ErrInvalidArgument, s, err)
	}
	if err := bank.ValidateAccount(a); err != nil {
		return Endpoint{}, fmt.Errorf("%w: %q: account: %w", ErrInvalidArgument, s, err)
	}
	return Endpoint{Bank: b, Account: a}, nil
}

// ParseEndpoints parses a comma-separated list of endpoints, each once.
func ParseEndpoints(s string) ([]Endpoint, error) {
	var out []Endpoint
	seen := make(map[Endpoint]bool)
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		e, err := ParseEndpoint(item)
		if err != nil {
			return nil, err
		}
		if seen[e] {
			return nil, fmt.Errorf("%w: %s is listed twice", ErrInvalidArgument, e)
		}
		seen[e] = true
		out = append(out, e)
	}
	return out, nil
}

// ParseAmount parses a positive integer amount in minor units.
func ParseAmount(s string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: amount %q is not an integer (minor units, e.g. 10)", ErrInvalidArgument, s)
	}
	if n <= 0 {
		return 0, fmt.Errorf("%w: amount %d, expected more than 0", ErrInvalidArgument, n)
	}
	return n, nil
}

// Transfer moves Amount from one account to another.
type Transfer struct {
	From, To Endpoint
	Amount   int64
}

func (t Transfer) String() string { return fmt.Sprintf("%s -> %s %d", t.From, t.To, t.Amount) }

// Validate checks the transfer: two different accounts, a positive amount.
func (t Transfer) Validate() error {
	switch {
	case t.From == t.To:
		return fmt.Errorf("%w: from and to are the same account %s", ErrInvalidArgument, t.From)
	case t.Amount <= 0:
		return fmt.Errorf("%w: amount %d, expected more than 0", ErrInvalidArgument, t.Amount)
	}
	return nil
}

// Branches returns the transaction for t: a debit branch at the source bank
// and a credit branch at the destination. Between two accounts of one bank
// it is a single branch holding both moves, so that bank applies them
// together.
func (t Transfer) Branches() ([]httpapi.BranchRequest, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	debit := bank.Move{Account: t.From.Account, Amount: -t.Amount}
	credit := bank.Move{Account: t.To.Account, Amount: t.Amount}
	if t.From.Bank == t.To.Bank {
		p, err := bank.EncodePayload([]bank.Move{debit, credit})
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
		}
		return []httpapi.BranchRequest{{Participant: t.From.Bank, Payload: p}}, nil
	}
	dp, err := bank.EncodePayload([]bank.Move{debit})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	cp, err := bank.EncodePayload([]bank.Move{credit})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	return []httpapi.BranchRequest{{Participant: t.From.Bank, Payload: dp}, {Participant: t.To.Bank, Payload: cp}}, nil
}

// Request is the begin request of t as transaction id (empty: one is
// chosen when it is sent); timeout is how long the banks have to prepare
// (zero: the coordinator's default).
func (t Transfer) Request(id string, timeout time.Duration) (httpapi.BeginRequest, error) {
	branches, err := t.Branches()
	if err != nil {
		return httpapi.BeginRequest{}, err
	}
	req := httpapi.BeginRequest{ID: id, Branches: branches}
	if timeout > 0 {
		req.Timeout = timeout.String()
	}
	return req, nil
}

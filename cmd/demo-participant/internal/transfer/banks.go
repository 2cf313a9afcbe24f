package transfer

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	"github.com/concord-tx/concord/cmd/demo-participant/internal/bank"
	"github.com/concord-tx/concord/protocol"
)

// Banks reads the banks' accounts over their HTTP APIs.
type Banks struct {
	addrs map[string]string // participant name -> base URL
	hc    *http.Client
}

// ParseBanks parses "bank-a=http://127.0.0.1:8081,bank-b=http://...".
func ParseBanks(s string, hc *http.Client) (*Banks, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	b := &Banks{addrs: make(map[string]string), hc: hc}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, addr, ok := strings.Cut(item, "=")
		if !ok {
			return nil, fmt.Errorf("%w: bank %q: expected name=http://host:port", ErrInvalidArgument, item)
		}
		if err := protocol.ValidateName(name); err != nil {
			return nil, fmt.Errorf("%w: bank %q: %w", ErrInvalidArgument, item, err)
		}
		if !strings.HasPrefix(addr, "http://") && !strings.HasPrefix(addr, "https://") {
			return nil, fmt.Errorf("%w: bank %s: address %q, expected http://host:port", ErrInvalidArgument, name, addr)
		}
		if _, dup := b.addrs[name]; dup {
			return nil, fmt.Errorf("%w: bank %s is listed twice", ErrInvalidArgument, name)
		}
		b.addrs[name] = strings.TrimRight(addr, "/")
	}
	return b, nil
}

// Names returns the banks' names, sorted.
func (b *Banks) Names() []string {
	out := make([]string, 0, len(b.addrs))
	for n := range b.addrs {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Has reports whether bank name has an address.
func (b *Banks) Has(name string) bool { _, ok := b.addrs[name]; return ok }

// Snapshot is every account of every bank, read one bank at a time.
type Snapshot map[string]map[string]bank.Account // bank -> account -> money

// Sum returns the total balance and total held over every account.
func (s Snapshot) Sum() (balance, held int64) {
	for _, accounts := range s {
		for _, a := range accounts {
			balance += a.Balance
			held += a.Held
		}
	}
	return balance, held
}

// Account returns one account's money.
func (s Snapshot) Account(e Endpoint) (bank.Account, bool) {
	a, ok := s[e.Bank][e.Account]
	return a, ok
}

// Read reads every bank's GET /accounts.
func (b *Banks) Read(ctx context.Context) (Snapshot, error) {
	out := make(Snapshot, len(b.addrs))
	for _, name := range b.Names() {
		accounts, err := b.accounts(ctx, name)
		if err != nil {
			return nil, err
		}
		out[name] = accounts
	}
	return out, nil
}

// Prepared returns, per bank, the transactions it has prepared and not
// yet seen decided (GET /applied?phase=prepared). Once every transaction
// of a run is decided, a committed transaction not yet applied somewhere
// is among these: credits hold nothing, so holds alone cannot tell.
func (b *Banks) Prepared(ctx context.Context) (map[string][]string, error) {
	out := make(map[string][]string)
	for _, name := range b.Names() {
		var applied map[string]string
		if err := b.get(ctx, name, "/applied?phase=prepared", &applied); err != nil {
			return nil, err
		}
		for id := range applied {
			out[name] = append(out[name], id)
		}
	}
	return out, nil
}

func (b *Banks) accounts(ctx context.Context, name string) (map[string]bank.Account, error) {
	var accounts map[string]bank.Account
	if err := b.get(ctx, name, "/accounts", &accounts); err != nil {
		return nil, err
	}
	return accounts, nil
}

// get reads a JSON answer of bank name.
func (b *Banks) get(ctx context.Context, name, path string, v any) error {
	url := b.addrs[name] + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		return fmt.Errorf("bank %s: %w", name, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("bank %s: GET %s: %w", name, url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("bank %s: GET %s: %s: %s", name, url, resp.Status, errorText(raw))
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("bank %s: GET %s: %w", name, url, err)
	}
	return nil
}

// errorText is the "error" field of a JSON error body, or the body itself.
func errorText(raw []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(raw, &e) == nil && e.Error != "" {
		return e.Error
	}
	return strings.TrimSpace(string(raw))
}

package bank

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseSeed parses opening balances written "alice=100,bob=50". An empty
// string is no accounts. Balances are non-negative integers.
func ParseSeed(s string) (map[string]int64, error) {
	out := make(map[string]int64)
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, item := range strings.Split(s, ",") {
		name, amount, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok {
			return nil, fmt.Errorf("%w: %q: expected name=balance, e.g. alice=100", ErrInvalidAccount, item)
		}
		if err := ValidateAccount(name); err != nil {
			return nil, err
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("%w: %q appears twice", ErrInvalidAccount, name)
		}
		n, err := strconv.ParseInt(amount, 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%w: %s=%s: expected a non-negative integer balance", ErrInvalidAccount, name, amount)
		}
		out[name] = n
	}
	return out, nil
}

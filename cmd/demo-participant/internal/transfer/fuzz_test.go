package transfer

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

// FuzzParseAmount: --amount is a positive integer, which prints back as
// itself; anything else is ErrInvalidArgument naming the amount.
func FuzzParseAmount(f *testing.F) {
	for _, s := range []string{"10", " 7 ", "0", "-5", "+3", "1e3", "10.5", "9223372036854775807", "9223372036854775808", "0x10", "", "١٢"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseAmount(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "amount") {
				t.Fatalf("ParseAmount(%q): %v, want ErrInvalidArgument naming the amount", s, err)
			}
			return
		}
		if n <= 0 {
			t.Fatalf("ParseAmount(%q) = %d, not positive", s, n)
		}
		if back, err := ParseAmount(strconv.FormatInt(n, 10)); err != nil || back != n {
			t.Fatalf("ParseAmount(%q) = %d, which parses back as %d, %v", s, n, back, err)
		}
	})
}

// FuzzParseEndpoints: --from, --to and --accounts are bank:account lists;
// what parses prints back to what parses the same.
func FuzzParseEndpoints(f *testing.F) {
	for _, s := range []string{"bank-a:alice", "bank-a:alice, bank-b:bob", "bank-a:alice,bank-a:alice", "a:", ":b", "a:b:c", ",,", "bank a:alice", "bank-a:al/ice", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		es, err := ParseEndpoints(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("ParseEndpoints(%q): %v, want ErrInvalidArgument", s, err)
			}
			return
		}
		parts := make([]string, len(es))
		for i, e := range es {
			parts[i] = e.String()
		}
		back, err := ParseEndpoints(strings.Join(parts, ","))
		if err != nil || len(back) != len(es) {
			t.Fatalf("ParseEndpoints(%q) = %v, which parses back as %v, %v", s, es, back, err)
		}
		for i := range es {
			if back[i] != es[i] {
				t.Fatalf("ParseEndpoints(%q) = %v, which parses back as %v", s, es, back)
			}
		}
	})
}

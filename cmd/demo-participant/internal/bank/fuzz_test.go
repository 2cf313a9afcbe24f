package bank

import (
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// FuzzParsePayload: a branch payload (anyone who can begin a transaction
// writes it) is a valid list of moves or ErrInvalidPayload; valid moves
// encode to a payload that parses to the same moves.
func FuzzParsePayload(f *testing.F) {
	for _, s := range []string{
		`{"account":"alice","amount":-10}`, `{"moves":[{"account":"alice","amount":-10},{"account":"bob","amount":10}]}`,
		`{"account":"alice"}`, `{"amount":5}`, `{"moves":[]}`, `{"moves":null}`, `{"moves":[{"account":"a","amount":1}],"account":"b"}`,
		`{"account":"alice","amount":0}`, `{"account":"alice","amount":-9223372036854775808}`, `{"account":"alice","amount":9223372036854775808}`,
		`{"account":"alice","amount":1.5}`, `{"account":"al ice","amount":1}`, `{"account":"a","amount":1} {}`, `{"account":"a","amount":1,"x":0}`,
		`{"moves":[{"account":"a","amount":1},{"account":"a","amount":2}]}`, `null`, ``, `"overdraft"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		moves, err := ParsePayload(b)
		if err != nil {
			if !errors.Is(err, ErrInvalidPayload) {
				t.Fatalf("ParsePayload(%q): %v, want ErrInvalidPayload", b, err)
			}
			return
		}
		if err := validateMoves(moves); err != nil {
			t.Fatalf("ParsePayload(%q) accepted %+v: %v", b, moves, err)
		}
		enc, err := EncodePayload(moves)
		if err != nil {
			t.Fatalf("ParsePayload(%q) accepted %+v, which EncodePayload refuses: %v", b, moves, err)
		}
		back, err := ParsePayload(enc)
		if err != nil || !reflect.DeepEqual(back, moves) {
			t.Fatalf("round trip of %q: %+v, then %s parses as %+v, %v", b, moves, enc, back, err)
		}
	})
}

// FuzzParseSeed: --accounts' opening balances "alice=100,bob=50" parse to
// non-negative balances of valid accounts, which print back the same.
func FuzzParseSeed(f *testing.F) {
	for _, s := range []string{"alice=100,bob=50", "", " , ", "alice=-1", "alice=1,alice=2", "alice", "=5", "alice=1e3", "alice= 5", "a=9223372036854775807"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseSeed(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidAccount) {
				t.Fatalf("ParseSeed(%q): %v, want ErrInvalidAccount", s, err)
			}
			return
		}
		var parts []string
		for name, n := range m {
			if ValidateAccount(name) != nil || n < 0 {
				t.Fatalf("ParseSeed(%q) accepted %s=%d", s, name, n)
			}
			parts = append(parts, name+"="+strconv.FormatInt(n, 10))
		}
		back, err := ParseSeed(strings.Join(parts, ","))
		if err != nil || !reflect.DeepEqual(back, m) {
			t.Fatalf("ParseSeed(%q) = %v, which prints back as %v, %v", s, m, back, err)
		}
	})
}

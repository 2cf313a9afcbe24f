package bank

import (
	"errors"
	"maps"
	"testing"
)

func TestParseSeed(t *testing.T) {
	got, err := ParseSeed("alice=100, bob=0")
	if err != nil || !maps.Equal(got, map[string]int64{"alice": 100, "bob": 0}) {
		t.Fatalf("ParseSeed: %v, %v", got, err)
	}
	if got, err := ParseSeed(""); err != nil || len(got) != 0 {
		t.Fatalf("ParseSeed of nothing: %v, %v", got, err)
	}
	for _, bad := range []string{"alice", "alice=-1", "alice=x", "alice=1,alice=2", "a b=1", "=5"} {
		if _, err := ParseSeed(bad); !errors.Is(err, ErrInvalidAccount) {
			t.Errorf("ParseSeed(%q): %v, want ErrInvalidAccount", bad, err)
		}
	}
}

func TestEncodePayloadRoundTrips(t *testing.T) {
	for _, moves := range [][]Move{
		{{"alice", -10}},
		{{"alice", -10}, {"bob", 10}},
	} {
		p, err := EncodePayload(moves)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParsePayload(p)
		if err != nil {
			t.Fatalf("ParsePayload(%s): %v", p, err)
		}
		if len(got) != len(moves) || got[0] != moves[0] || got[len(got)-1] != moves[len(moves)-1] {
			t.Errorf("%s parses to %v, want %v", p, got, moves)
		}
	}
	if p, _ := EncodePayload([]Move{{"alice", -10}}); string(p) != `{"account":"alice","amount":-10}` {
		t.Errorf("single move encodes to %s", p)
	}
}

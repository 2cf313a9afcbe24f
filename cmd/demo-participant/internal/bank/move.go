package bank

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
)

// MaxMoves bounds the moves of one branch.
const MaxMoves = 16

// MaxAccountLength bounds an account name.
const MaxAccountLength = 64

// Move is one change to one account: a debit when Amount is negative, a
// credit when positive. Amounts are integers in minor units.
type Move struct {
	Account string `json:"account"`
	Amount  int64  `json:"amount"`
}

// A branch payload is one move,
//
//	{"account": "alice", "amount": -10}
//
// or, for a transfer between two accounts of the same bank (one branch
// holding both moves),
//
//	{"moves": [{"account": "alice", "amount": -10}, {"account": "bob", "amount": 10}]}
type payload struct {
	Account *string       `json:"account"`
	Amount  *int64        `json:"amount"`
	Moves   []payloadMove `json:"moves"`
}

type payloadMove struct {
	Account *string `json:"account"`
	Amount  *int64  `json:"amount"`
}

// EncodePayload returns the branch payload for moves: a single move as
// {"account","amount"}, several as {"moves": [...]}.
func EncodePayload(moves []Move) ([]byte, error) {
	if err := validateMoves(moves); err != nil {
		return nil, err
	}
	if len(moves) == 1 {
		return json.Marshal(moves[0])
	}
	return json.Marshal(struct {
		Moves []Move `json:"moves"`
	}{moves})
}

// ParsePayload reads a branch payload and checks its moves: 1 to MaxMoves,
// valid account names, no account twice, no zero amount.
func ParsePayload(b []byte) ([]Move, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var p payload
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("%w: %v (expected {\"account\": \"alice\", \"amount\": -10})", ErrInvalidPayload, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the JSON object", ErrInvalidPayload)
	}
	var moves []Move
	switch {
	case p.Moves != nil && (p.Account != nil || p.Amount != nil):
		return nil, fmt.Errorf("%w: both \"moves\" and \"account\"/\"amount\" given", ErrInvalidPayload)
	case p.Moves != nil:
		for i, m := range p.Moves {
			mv, err := m.move()
			if err != nil {
				return nil, fmt.Errorf("%w: moves[%d]: %v", ErrInvalidPayload, i, err)
			}
			moves = append(moves, mv)
		}
	default:
		mv, err := payloadMove{p.Account, p.Amount}.move()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidPayload, err)
		}
		moves = []Move{mv}
	}
	if err := validateMoves(moves); err != nil {
		return nil, err
	}
	return moves, nil
}

func (m payloadMove) move() (Move, error) {
	if m.Account == nil {
		return Move{}, fmt.Errorf("\"account\" is missing")
	}
	if m.Amount == nil {
		return Move{}, fmt.Errorf("\"amount\" is missing")
	}
	return Move{Account: *m.Account, Amount: *m.Amount}, nil
}

func validateMoves(moves []Move) error {
	if len(moves) == 0 || len(moves) > MaxMoves {
		return fmt.Errorf("%w: %d moves, expected 1 to %d", ErrInvalidPayload, len(moves), MaxMoves)
	}
	seen := make(map[string]bool, len(moves))
	for _, m := range moves {
		if err := ValidateAccount(m.Account); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalidPayload, err)
		}
		if seen[m.Account] {
			return fmt.Errorf("%w: account %q appears twice", ErrInvalidPayload, m.Account)
		}
		seen[m.Account] = true
		if m.Amount == 0 || m.Amount == math.MinInt64 {
			return fmt.Errorf("%w: account %q: amount %d, expected a non-zero integer", ErrInvalidPayload, m.Account, m.Amount)
		}
	}
	return nil
}

// ValidateAccount checks an account name: 1 to 64 characters from
// [A-Za-z0-9._-].
func ValidateAccount(name string) error {
	if len(name) == 0 || len(name) > MaxAccountLength {
		return fmt.Errorf("%w: %q: expected 1 to %d characters", ErrInvalidAccount, name, MaxAccountLength)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: %q: character %q at %d, expected [A-Za-z0-9._-]", ErrInvalidAccount, name, c, i)
		}
	}
	return nil
}

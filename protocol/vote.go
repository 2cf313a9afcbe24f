package protocol

import (
	"fmt"
	"strings"
)

// VoteYes is the stored value of a yes vote; deciders compare against it.
const VoteYes = "yes"

const voteNoPrefix = "no:"

// Vote is a participant's answer to prepare.
type Vote struct {
	Yes    bool
	Reason string // why not, for a no vote
}

// Encode returns the stored form: "yes" or "no:<reason>".
func (v Vote) Encode() string {
	if v.Yes {
		return VoteYes
	}
	return voteNoPrefix + truncate(v.Reason, MaxReasonLength)
}

func (v Vote) String() string {
	if v.Yes {
		return "yes"
	}
	return "no (" + v.Reason + ")"
}

// ParseVote parses a stored vote.
func ParseVote(s string) (Vote, error) {
	if s == VoteYes {
		return Vote{Yes: true}, nil
	}
	if r, ok := strings.CutPrefix(s, voteNoPrefix); ok {
		return Vote{Reason: r}, nil
	}
	return Vote{}, fmt.Errorf("%w: %q, expected %q or %q", ErrInvalidVote, s, VoteYes, voteNoPrefix+"<reason>")
}

package protocol

import "errors"

// Errors returned by validation and decoding. Callers test them with
// errors.Is; the wrapped message names the field and what was expected.
var (
	ErrInvalidState         = errors.New("protocol: invalid state")
	ErrInvalidID            = errors.New("protocol: invalid transaction id")
	ErrInvalidName          = errors.New("protocol: invalid participant name")
	ErrInvalidPrefix        = errors.New("protocol: invalid key prefix")
	ErrNoBranches           = errors.New("protocol: no branches")
	ErrTooManyBranches      = errors.New("protocol: too many branches")
	ErrDuplicateParticipant = errors.New("protocol: participant appears twice")
	ErrPayloadTooLarge      = errors.New("protocol: payload too large")
	ErrInvalidTimeout       = errors.New("protocol: timeout out of bounds")
	ErrUnsupportedVersion   = errors.New("protocol: unsupported encoding version")
	ErrMalformed            = errors.New("protocol: malformed value")
	ErrInvalidVote          = errors.New("protocol: invalid vote")
	ErrInvalidLimits        = errors.New("protocol: invalid limits")
)

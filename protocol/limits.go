package protocol

import (
	"fmt"
	"strings"
	"time"
)

// Branch is one participant's part of a transaction: who, and the opaque
// payload its Prepare handler receives.
type Branch struct {
	Participant string
	Payload     []byte
}

// Limits bounds what a transaction may hold. The defaults keep most begin
// Txns inside etcd's default --max-request-bytes (1.5 MiB) and --max-txn-ops
// (128); BeginWrites refuses the few that would still write more than
// MaxBeginBytes (many branches with long names and large payloads: each
// prepare message repeats the record, and JSON base64-encodes payloads).
type Limits struct {
	MaxBranches     int           // branches per transaction
	MaxPayload      int           // bytes per branch payload
	MaxTotalPayload int           // bytes of all payloads of one transaction
	MinTimeout      time.Duration // shortest prepare timeout accepted
	MaxTimeout      time.Duration // longest prepare timeout accepted
}

// Limit values used by DefaultLimits.
const (
	DefaultMaxBranches     = 100
	DefaultMaxPayload      = 64 << 10
	DefaultMaxTotalPayload = 640 << 10  // 853 KiB once base64-encoded
	MaxBeginBytes          = 1000 << 10 // keys and values one begin writes, under the 1 MiB a batch carries
	DefaultMinTimeout      = 100 * time.Millisecond
	DefaultMaxTimeout      = 24 * time.Hour
	MaxIDLength            = 128
	MaxNameLength          = 64
	MaxReasonLength        = 512
	MaxTraceStateLength    = 512 // a longer tracestate is not stored (see TraceContext.Bounded)
)

// DefaultLimits returns the limits in force when none are configured.
func DefaultLimits() Limits {
	return Limits{
		MaxBranches:     DefaultMaxBranches,
		MaxPayload:      DefaultMaxPayload,
		MaxTotalPayload: DefaultMaxTotalPayload,
		MinTimeout:      DefaultMinTimeout,
		MaxTimeout:      DefaultMaxTimeout,
	}
}

// Validate checks the limits themselves. MaxBranches may not pass
// DefaultMaxBranches: the Txns that write or read one key per branch (a
// vote carrying the decision, a replica finishing an abort) must stay
// within etcd's default 128 operations.
func (l Limits) Validate() error {
	switch {
	case l.MaxBranches < 1 || l.MaxBranches > DefaultMaxBranches:
		return fmt.Errorf("%w: MaxBranches %d, expected 1 to %d", ErrInvalidLimits, l.MaxBranches, DefaultMaxBranches)
	case l.MaxPayload < 0 || l.MaxTotalPayload < 0:
		return fmt.Errorf("%w: MaxPayload %d and MaxTotalPayload %d, expected 0 or more", ErrInvalidLimits, l.MaxPayload, l.MaxTotalPayload)
	case l.MinTimeout <= 0 || l.MaxTimeout < l.MinTimeout:
		return fmt.Errorf("%w: MinTimeout %v and MaxTimeout %v, expected 0 < MinTimeout <= MaxTimeout", ErrInvalidLimits, l.MinTimeout, l.MaxTimeout)
	}
	return nil
}

// ValidateBranches checks the branches of one transaction: at least one, at
// most MaxBranches, valid and distinct participant names, payload sizes.
func (l Limits) ValidateBranches(branches []Branch) error {
	if len(branches) == 0 {
		return fmt.Errorf("%w: branches: expected 1 to %d, got 0", ErrNoBranches, l.MaxBranches)
	}
	if len(branches) > l.MaxBranches {
		return fmt.Errorf("%w: branches: expected at most %d, got %d", ErrTooManyBranches, l.MaxBranches, len(branches))
	}
	seen := make(map[string]struct{}, len(branches))
	total := 0
	for i, b := range branches {
		if err := ValidateName(b.Participant); err != nil {
			return fmt.Errorf("branches[%d].participant: %w", i, err)
		}
		if _, dup := seen[b.Participant]; dup {
			return fmt.Errorf("%w: branches[%d].participant: %q is already in branches", ErrDuplicateParticipant, i, b.Participant)
		}
		seen[b.Participant] = struct{}{}
		if len(b.Payload) > l.MaxPayload {
			return fmt.Errorf("%w: branches[%d].payload: %d bytes, expected at most %d", ErrPayloadTooLarge, i, len(b.Payload), l.MaxPayload)
		}
		total += len(b.Payload)
	}
	if total > l.MaxTotalPayload {
		return fmt.Errorf("%w: branches: %d payload bytes in all, expected at most %d", ErrPayloadTooLarge, total, l.MaxTotalPayload)
	}
	return nil
}

// ValidateTimeout checks a prepare timeout against the bounds.
func (l Limits) ValidateTimeout(d time.Duration) error {
	if d < l.MinTimeout || d > l.MaxTimeout {
		return fmt.Errorf("%w: timeout: %v, expected between %v and %v", ErrInvalidTimeout, d, l.MinTimeout, l.MaxTimeout)
	}
	return nil
}

// ValidateName checks a participant name: 1 to 64 characters from
// [a-z0-9._-].
func ValidateName(name string) error {
	if len(name) == 0 || len(name) > MaxNameLength {
		return fmt.Errorf("%w: %s: expected 1 to %d characters, got %d", ErrInvalidName, quoted(name), MaxNameLength, len(name))
	}
	for i, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: %s: character %q at %d, expected [a-z0-9._-]", ErrInvalidName, quoted(name), c, i)
		}
	}
	return nil
}

// ValidateID checks a transaction id: 1 to 128 characters from
// [A-Za-z0-9._:-], not dots alone ("." and ".." cannot be carried in a URL
// path). Generated ids are UUIDs, which fit.
func ValidateID(id string) error {
	if len(id) == 0 || len(id) > MaxIDLength {
		return fmt.Errorf("%w: %s: expected 1 to %d characters, got %d", ErrInvalidID, quoted(id), MaxIDLength, len(id))
	}
	if strings.Trim(id, ".") == "" {
		return fmt.Errorf("%w: %q: dots alone, expected some other character too", ErrInvalidID, id)
	}
	for i, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' || c == ':') {
			return fmt.Errorf("%w: %s: character %q at %d, expected [A-Za-z0-9._:-]", ErrInvalidID, quoted(id), c, i)
		}
	}
	return nil
}

// quoted quotes a bad value for an error message, cut after 64
// characters with its length in bytes: errors name what was wrong without
// echoing a huge value back.
func quoted(s string) string {
	n := 0
	for i := range s {
		if n == 64 {
			return fmt.Sprintf("%q… (%d bytes)", s[:i], len(s))
		}
		n++
	}
	return fmt.Sprintf("%q", s)
}

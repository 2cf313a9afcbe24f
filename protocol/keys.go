package protocol

import (
	"fmt"
	"strings"
)

// DefaultPrefix is the key prefix used when none is configured.
const DefaultPrefix = "/tx"

const (
	reserved          = "~"
	inboxSpace        = "~inbox/"
	participantsSpace = "~participants/"
	electionSpace     = "~coordinators/leader/"
	voteSpace         = "/vote/"
)

// Keys builds and parses the etcd keys of one Concord deployment. The zero
// value is not usable; build one with NewKeys.
type Keys struct {
	p string // prefix with one trailing "/"
}

// NewKeys returns the key layout under prefix, which must start with "/",
// must not end with "/" (other than being "/" itself is refused too) and
// must not contain "~".
func NewKeys(prefix string) (Keys, error) {
	if len(prefix) < 2 || prefix[0] != '/' || strings.HasSuffix(prefix, "/") || strings.Contains(prefix, reserved) || strings.Contains(prefix, "//") {
		return Keys{}, fmt.Errorf("%w: %q (expected a path such as %q: starts with /, no trailing /, no ~)", ErrInvalidPrefix, prefix, DefaultPrefix)
	}
	return Keys{p: prefix + "/"}, nil
}

// DefaultKeys returns the key layout under DefaultPrefix.
func DefaultKeys() Keys { return Keys{p: DefaultPrefix + "/"} }

// Prefix returns the configured prefix, without its trailing "/".
func (k Keys) Prefix() string { return strings.TrimSuffix(k.p, "/") }

// All returns the range holding every key of the deployment: [start, end).
func (k Keys) All() (start, end string) { return k.p, prefixEnd(k.p) }

// Record is the key of transaction id's record.
func (k Keys) Record(id string) string { return k.p + id }

// TxPrefix is the prefix of everything stored beneath the record (votes).
func (k Keys) TxPrefix(id string) string { return k.p + id + "/" }

// Vote is the key of participant's vote in transaction id.
func (k Keys) Vote(id, participant string) string { return k.p + id + voteSpace + participant }

// Records returns the range holding every record and vote: [start, end).
func (k Keys) Records() (start, end string) { return k.p, k.p + reserved }

// Inbox is the key of the message to participant about transaction id.
func (k Keys) Inbox(participant, id string) string {
	return k.p + inboxSpace + participant + "/" + id
}

// InboxPrefix is the prefix of participant's inbox: the only range it watches.
func (k Keys) InboxPrefix(participant string) string { return k.p + inboxSpace + participant + "/" }

// Inboxes is the prefix of every participant's inbox.
func (k Keys) Inboxes() string { return k.p + inboxSpace }

// Participant is the registration key of participant.
func (k Keys) Participant(name string) string { return k.p + participantsSpace + name }

// Participants is the prefix of every registration key.
func (k Keys) Participants() string { return k.p + participantsSpace }

// Election is the prefix coordinator replicas campaign under.
func (k Keys) Election() string { return k.p + electionSpace }

// KeyKind says what a key under the prefix is.
type KeyKind uint8

const (
	KindUnknown KeyKind = iota
	KindRecord
	KindVote
	KindInbox
	KindParticipant
	KindElection
)

// Key is a parsed key: its kind and the id and participant it names.
type Key struct {
	Kind        KeyKind
	ID          string // transaction id, for records, votes and inboxes
	Participant string // for votes, inboxes and registrations
}

// Parse tells what key is. Keys outside the prefix, or of a shape this
// version does not know, are KindUnknown.
func (k Keys) Parse(key string) Key {
	rest, ok := strings.CutPrefix(key, k.p)
	if !ok {
		return Key{}
	}
	if r, ok := strings.CutPrefix(rest, inboxSpace); ok {
		p, id, ok := strings.Cut(r, "/")
		if !ok || strings.Contains(id, "/") {
			return Key{}
		}
		return Key{Kind: KindInbox, ID: id, Participant: p}
	}
	if r, ok := strings.CutPrefix(rest, participantsSpace); ok {
		if strings.Contains(r, "/") {
			return Key{}
		}
		return Key{Kind: KindParticipant, Participant: r}
	}
	if strings.HasPrefix(rest, electionSpace) {
		return Key{Kind: KindElection}
	}
	if strings.HasPrefix(rest, reserved) {
		return Key{}
	}
	id, sub, hasSub := strings.Cut(rest, "/")
	if !hasSub {
		return Key{Kind: KindRecord, ID: id}
	}
	if p, ok := strings.CutPrefix("/"+sub, voteSpace); ok && !strings.Contains(p, "/") {
		return Key{Kind: KindVote, ID: id, Participant: p}
	}
	return Key{}
}

// prefixEnd is the end of the range of keys starting with p, as
// clientv3.GetPrefixRangeEnd computes it.
func prefixEnd(p string) string {
	b := []byte(p)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1])
		}
	}
	return "\x00"
}

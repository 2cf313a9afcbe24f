package coordinator

import (
	"context"
	"fmt"
	"sync"

	"github.com/concord-tx/concord/protocol"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Default storage limits (see StorageLimits).
const (
	DefaultMaxPendingMessages = 10_000
	DefaultMaxPendingBytes    = 64 << 20
	DefaultMaxUndecided       = 100_000
)

// StorageLimits bound what Begin lets etcd hold, so that transactions
// addressed to a participant nobody runs, or one that has fallen behind,
// cannot fill etcd's space quota. A zero field takes its default; a
// negative one turns that limit off.
type StorageLimits struct {
	// MaxPendingMessages: inbox messages one participant may have pending
	// (not yet acknowledged), default 10,000.
	MaxPendingMessages int
	// MaxPendingBytes: bytes of those messages, keys and values, default
	// 64 MiB.
	MaxPendingBytes int64
	// MaxUndecided: transactions undecided at once, over every
	// participant, default 100,000.
	MaxUndecided int
}

// enabled reports whether any limit is on: with none, the Client's watch
// leaves out the inboxes (and a Replica cannot follow it).
func (l StorageLimits) enabled() bool {
	return l.MaxPendingMessages > 0 || l.MaxPendingBytes > 0 || l.MaxUndecided > 0
}

func (l StorageLimits) withDefaults() StorageLimits {
	if l.MaxPendingMessages == 0 {
		l.MaxPendingMessages = DefaultMaxPendingMessages
	}
	if l.MaxPendingBytes == 0 {
		l.MaxPendingBytes = DefaultMaxPendingBytes
	}
	if l.MaxUndecided == 0 {
		l.MaxUndecided = DefaultMaxUndecided
	}
	return l
}

// Names of the storage limits, as LimitError.Limit gives them.
const (
	LimitPendingMessages = "pending_messages"
	LimitPendingBytes    = "pending_bytes"
	LimitUndecided       = "undecided"
)

// LimitError says which storage limit refused a Begin. It matches ErrLimit
// with errors.Is; get the details with errors.As.
type LimitError struct {
	Limit       string // LimitPendingMessages, LimitPendingBytes or LimitUndecided
	Participant string // whose inbox is full; empty for LimitUndecided
	Value       int64  // what etcd holds now
	Max         int64  // the limit
}

func (e *LimitError) Error() string {
	if e.Participant == "" {
		return fmt.Sprintf("%v: %s: %d transactions undecided, at most %d", ErrLimit, e.Limit, e.Value, e.Max)
	}
	what := "messages"
	if e.Limit == LimitPendingBytes {
		what = "bytes"
	}
	return fmt.Sprintf("%v: %s: participant %s has %d %s pending, at most %d", ErrLimit, e.Limit, e.Participant, e.Value, what, e.Max)
}

// Is makes errors.Is(err, ErrLimit) true.
func (e *LimitError) Is(target error) bool { return target == ErrLimit }

// pending counts what etcd holds for participants, from the Client's one
// watch (see hub), which also covers every participant's inbox: per
// participant the messages not yet acknowledged and their bytes, and the
// transactions undecided overall. Begin reads the counts from memory, so a
// check costs no etcd request.
//
// An inbox key holds a prepare message from the begin until the decision
// rewrites it, so its Version is 1 exactly while its transaction is
// undecided: the counts need no decoding. The cost is a copy of the inbox
// writes, and of the deletions under the records, in each Client's watch.
// Rejected: a count-only read of the named participants' inboxes per
// Begin, which costs a linearizable read (a raft round trip) on the
// commit path and cannot count bytes; and a second watch for the inboxes,
// whose check that its member keeps up (internal/watch) costs a request
// twice a second.
//
// The counts trail etcd by the watch's delay, and concurrent Begins check
// before any of them is written, so a limit may be passed by the Begins
// in flight at once: the limits bound storage, not exact quotas.
type pending struct {
	cli  *clientv3.Client
	keys protocol.Keys
	o    options

	mu struct {
		sync.Mutex
		msgs      map[string]inboxEntry      // inbox key → what it holds
		per       map[string]*participantUse // participant → totals
		undecided map[string]int             // id → its inbox keys at version 1
	}
}

type inboxEntry struct {
	participant, id string
	bytes           int64
	prepare         bool // Version 1: undecided
}

type participantUse struct {
	msgs  int
	bytes int64
}

func newPending(cli *clientv3.Client, o options) *pending {
	return &pending{cli: cli, keys: o.keys, o: o}
}

// load reads every inbox, page by page at revision rev, and replaces the
// counts with what it read. The hub's watch goes on from rev.
func (p *pending) load(ctx context.Context, rev int64) error {
	msgs := make(map[string]inboxEntry)
	start, end := p.keys.Inboxes(), clientv3.GetPrefixRangeEnd(p.keys.Inboxes())
	err := pageRange(ctx, p.cli, p.o, start, end, rev, nil, func(kvs []*mvccpb.KeyValue) (bool, error) {
		for _, kv := range kvs {
			if e, ok := p.entry(kv.Key, kv.Value, kv.Version); ok {
				msgs[string(kv.Key)] = e
			}
		}
		return false, nil
	})
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.msgs = make(map[string]inboxEntry, len(msgs))
	p.mu.per = make(map[string]*participantUse)
	p.mu.undecided = make(map[string]int)
	for k, e := range msgs {
		p.putLocked(k, e)
	}
	return nil
}

func (p *pending) entry(key, value []byte, version int64) (inboxEntry, bool) {
	k := p.keys.Parse(string(key))
	if k.Kind != protocol.KindInbox {
		return inboxEntry{}, false
	}
	return inboxEntry{participant: k.Participant, id: k.ID, bytes: int64(len(key) + len(value)), prepare: version == 1}, true
}

func (p *pending) putLocked(key string, e inboxEntry) {
	p.deleteLocked(key)
	p.mu.msgs[key] = e
	u := p.mu.per[e.participant]
	if u == nil {
		u = &participantUse{}
		p.mu.per[e.participant] = u
	}
	u.msgs++
	u.bytes += e.bytes
	if e.prepare {
		p.mu.undecided[e.id]++
	}
}

func (p *pending) deleteLocked(key string) {
	e, ok := p.mu.msgs[key]
	if !ok {
		return
	}
	delete(p.mu.msgs, key)
	if u := p.mu.per[e.participant]; u != nil {
		u.msgs--
		u.bytes -= e.bytes
		if u.msgs == 0 {
			delete(p.mu.per, e.participant)
		}
	}
	if e.prepare {
		if p.mu.undecided[e.id]--; p.mu.undecided[e.id] <= 0 {
			delete(p.mu.undecided, e.id)
		}
	}
}

// apply folds one event of the hub's watch on an inbox key into the
// counts.
func (p *pending) apply(ev *clientv3.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ev.Type == clientv3.EventTypeDelete {
		p.deleteLocked(string(ev.Kv.Key))
	} else if e, ok := p.entry(ev.Kv.Key, ev.Kv.Value, ev.Kv.Version); ok {
		p.putLocked(string(ev.Kv.Key), e)
	}
}

// check refuses a begin naming participants when a limit is reached.
func (p *pending) check(l StorageLimits, participants []string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.mu.undecided); l.MaxUndecided > 0 && n >= l.MaxUndecided {
		return &LimitError{Limit: LimitUndecided, Value: int64(n), Max: int64(l.MaxUndecided)}
	}
	for _, name := range participants {
		u := p.mu.per[name]
		if u == nil {
			continue
		}
		if l.MaxPendingMessages > 0 && u.msgs >= l.MaxPendingMessages {
			return &LimitError{Limit: LimitPendingMessages, Participant: name, Value: int64(u.msgs), Max: int64(l.MaxPendingMessages)}
		}
		if l.MaxPendingBytes > 0 && u.bytes >= l.MaxPendingBytes {
			return &LimitError{Limit: LimitPendingBytes, Participant: name, Value: u.bytes, Max: l.MaxPendingBytes}
		}
	}
	return nil
}

// Usage is what etcd holds that the storage limits count, as a Client's
// watch last saw it.
type Usage struct {
	Participant     string
	PendingMessages int   // the participant's messages not yet acknowledged
	PendingBytes    int64 // their keys and values
	Undecided       int   // transactions undecided, over every participant
}

// Usage returns what participant has pending and how many transactions
// are undecided, as this Client counts them for its storage limits; all
// zero when every limit is off (nothing is counted then).
func (c *Client) Usage(participant string) Usage {
	p := c.hub.pending
	p.mu.Lock()
	defer p.mu.Unlock()
	u := Usage{Participant: participant, Undecided: len(p.mu.undecided)}
	if use := p.mu.per[participant]; use != nil {
		u.PendingMessages, u.PendingBytes = use.msgs, use.bytes
	}
	return u
}

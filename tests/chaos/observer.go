package chaos

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/concord-tx/concord/protocol"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Event is one change to a Concord key, as the observer saw it.
type Event struct {
	Rev         int64
	At          time.Time
	Kind        protocol.KeyKind
	ID          string // transaction, for records, votes and inboxes
	Participant string // for votes, inboxes and registrations
	Deleted     bool
	State       protocol.State // records
	Vote        string         // votes
	Op          protocol.Op    // inbox puts
	Lease       int64          // registrations and election keys
	Key         string         // election keys
	Relisted    bool           // found by a re-list after a compaction, not by the watch
	// Decided is set on a vote whose Txn also wrote the decision.
	Decided bool
}

// TxView is what the observer knows of one transaction, from etcd alone.
type TxView struct {
	ID           string
	Participants []string
	Created      int64 // revision R
	CreatedAt    time.Time
	Deadline     time.Time
	States       []StateSeen
	Decision     protocol.State // committing or aborting; invalid while undecided
	DecidedRev   int64
	DecidedAt    time.Time
	// DecisionRelisted: the decision was found by a re-list, so DecidedRev
	// is only an upper bound.
	DecisionRelisted bool
	Cause            protocol.Cause
	Reason           string
	TerminalAt       time.Time
	Votes            map[string]VoteSeen
	Inbox            map[string]protocol.Op // inbox keys present, by participant
	Gaps             bool                   // part of its history was compacted away before the observer saw it
	Deleted          bool
	// Anomalies are contradictions seen in its history (an outcome that
	// changed, a transition the state machine forbids).
	Anomalies []string
	// RegisteredAtDecision says, for a coordinator abort, whether each
	// participant that had not voted was registered just before the
	// decision; absent when the observer could not tell.
	RegisteredAtDecision map[string]bool
}

// StateSeen is one state of a record and the revision that wrote it.
type StateSeen struct {
	State protocol.State
	Rev   int64
	At    time.Time
}

// VoteSeen is one vote and the revision that wrote it.
type VoteSeen struct {
	Value string
	Rev   int64
}

// Observer watches every Concord key with a direct etcd client (no proxy),
// from the moment the system starts, and keeps what it saw: the states of
// every transaction with their revisions, votes, inboxes and
// registrations. After a compaction it lists everything again. Fault
// injectors wait on its events to strike at chosen points.
type Observer struct {
	cli  *clientv3.Client
	keys protocol.Keys
	log  *bufio.Writer
	logF *os.File

	cancel context.CancelFunc
	done   chan struct{}

	mu struct {
		sync.Mutex
		txs        map[string]*TxView
		registered map[string]int64 // participant → lease of its registration
		// Coordinator replicas' election keys: key → lease while present,
		// and lease → the revision that deleted its key.
		campaigns   map[string]int64
		campaignEnd map[int64]int64
		// Windows in which no replica campaigned at all: nobody could
		// take over a dead leader's work.
		noCampaignSince time.Time
		noCampaign      Gap
		regKnown        bool // registrations were read since the last gap
		waiters         map[*waiter]struct{}
		rev             int64
		relists         int
		err             error
	}
}

type waiter struct {
	match func(Event, *TxView) bool
	ch    chan Event
}

// StartObserver reads every key once and then watches from there.
func StartObserver(ctx context.Context, cli *clientv3.Client, keys protocol.Keys, logPath string) (*Observer, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	o := &Observer{cli: cli, keys: keys, logF: f, log: bufio.NewWriter(f), done: make(chan struct{})}
	o.mu.txs = make(map[string]*TxView)
	o.mu.registered = make(map[string]int64)
	o.mu.campaigns = make(map[string]int64)
	o.mu.campaignEnd = make(map[int64]int64)
	o.mu.waiters = make(map[*waiter]struct{})
	rev, err := o.relist(ctx)
	if err != nil {
		f.Close()
		return nil, err
	}
	wctx, cancel := context.WithCancel(context.Background())
	o.cancel = cancel
	go o.run(wctx, rev)
	return o, nil
}

// Close stops watching and flushes the event log.
func (o *Observer) Close() {
	o.cancel()
	<-o.done
	o.mu.Lock()
	o.log.Flush()
	o.mu.Unlock()
	o.logF.Close()
}

// Rev is the last revision the observer has seen.
func (o *Observer) Rev() int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.mu.rev
}

// Relists is how many times a compaction made the observer list again.
func (o *Observer) Relists() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.mu.relists
}

// WaitRev waits until the observer has seen revision rev.
func (o *Observer) WaitRev(ctx context.Context, rev int64) error {
	for {
		if o.Rev() >= rev {
			return nil
		}
		// Ask for a progress notification, in case nothing else is written.
		o.cli.RequestProgress(ctx)
		select {
		case <-ctx.Done():
			return fmt.Errorf("observer at revision %d, waiting for %d: %w", o.Rev(), rev, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Txs returns a copy of every transaction's view.
func (o *Observer) Txs() map[string]TxView {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make(map[string]TxView, len(o.mu.txs))
	for id, t := range o.mu.txs {
		out[id] = t.copy()
	}
	return out
}

// Tx returns one transaction's view.
func (o *Observer) Tx(id string) (TxView, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	t := o.mu.txs[id]
	if t == nil {
		return TxView{}, false
	}
	return t.copy(), true
}

// Registered reports whether participant holds a registration now.
func (o *Observer) Registered(participant string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	_, ok := o.mu.registered[participant]
	return ok
}

// Await returns the first event from now on for which match is true. match
// runs with the observer's lock held and sees the transaction's view after
// the event (nil for registrations); it must be quick.
func (o *Observer) Await(ctx context.Context, match func(Event, *TxView) bool) (Event, error) {
	w := &waiter{match: match, ch: make(chan Event, 1)}
	o.mu.Lock()
	o.mu.waiters[w] = struct{}{}
	o.mu.Unlock()
	defer func() {
		o.mu.Lock()
		delete(o.mu.waiters, w)
		o.mu.Unlock()
	}()
	select {
	case ev := <-w.ch:
		return ev, nil
	case <-ctx.Done():
		return Event{}, ctx.Err()
	case <-o.done:
		return Event{}, fmt.Errorf("observer stopped")
	}
}

func (o *Observer) run(ctx context.Context, rev int64) {
	defer close(o.done)
	start, end := o.keys.All()
	for ctx.Err() == nil {
		wch := o.cli.Watch(ctx, start, clientv3.WithRange(end), clientv3.WithRev(rev+1), clientv3.WithPrevKV())
		for resp := range wch {
			if resp.CompactRevision != 0 || resp.Err() != nil {
				break
			}
			// Group by revision: one Txn's writes are decided together.
			for i := 0; i < len(resp.Events); {
				j := i
				for j < len(resp.Events) && resp.Events[j].Kv.ModRevision == resp.Events[i].Kv.ModRevision {
					j++
				}
				o.applyRevision(resp.Events[i:j], resp.Events[i].Kv.ModRevision)
				i = j
			}
			// Progress: the last event, or the header of a progress
			// notification (sent only once the watch has caught up). A
			// header with events is not progress: it is the store's
			// revision, and a catching-up watch may have more to send.
			if n := len(resp.Events); n > 0 {
				rev = max(rev, resp.Events[n-1].Kv.ModRevision)
			} else if resp.IsProgressNotify() {
				rev = max(rev, resp.Header.Revision)
			}
			o.mu.Lock()
			o.mu.rev = max(o.mu.rev, rev)
			o.mu.Unlock()
		}
		if ctx.Err() != nil {
			return
		}
		// Compacted, or the watch broke: list everything again at one
		// revision and resume from there.
		for ctx.Err() == nil {
			lctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			r, err := o.relist(lctx)
			cancel()
			if err == nil {
				rev = r
				break
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

func (o *Observer) applyRevision(evs []*clientv3.Event, rev int64) {
	now := time.Now()
	var out []Event
	o.mu.Lock()
	defer o.mu.Unlock()
	decidedIDs := make(map[string]bool)
	for _, ev := range evs {
		e := o.event(ev.Kv, ev.Type == mvccpb.DELETE, now, false)
		if e.Kind == protocol.KindRecord && !e.Deleted && e.State.Decided() && !e.State.Terminal() {
			decidedIDs[e.ID] = true
		}
		out = append(out, e)
	}
	for i := range out {
		if out[i].Kind == protocol.KindVote && decidedIDs[out[i].ID] {
			out[i].Decided = true
		}
		o.foldLocked(out[i])
	}
	o.mu.rev = max(o.mu.rev, rev)
	for _, e := range out {
		o.notifyLocked(e)
	}
}

// event decodes one key's change.
func (o *Observer) event(kv *mvccpb.KeyValue, deleted bool, at time.Time, relisted bool) Event {
	k := o.keys.Parse(string(kv.Key))
	e := Event{Rev: kv.ModRevision, At: at, Kind: k.Kind, ID: k.ID, Participant: k.Participant, Deleted: deleted, Relisted: relisted}
	if k.Kind == protocol.KindElection {
		e.Key = string(kv.Key)
	}
	if deleted {
		return e
	}
	switch k.Kind {
	case protocol.KindRecord:
		if rec, err := protocol.DecodeRecord(kv.Value); err == nil {
			e.State = rec.State
		}
	case protocol.KindVote:
		e.Vote = string(kv.Value)
	case protocol.KindInbox:
		if m, err := protocol.DecodeMessage(kv.Value); err == nil {
			e.Op = m.Op
		}
	case protocol.KindParticipant, protocol.KindElection:
		e.Lease = kv.Lease
	}
	if k.Kind == protocol.KindRecord {
		if rec, err := protocol.DecodeRecord(kv.Value); err == nil {
			o.recordLocked(rec, kv, at)
		}
	}
	return e
}

// recordLocked keeps the record's fields the event does not carry.
func (o *Observer) recordLocked(rec protocol.Record, kv *mvccpb.KeyValue, at time.Time) {
	t := o.txLocked(rec.ID)
	t.Participants = rec.Participants
	t.Deadline = rec.Deadline
	if t.Created == 0 || t.Created != kv.CreateRevision {
		if t.Created != 0 && t.Created != kv.CreateRevision {
			t.Anomalies = append(t.Anomalies, fmt.Sprintf("record re-created: revision %d, then %d", t.Created, kv.CreateRevision))
		}
		t.Created = kv.CreateRevision
		t.CreatedAt = at
	}
	if rec.State.Decided() {
		t.Cause, t.Reason = rec.Cause, rec.Reason
	}
}

func (o *Observer) txLocked(id string) *TxView {
	t := o.mu.txs[id]
	if t == nil {
		t = &TxView{ID: id, Votes: make(map[string]VoteSeen), Inbox: make(map[string]protocol.Op)}
		o.mu.txs[id] = t
	}
	return t
}

// foldLocked applies one event to the model.
func (o *Observer) foldLocked(e Event) {
	fmt.Fprintf(o.log, "%d %s %s\n", e.Rev, e.At.Format("15:04:05.000000"), e)
	switch e.Kind {
	case protocol.KindElection:
		if e.Deleted {
			if lease, ok := o.mu.campaigns[e.Key]; ok {
				o.mu.campaignEnd[lease] = e.Rev
				delete(o.mu.campaigns, e.Key)
				if len(o.mu.campaigns) == 0 {
					o.mu.noCampaignSince = e.At
				}
			}
		} else {
			if len(o.mu.campaigns) == 0 && !o.mu.noCampaignSince.IsZero() {
				if d := e.At.Sub(o.mu.noCampaignSince); d > o.mu.noCampaign.Longest {
					o.mu.noCampaign = Gap{Longest: d, From: o.mu.noCampaignSince, Rev: e.Rev}
				}
				o.mu.noCampaign.Count++
				o.mu.noCampaignSince = time.Time{}
			}
			o.mu.campaigns[e.Key] = e.Lease
		}
	case protocol.KindParticipant:
		if e.Deleted {
			delete(o.mu.registered, e.Participant)
		} else {
			o.mu.registered[e.Participant] = e.Lease
		}
	case protocol.KindRecord:
		t := o.txLocked(e.ID)
		if e.Deleted {
			t.Deleted = true
			return
		}
		if e.Relisted {
			t.Gaps = true
		}
		var prev protocol.State
		if n := len(t.States); n > 0 {
			prev = t.States[n-1].State
			if prev == e.State {
				return // seen already (a re-list)
			}
		}
		if prev.Valid() && !protocol.CanTransition(prev, e.State) && !(e.Relisted && reachable(prev, e.State)) {
			t.Anomalies = append(t.Anomalies, fmt.Sprintf("state %v at revision %d after %v", e.State, e.Rev, prev))
		}
		if t.Decision.Valid() && e.State.Outcome() != t.Decision.Outcome() {
			t.Anomalies = append(t.Anomalies, fmt.Sprintf("outcome changed: decided %v at revision %d, then %v at revision %d", t.Decision, t.DecidedRev, e.State, e.Rev))
		}
		t.States = append(t.States, StateSeen{State: e.State, Rev: e.Rev, At: e.At})
		if e.State.Decided() && !t.Decision.Valid() {
			t.Decision = e.State
			if e.State.Terminal() {
				t.Decision = map[protocol.State]protocol.State{protocol.StateCommitted: protocol.StateCommitting, protocol.StateAborted: protocol.StateAborting}[e.State]
			}
			t.DecidedRev, t.DecidedAt, t.DecisionRelisted = e.Rev, e.At, e.Relisted
			if !e.Relisted && o.mu.regKnown {
				t.RegisteredAtDecision = make(map[string]bool)
				for _, p := range t.Participants {
					_, ok := o.mu.registered[p]
					t.RegisteredAtDecision[p] = ok
				}
			}
		}
		if e.State.Terminal() && t.TerminalAt.IsZero() {
			t.TerminalAt = e.At
		}
	case protocol.KindVote:
		t := o.txLocked(e.ID)
		if e.Deleted {
			return
		}
		o.checkFencedLocked(t, e, "vote")
		if v, ok := t.Votes[e.Participant]; ok && v.Rev != e.Rev {
			t.Anomalies = append(t.Anomalies, fmt.Sprintf("vote of %s written twice: %q at %d, %q at %d", e.Participant, v.Value, v.Rev, e.Vote, e.Rev))
		}
		t.Votes[e.Participant] = VoteSeen{Value: e.Vote, Rev: e.Rev}
	case protocol.KindInbox:
		t := o.txLocked(e.ID)
		if e.Deleted {
			o.checkFencedLocked(t, e, "acknowledgement")
			delete(t.Inbox, e.Participant)
		} else {
			t.Inbox[e.Participant] = e.Op
		}
	}
}

// checkFencedLocked: a participant's vote or acknowledgement is fenced by
// its registration, so it can land only while the participant is
// registered.
func (o *Observer) checkFencedLocked(t *TxView, e Event, what string) {
	if e.Relisted || !o.mu.regKnown {
		return
	}
	if _, ok := o.mu.registered[e.Participant]; !ok {
		t.Anomalies = append(t.Anomalies, fmt.Sprintf("%s of %s at revision %d while %s was not registered (fencing)", what, e.Participant, e.Rev, e.Participant))
	}
}

// Gap is the longest of Count windows without any coordinator replica in
// the election, from From to the revision Rev that ended it.
type Gap struct {
	Count   int
	Longest time.Duration
	From    time.Time
	Rev     int64
}

// NoCampaign returns the windows in which no coordinator replica
// campaigned.
func (o *Observer) NoCampaign() Gap {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.mu.noCampaign
}

// Campaigners is how many coordinator replicas are in the election now.
func (o *Observer) Campaigners() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.mu.campaigns)
}

// CampaignEnd returns the revision at which the election key of the
// coordinator replica with lease was deleted.
func (o *Observer) CampaignEnd(lease int64) (int64, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	rev, ok := o.mu.campaignEnd[lease]
	return rev, ok
}

func (o *Observer) notifyLocked(e Event) {
	var t *TxView
	if e.ID != "" {
		t = o.mu.txs[e.ID]
	}
	for w := range o.mu.waiters {
		if w.match(e, t) {
			select {
			case w.ch <- e:
			default:
			}
			delete(o.mu.waiters, w)
		}
	}
}

// relist reads every key at one revision and folds what changed.
func (o *Observer) relist(ctx context.Context) (int64, error) {
	start, end := o.keys.All()
	var kvs []*mvccpb.KeyValue
	var rev int64
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(2000)}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := o.cli.Get(ctx, start, opts...)
		if err != nil {
			return 0, err
		}
		if rev == 0 {
			// Later pages are read at the first page's revision. (A
			// response's header is the store's current revision, not the
			// revision read: taking it from a later page would make the
			// listing a mix of revisions and the watch skip events.)
			rev = resp.Header.Revision
		}
		kvs = append(kvs, resp.Kvs...)
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		start = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	now := time.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	o.mu.relists++
	fmt.Fprintf(o.log, "%d relist of %d keys\n", rev, len(kvs))
	// Records first, so that votes and inboxes find their transaction.
	sort.SliceStable(kvs, func(i, j int) bool {
		return o.keys.Parse(string(kvs[i].Key)).Kind == protocol.KindRecord && o.keys.Parse(string(kvs[j].Key)).Kind != protocol.KindRecord
	})
	inboxes := make(map[[2]string]bool)
	regs := make(map[string]bool)
	campaigns := make(map[string]bool)
	for _, kv := range kvs {
		e := o.event(kv, false, now, true)
		switch e.Kind {
		case protocol.KindInbox:
			inboxes[[2]string{e.ID, e.Participant}] = true
		case protocol.KindParticipant:
			regs[e.Participant] = true
		case protocol.KindElection:
			campaigns[e.Key] = true
		}
		o.foldLocked(e)
	}
	// What vanished while the observer was not looking.
	for id, t := range o.mu.txs {
		for p := range t.Inbox {
			if !inboxes[[2]string{id, p}] {
				delete(t.Inbox, p)
			}
		}
	}
	for p := range o.mu.registered {
		if !regs[p] {
			delete(o.mu.registered, p)
		}
	}
	for k, lease := range o.mu.campaigns {
		if !campaigns[k] {
			o.mu.campaignEnd[lease] = rev // no later than this
			delete(o.mu.campaigns, k)
		}
	}
	o.mu.regKnown = true
	o.mu.rev = max(o.mu.rev, rev)
	return rev, nil
}

// reachable reports whether the state machine leads from one state to
// another in any number of steps: what a re-list may show after missing
// some.
func reachable(from, to protocol.State) bool {
	for _, s := range protocol.States() {
		if protocol.CanTransition(from, s) && (s == to || reachable(s, to)) {
			return true
		}
	}
	return false
}

func (t *TxView) copy() TxView {
	c := *t
	c.States = append([]StateSeen(nil), t.States...)
	c.Votes = make(map[string]VoteSeen, len(t.Votes))
	for k, v := range t.Votes {
		c.Votes[k] = v
	}
	c.Inbox = make(map[string]protocol.Op, len(t.Inbox))
	for k, v := range t.Inbox {
		c.Inbox[k] = v
	}
	c.Anomalies = append([]string(nil), t.Anomalies...)
	return c
}

// Terminal reports whether the transaction reached committed or aborted.
func (t TxView) Terminal() bool { return !t.TerminalAt.IsZero() }

func (e Event) String() string {
	kinds := map[protocol.KeyKind]string{protocol.KindRecord: "record", protocol.KindVote: "vote", protocol.KindInbox: "inbox", protocol.KindParticipant: "registration", protocol.KindElection: "election"}
	s := kinds[e.Kind]
	if s == "" {
		s = "other"
	}
	if e.Deleted {
		s += " deleted"
	}
	if e.Relisted {
		s += " (relisted)"
	}
	switch e.Kind {
	case protocol.KindRecord:
		return fmt.Sprintf("%s %s %v", s, e.ID, e.State)
	case protocol.KindVote:
		d := ""
		if e.Decided {
			d = " +decision"
		}
		return fmt.Sprintf("%s %s %s %q%s", s, e.ID, e.Participant, e.Vote, d)
	case protocol.KindInbox:
		return fmt.Sprintf("%s %s %s %s", s, e.ID, e.Participant, e.Op)
	case protocol.KindParticipant:
		return fmt.Sprintf("%s %s lease=%x", s, e.Participant, e.Lease)
	case protocol.KindElection:
		return fmt.Sprintf("%s %s lease=%x", s, e.Key, e.Lease)
	}
	return s
}

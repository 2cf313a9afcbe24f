package conformance

import (
	"context"
	"fmt"
	"strings"

	"github.com/concord-tx/concord/protocol"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// txState is what etcd holds about one transaction, read at one revision.
type txState struct {
	rec    *protocol.Record // nil: no record
	recRev int64            // its ModRevision
	votes  map[string]kv    // participant → vote key
	inbox  map[string]kv    // participant → inbox key, if present
}

type kv struct {
	value          string
	create, mod    int64
	version, lease int64
}

func kvOf(k *clientv3.GetResponse) (kv, bool) {
	if len(k.Kvs) == 0 {
		return kv{}, false
	}
	x := k.Kvs[0]
	return kv{value: string(x.Value), create: x.CreateRevision, mod: x.ModRevision, version: x.Version, lease: x.Lease}, true
}

// read reads transaction id's record, votes and the inbox keys of
// participants, in one Txn.
func (s *suite) read(ctx context.Context, id string, participants ...string) (txState, error) {
	ops := []clientv3.Op{clientv3.OpGet(s.keys.Record(id)), clientv3.OpGet(s.keys.TxPrefix(id), clientv3.WithPrefix())}
	for _, p := range participants {
		ops = append(ops, clientv3.OpGet(s.keys.Inbox(p, id)))
	}
	resp, err := s.cli.Txn(ctx).Then(ops...).Commit()
	if err != nil {
		return txState{}, err
	}
	st := txState{votes: map[string]kv{}, inbox: map[string]kv{}}
	if r, ok := kvOf((*clientv3.GetResponse)(resp.Responses[0].GetResponseRange())); ok {
		rec, err := protocol.DecodeRecord([]byte(r.value))
		if err != nil {
			return txState{}, fmt.Errorf("record %s: %w", id, err)
		}
		st.rec, st.recRev = &rec, r.mod
	}
	for _, x := range resp.Responses[1].GetResponseRange().Kvs {
		if k := s.keys.Parse(string(x.Key)); k.Kind == protocol.KindVote {
			st.votes[k.Participant] = kv{value: string(x.Value), create: x.CreateRevision, mod: x.ModRevision, version: x.Version}
		}
	}
	for i, p := range participants {
		if r, ok := kvOf((*clientv3.GetResponse)(resp.Responses[2+i].GetResponseRange())); ok {
			st.inbox[p] = r
		}
	}
	return st, nil
}

func (st txState) String() string {
	if st.rec == nil {
		return "no record"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "record %s (rev %d", st.rec.State, st.recRev)
	if st.rec.Cause != "" {
		fmt.Fprintf(&b, ", cause %s, reason %q", st.rec.Cause, st.rec.Reason)
	}
	b.WriteString("); votes:")
	if len(st.votes) == 0 {
		b.WriteString(" none")
	}
	for p, v := range st.votes {
		fmt.Fprintf(&b, " %s=%q", p, v.value)
	}
	b.WriteString("; inbox keys:")
	if len(st.inbox) == 0 {
		b.WriteString(" none")
	}
	for p := range st.inbox {
		fmt.Fprintf(&b, " %s", p)
	}
	return b.String()
}

// Checks on a txState, each returning what is wrong or nil.

func (st txState) inState(want protocol.State) error {
	if st.rec == nil || st.rec.State != want {
		return fmt.Errorf("expected the record %s; found %s", want, st)
	}
	return nil
}

func (st txState) finished(want protocol.State, cause protocol.Cause, reason string) error {
	if err := st.inState(want); err != nil {
		return err
	}
	r := st.rec
	switch {
	case r.Decided.IsZero() || r.Finished.IsZero():
		return fmt.Errorf("terminal record without decided and finished times: %s", st)
	case r.Cause != cause || r.Reason != reason:
		return fmt.Errorf("expected cause %q and reason %q; found %s", cause, reason, st)
	case len(st.inbox) > 0:
		return fmt.Errorf("terminal, yet inbox keys remain: %s", st)
	}
	return nil
}

func (st txState) vote(p, want string) error {
	v, ok := st.votes[p]
	switch {
	case want == "" && ok:
		return fmt.Errorf("expected no vote from %s; found %s", p, st)
	case want == "":
		return nil
	case !ok || v.value != want:
		return fmt.Errorf("expected %s's vote %q; found %s", p, want, st)
	case v.version != 1:
		return fmt.Errorf("%s's vote was written %d times, expected once", p, v.version)
	}
	return nil
}

// all returns the first error of errs.
func all(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

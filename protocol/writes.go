package protocol

import (
	"fmt"
	"time"
)

// KeyValue is one write to etcd. The package returns writes as plain pairs
// so that it needs no etcd client; callers wrap them in their own Txn with
// the compares this package's doc prescribes.
//
// Value is the encoding itself, not a copy, and the writes of one call may
// share it (every participant's decision message is the same): treat it as
// read-only.
type KeyValue struct {
	Key   string
	Value []byte
}

// BeginWrites returns the writes of the begin Txn: the record, then one
// prepare message per branch, in branch order.
func (k Keys) BeginWrites(rec Record, branches []Branch) ([]KeyValue, error) {
	if rec.State != StatePreparing {
		return nil, fmt.Errorf("%w: transaction %s begins in %v, expected preparing", ErrInvalidState, rec.ID, rec.State)
	}
	rv, err := EncodeRecord(rec)
	if err != nil {
		return nil, err
	}
	out := make([]KeyValue, 0, len(branches)+1)
	out = append(out, KeyValue{Key: k.Record(rec.ID), Value: rv})
	for _, b := range branches {
		mv, err := EncodeMessage(Message{Op: OpPrepare, Record: rec, Payload: b.Payload})
		if err != nil {
			return nil, err
		}
		out = append(out, KeyValue{Key: k.Inbox(b.Participant, rec.ID), Value: mv})
	}
	size := 0
	for _, kv := range out {
		size += len(kv.Key) + len(kv.Value)
	}
	if size > MaxBeginBytes {
		return nil, fmt.Errorf("%w: transaction %s: its begin writes %d bytes (the record and %d prepare messages, each repeating the record, payloads base64-encoded), expected at most %d: use fewer branches or smaller payloads", ErrPayloadTooLarge, rec.ID, size, len(branches), MaxBeginBytes)
	}
	return out, nil
}

// DecisionWrites returns the writes of a decision on the undecided record
// rec, begun at revision begun (R): the record moved to state to
// (committing or aborting), then every participant's inbox rewritten with
// the decision. It also returns the decided record.
func (k Keys) DecisionWrites(rec Record, begun int64, to State, at time.Time, cause Cause, reason string) (Record, []KeyValue, error) {
	if to != StateCommitting && to != StateAborting {
		return Record{}, nil, fmt.Errorf("%w: transaction %s: decision %v, expected committing or aborting", ErrInvalidState, rec.ID, to)
	}
	decided, err := rec.Transition(to, at, cause, reason)
	if err != nil {
		return Record{}, nil, err
	}
	rv, err := EncodeRecord(decided)
	if err != nil {
		return Record{}, nil, err
	}
	mv, err := EncodeMessage(Message{Op: DecisionOp(to), Record: decided, Begun: begun})
	if err != nil {
		return Record{}, nil, err
	}
	out := make([]KeyValue, 0, len(decided.Participants)+1)
	out = append(out, KeyValue{Key: k.Record(rec.ID), Value: rv})
	for _, p := range decided.Participants {
		out = append(out, KeyValue{Key: k.Inbox(p, rec.ID), Value: mv})
	}
	return decided, out, nil
}

// FinishWrite returns the write that makes the decided record rec terminal.
func (k Keys) FinishWrite(rec Record, at time.Time) (Record, KeyValue, error) {
	done, err := rec.Transition(rec.State.Outcome(), at, rec.Cause, rec.Reason)
	if err != nil {
		return Record{}, KeyValue{}, err
	}
	v, err := EncodeRecord(done)
	if err != nil {
		return Record{}, KeyValue{}, err
	}
	return done, KeyValue{Key: k.Record(rec.ID), Value: v}, nil
}

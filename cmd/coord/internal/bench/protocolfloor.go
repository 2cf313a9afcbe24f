package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/concord-tx/concord/protocol"
	"github.com/google/uuid"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// protocolShape makes a bare path write what the protocol's commit path
// writes, with the values Concord writes: the begin Txn puts the record
// and a prepare message in each inbox; each vote is a participant's vote
// Txn — fenced by its registration, guarded by the record's revision and
// the vote's absence, and carrying the commit decision (the decided
// record and a commit message in every inbox) for the last yes voter to
// apply; the initiator watches the record for its decision. It is the
// protocol's floor: the least any implementation of the design spends
// from the begin to the decision, on the same etcd and machine. What
// comes after the decision (acknowledgements, the terminal record,
// cleanup) is left out, as the path floor leaves it out, so the floor is
// lower than what a whole transaction costs.
//
// Every transaction writes the same values: etcd's work depends on their
// size, not on what they say. Keys are built by hand, as the path floor's.
type protocolShape struct {
	record, prepare   string // the begin's values
	decided, decision string // the decision's: the committing record, a commit message
	terminal          string // the finished record, for the design floor
	base              string // where the keys are
	voters            []*clientv3.Client
	leases            []clientv3.LeaseID // each voter's registration lease
	fin               *finisher          // nil: the commit path alone
}

// startProtocolPath registers each voter under a lease of its own and
// opens the watches of a bare path with the protocol's shape; its close
// revokes the leases. whole: the design's whole transaction (the design
// floor, see finisher), not only its commit path.
func startProtocolPath(ctx context.Context, initiator *clientv3.Client, voters []*clientv3.Client, prefix string, names []string, payload []byte, concurrent, whole bool) (*barePath, error) {
	shape, err := newProtocolShape(names, payload)
	if err != nil {
		return nil, err
	}
	base := prefix + "/protocol/"
	if whole {
		base = prefix + "/design/"
		shape.fin = newFinisher(shape.terminal, len(voters))
	}
	shape.base, shape.voters = base, voters
	for i, cli := range voters {
		// Long enough for any run, as nothing keeps it alive: a lapsed
		// registration would fail every vote's fence. close revokes it.
		lease, err := cli.Grant(ctx, int64((24 * time.Hour).Seconds()))
		if err != nil {
			shape.release()
			return nil, err
		}
		shape.leases = append(shape.leases, lease.ID)
		if _, err := cli.Put(ctx, registration(base, i), "instance", clientv3.WithLease(lease.ID)); err != nil {
			shape.release()
			return nil, err
		}
	}
	p, err := startPath(ctx, initiator, voters, base, "", shape, concurrent)
	if err != nil {
		shape.release()
	}
	return p, err
}

// newProtocolShape encodes a transaction of these branches as Concord's
// client and participants would.
func newProtocolShape(names []string, payload []byte) (*protocolShape, error) {
	branches := make([]protocol.Branch, len(names))
	for i, n := range names {
		branches[i] = protocol.Branch{Participant: n, Payload: payload}
	}
	now := time.Now().UTC()
	rec := protocol.Record{ID: uuid.NewString(), State: protocol.StatePreparing, Participants: names, Created: now, Deadline: now.Add(30 * time.Second), Digest: protocol.Digest(branches)}
	keys := protocol.DefaultKeys()
	begin, err := keys.BeginWrites(rec, branches)
	if err != nil {
		return nil, err
	}
	decided, decision, err := keys.DecisionWrites(rec, 1<<20, protocol.StateCommitting, now, protocol.CauseNone, "")
	if err != nil {
		return nil, err
	}
	_, fin, err := keys.FinishWrite(decided, now)
	if err != nil {
		return nil, err
	}
	return &protocolShape{record: string(begin[0].Value), prepare: string(begin[1].Value), decided: string(decision[0].Value), decision: string(decision[1].Value), terminal: string(fin.Value)}, nil
}

func registration(base string, i int) string { return fmt.Sprintf("%sregistration/%d", base, i) }

// fence is voter i's fencing compare: its registration is its own.
func (s *protocolShape) fence(i int) clientv3.Cmp {
	return clientv3.Compare(clientv3.LeaseValue(registration(s.base, i)), "=", s.leases[i])
}

// vote is the participant's vote Txn, yes, with the decision for the last
// voter. With a finisher, acknowledgements waiting go in the same Txn, as
// a participant's batch sends them: each operation nested under the
// fence.
func (s *protocolShape) vote(ctx context.Context, cli *clientv3.Client, p *barePath, i int, id string, begun int64) error {
	record, vote := p.recordKey(id), p.voteKey(id, i)
	var allYes []clientv3.Cmp
	decide := []clientv3.Op{clientv3.OpPut(vote, protocol.VoteYes), clientv3.OpPut(record, s.decided)}
	for v := range p.voters {
		if v != i {
			allYes = append(allYes, clientv3.Compare(clientv3.Value(p.voteKey(id, v)), "=", protocol.VoteYes))
		}
		decide = append(decide, clientv3.OpPut(p.inboxKey(v, id), s.decision))
	}
	guard := []clientv3.Cmp{
		clientv3.Compare(clientv3.ModRevision(record), "=", begun),
		clientv3.Compare(clientv3.CreateRevision(vote), "=", 0),
	}
	decideOp := clientv3.OpTxn(allYes, decide, []clientv3.Op{clientv3.OpPut(vote, protocol.VoteYes)})
	var acks []pendingAck
	if s.fin != nil {
		acks = s.fin.acks[i].take((maxOps - (p.voters + 4)) / ackOps) // room for the vote's own
	}
	if len(acks) == 0 {
		_, err := cli.Txn(ctx).If(append([]clientv3.Cmp{s.fence(i)}, guard...)...).Then(decideOp).Else(clientv3.OpGet(vote)).Commit()
		return err
	}
	ops := []clientv3.Op{clientv3.OpTxn(guard, []clientv3.Op{decideOp}, []clientv3.Op{clientv3.OpGet(vote)})}
	for _, a := range acks {
		ops = append(ops, s.fin.ack(p, i, a))
	}
	resp, err := cli.Txn(ctx).If(s.fence(i)).Then(ops...).Commit()
	if err == nil && !resp.Succeeded {
		err = fmt.Errorf("voter %d's registration was lost", i)
	}
	return err
}

// release revokes the voters' leases, which deletes their registrations.
func (s *protocolShape) release() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i, lease := range s.leases {
		_, _ = s.voters[i].Revoke(ctx, lease)
	}
}

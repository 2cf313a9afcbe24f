package console

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/concord-tx/concord/protocol"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Bounds on one read of the cluster, so that a deployment with many
// participants costs a bounded number of etcd requests.
const (
	maxParticipantsShown = 100
	maxOpsPerTxn         = 100 // etcd refuses more than 128 by default
)

// Cluster is the overview's panel of replicas and participants, read from
// etcd.
type Cluster struct {
	Read         time.Time     `json:"read"`
	Leader       bool          `json:"leader"` // this replica leads
	Replicas     []ReplicaInfo `json:"replicas"`
	Participants []Member      `json:"participants"`
	Stuck        []Stuck       `json:"stuck"`
	Err          string        `json:"error,omitempty"` // what could not be read
}

// ReplicaInfo is one coordinator replica, in election order: the first
// leads.
type ReplicaInfo struct {
	Lease  string `json:"lease"` // the replica's lease, in hex: its identity in etcd
	Leader bool   `json:"leader"`
	Since  int64  `json:"since"` // the revision it joined the election at
}

// Member is one participant known to etcd: registered, or named by an
// undecided transaction.
type Member struct {
	Name string `json:"name"`
	// Instance is the registered instance; standbys hold no key in etcd
	// (they watch the active one's) and cannot be listed.
	Instance   string        `json:"instance,omitempty"`
	Registered bool          `json:"registered"`
	LeaseLeft  time.Duration `json:"lease_left"`
	Inbox      int64         `json:"inbox"`     // messages waiting
	Undecided  int           `json:"undecided"` // undecided transactions naming it
	// Missing: named by undecided transactions but not registered.
	Missing bool `json:"missing"`
}

// Stuck is a decided transaction its participants have not all applied
// within the stuck threshold.
type Stuck struct {
	ID      string         `json:"id"`
	State   protocol.State `json:"state"`
	Cause   protocol.Cause `json:"cause,omitempty"`
	Decided time.Time      `json:"decided"`
	// Waiting: participants whose message is still in their inbox.
	Waiting []string `json:"waiting"`
}

// clusterView reads the Cluster at most once per refresh interval, however
// many pages ask.
type clusterView struct {
	cli     *clientv3.Client
	keys    protocol.Keys
	leader  func() bool
	timeout time.Duration
	refresh time.Duration
	now     func() time.Time
	// reads counts the reads of etcd, for the cost report.
	reads atomic.Int64

	mu struct {
		sync.Mutex
		last Cluster
	}
}

func newClusterView(cli *clientv3.Client, o options) *clusterView {
	return &clusterView{cli: cli, keys: o.keys, leader: o.leader, timeout: o.requestTimeout, refresh: o.refresh, now: o.now}
}

// get returns the cluster as read within the refresh interval, reading it
// if need be; s names the participants and stuck transactions to look at.
func (c *clusterView) get(ctx context.Context, s Summary) Cluster {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.mu.last.Read.IsZero() && c.now().Sub(c.mu.last.Read) < c.refresh {
		return c.mu.last
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	cl, err := c.read(ctx, s)
	if err != nil {
		// Not kept: the next page or tick reads again.
		cl.Err = err.Error()
		return cl
	}
	c.mu.last = cl
	return cl
}

func (c *clusterView) read(ctx context.Context, s Summary) (Cluster, error) {
	c.reads.Add(1)
	cl := Cluster{Read: c.now(), Leader: c.leader()}
	resp, err := c.cli.Txn(ctx).Then(
		clientv3.OpGet(c.keys.Participants(), clientv3.WithPrefix(), clientv3.WithLimit(maxParticipantsShown)),
		clientv3.OpGet(c.keys.Election(), clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend)),
	).Commit()
	if err != nil {
		return cl, fmt.Errorf("participants and replicas: %w", err)
	}
	members := make(map[string]*Member)
	leases := make(map[string]clientv3.LeaseID)
	for _, kv := range resp.Responses[0].GetResponseRange().Kvs {
		k := c.keys.Parse(string(kv.Key))
		if k.Kind != protocol.KindParticipant {
			continue
		}
		members[k.Participant] = &Member{Name: k.Participant, Instance: string(kv.Value), Registered: true}
		leases[k.Participant] = clientv3.LeaseID(kv.Lease)
	}
	for i, kv := range resp.Responses[1].GetResponseRange().Kvs {
		cl.Replicas = append(cl.Replicas, ReplicaInfo{Lease: string(kv.Value), Leader: i == 0, Since: kv.CreateRevision})
	}
	for name, n := range s.named {
		m := members[name]
		if m == nil {
			if len(members) >= maxParticipantsShown {
				continue
			}
			m = &Member{Name: name, Missing: true}
			members[name] = m
		}
		m.Undecided = n
	}
	// Inbox counts, then each stuck transaction's remaining messages, in
	// Txns of at most maxOpsPerTxn count-only reads.
	type read struct {
		op    clientv3.Op
		apply func(n int64)
	}
	var reads []read
	for _, m := range members {
		reads = append(reads, read{clientv3.OpGet(c.keys.InboxPrefix(m.Name), clientv3.WithPrefix(), clientv3.WithCountOnly()), func(n int64) { m.Inbox = n }})
	}
	cl.Stuck = make([]Stuck, len(s.stuck))
	for i, r := range s.stuck {
		st := &cl.Stuck[i]
		*st = Stuck{ID: r.ID, State: r.State, Cause: r.Cause, Decided: r.Decided}
		for _, p := range r.Participants {
			reads = append(reads, read{clientv3.OpGet(c.keys.Inbox(p, r.ID), clientv3.WithCountOnly()), func(n int64) {
				if n > 0 {
					st.Waiting = append(st.Waiting, p)
				}
			}})
		}
	}
	for batch := range slices.Chunk(reads, maxOpsPerTxn) {
		ops := make([]clientv3.Op, len(batch))
		for i, r := range batch {
			ops[i] = r.op
		}
		resp, err := c.cli.Txn(ctx).Then(ops...).Commit()
		if err != nil {
			return cl, fmt.Errorf("inboxes: %w", err)
		}
		for i, r := range batch {
			r.apply(resp.Responses[i].GetResponseRange().Count)
		}
	}
	for name, id := range leases {
		ttl, err := c.cli.TimeToLive(ctx, id)
		if err != nil {
			return cl, fmt.Errorf("lease of participant %s: %w", name, err)
		}
		members[name].LeaseLeft = time.Duration(ttl.TTL) * time.Second
	}
	for _, m := range members {
		cl.Participants = append(cl.Participants, *m)
	}
	// Missing participants first: they are what an operator must act on.
	slices.SortFunc(cl.Participants, func(a, b Member) int {
		if a.Missing != b.Missing {
			if a.Missing {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	return cl, nil
}

package integration

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/concord-tx/concord/coordinator"
	"github.com/concord-tx/concord/internal/testkit/etcdtest"
	"github.com/concord-tx/concord/internal/testkit/leaktest"
	"github.com/concord-tx/concord/internal/testkit/poll"
	"github.com/concord-tx/concord/participant"
	"github.com/concord-tx/concord/protocol"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

const ttl = 2 * time.Second // participant and replica leases in tests

// env is one etcd with the pieces of a deployment around it.
type env struct {
	t   *testing.T
	srv *etcdtest.Server
	cli *clientv3.Client
	c   *coordinator.Client
	ctx context.Context
	// silent, if set, is listed before the real member in every client's
	// endpoints: a member that never answers (etcdtest.SilentMember).
	silent string
}

func newEnv(t *testing.T) *env { return newEnvWith(t, "") }

// newEnvWith is newEnv whose clients also list silent among their
// endpoints; Client options follow.
func newEnvWith(t *testing.T, silent string, opts ...coordinator.ClientOption) *env {
	t.Helper()
	return newEnvOn(t, etcdtest.Start(t), silent, opts...)
}

// newEnvOn is newEnvWith on an etcd server of the test's own.
func newEnvOn(t *testing.T, srv *etcdtest.Server, silent string, opts ...coordinator.ClientOption) *env {
	t.Helper()
	e := &env{t: t, srv: srv, silent: silent}
	e.cli = e.client()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	opts = append([]coordinator.ClientOption{coordinator.WithLogger(zaptest.NewLogger(t).Named("client"))}, opts...)
	c, err := coordinator.NewClient(ctx, e.cli, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	e.c, e.ctx = c, ctx
	return e
}

// client returns a new etcd client, closed at cleanup.
func (e *env) client() *clientv3.Client {
	e.t.Helper()
	if e.silent == "" {
		return e.srv.Client(e.t)
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{e.silent, e.srv.Endpoints[0]},
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { cli.Close() })
	return cli
}

// replica starts a coordinator replica on its own etcd client, so that
// closing that client simulates the replica's process dying (its lease
// then expires instead of being revoked).
func (e *env) replica(name string, opts ...coordinator.ReplicaOption) (*coordinator.Replica, *clientv3.Client) {
	e.t.Helper()
	cli := e.client()
	opts = append([]coordinator.ReplicaOption{coordinator.WithLeaseTTL(ttl), coordinator.WithRetention(time.Hour),
		coordinator.WithLogger(zaptest.NewLogger(e.t).Named(name))}, opts...)
	r, err := coordinator.NewReplica(cli, opts...)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { r.Close() })
	return r, cli
}

// recorder is a participant's handler that records every call and can be
// told to vote no, block or fail.
type recorder struct {
	name string
	mu   sync.Mutex
	// calls[txid] lists the phases called, in order.
	calls map[string][]string
	// revisions[txid] holds every Tx.Revision the calls were given.
	revisions map[string]map[int64]bool
	// refuse: Prepare fails with this error for these ids ("*": all).
	refuse map[string]error
	// block: Prepare waits for the channel (or its ctx) for these ids.
	block map[string]chan struct{}
	// failCommits: Commit fails this many times before succeeding.
	failCommits int
	// stuck: Commit and Abort fail for these ids until the entry is
	// removed.
	stuck   map[string]bool
	changed chan struct{} // poked on every call
}

func newRecorder(name string) *recorder {
	return &recorder{name: name, calls: map[string][]string{}, revisions: map[string]map[int64]bool{}, refuse: map[string]error{}, block: map[string]chan struct{}{}, stuck: map[string]bool{}, changed: make(chan struct{}, 1)}
}

func (r *recorder) note(tx participant.Tx, phase string) {
	r.mu.Lock()
	r.calls[tx.ID] = append(r.calls[tx.ID], phase)
	if r.revisions[tx.ID] == nil {
		r.revisions[tx.ID] = map[int64]bool{}
	}
	r.revisions[tx.ID][tx.Revision] = true
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *recorder) Prepare(ctx context.Context, tx participant.Tx) error {
	r.mu.Lock()
	err, refused := r.refuse[tx.ID]
	if !refused {
		err, refused = r.refuse["*"]
	}
	ch := r.block[tx.ID]
	if ch == nil {
		ch = r.block["*"]
	}
	r.mu.Unlock()
	r.note(tx, "prepare")
	if ch != nil {
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if refused {
		return err
	}
	return nil
}

func (r *recorder) Commit(ctx context.Context, tx participant.Tx) error {
	r.mu.Lock()
	fail := r.failCommits > 0 || r.stuck[tx.ID]
	if r.failCommits > 0 {
		r.failCommits--
	}
	r.mu.Unlock()
	if fail {
		r.note(tx, "commit-failed")
		return errors.New("disk busy")
	}
	r.note(tx, "commit")
	return nil
}

func (r *recorder) Abort(ctx context.Context, tx participant.Tx) error {
	r.mu.Lock()
	fail := r.stuck[tx.ID]
	r.mu.Unlock()
	if fail {
		r.note(tx, "abort-failed")
		return errors.New("disk busy")
	}
	r.note(tx, "abort")
	return nil
}

func (r *recorder) phases(id string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls[id]...)
}

// revision returns the one Tx.Revision every call for id was given, or 0
// if they were given more than one.
func (r *recorder) revision(id string) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.revisions[id]) != 1 {
		return 0
	}
	for rev := range r.revisions[id] {
		return rev
	}
	return 0
}

func (r *recorder) count(id, phase string) int {
	n := 0
	for _, p := range r.phases(id) {
		if p == phase {
			n++
		}
	}
	return n
}

// participant starts an instance of a participant with handler h on its own
// etcd client and waits until it is active (unless standby is true).
func (e *env) participant(name string, h participant.Handler, standby bool, opts ...participant.Option) (*participant.Participant, *clientv3.Client) {
	e.t.Helper()
	cli := e.client()
	opts = append([]participant.Option{participant.WithLeaseTTL(ttl),
		participant.WithRetryBackoff(10*time.Millisecond, 200*time.Millisecond),
		participant.WithLogger(zaptest.NewLogger(e.t).Named(name))}, opts...)
	p, err := participant.New(cli, name, h, opts...)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { p.Close() })
	if !standby {
		ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
		defer cancel()
		if err := p.WaitActive(ctx); err != nil {
			e.t.Fatalf("participant %s not active: %v", name, err)
		}
	}
	return p, cli
}

// kill simulates a crash: the process's etcd client goes away without
// revoking its lease, which then expires after its TTL.
func kill(cli *clientv3.Client) { cli.Close() }

func branches(names ...string) []protocol.Branch {
	bs := make([]protocol.Branch, len(names))
	for i, n := range names {
		bs[i] = protocol.Branch{Participant: n, Payload: []byte(fmt.Sprintf(`{"to":%q}`, n))}
	}
	return bs
}

// terminal waits until transaction id is terminal and returns it.
func (e *env) terminal(id string, within time.Duration) coordinator.Transaction {
	e.t.Helper()
	var tx coordinator.Transaction
	poll.Until(e.t, within, "transaction "+id+" terminal", func() (bool, string) {
		var err error
		tx, err = e.c.Get(e.ctx, id)
		if err != nil {
			return false, err.Error()
		}
		return tx.State.Terminal(), fmt.Sprintf("%+v", tx)
	})
	return tx
}

// keys returns every key under the prefix with its value.
func (e *env) keys() map[string]string {
	e.t.Helper()
	start, end := protocol.DefaultKeys().All()
	resp, err := e.cli.Get(e.ctx, start, clientv3.WithRange(end))
	if err != nil {
		e.t.Fatal(err)
	}
	out := make(map[string]string, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		out[string(kv.Key)] = string(kv.Value)
	}
	return out
}

// onlyRegistrations is a poll.Until condition: nothing is left under the
// prefix but participants' registrations and the election.
func (e *env) onlyRegistrations() (bool, string) {
	e.t.Helper()
	var left []string
	for k := range e.keys() {
		if kind := protocol.DefaultKeys().Parse(k).Kind; kind != protocol.KindParticipant && kind != protocol.KindElection {
			left = append(left, k)
		}
	}
	return len(left) == 0, fmt.Sprintf("%d keys left: %v", len(left), left)
}

// inboxCount counts the inbox keys left, for any participant.
func (e *env) inboxCount() int {
	resp, err := e.cli.Get(e.ctx, protocol.DefaultKeys().Inboxes(), clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		e.t.Fatal(err)
	}
	return int(resp.Count)
}

func equal(a []string, b ...string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// writeKept writes n committed records, each with two yes votes, as a
// retention window would hold them.
func writeKept(t *testing.T, cli *clientv3.Client, keys protocol.Keys, n int, finished time.Time) {
	t.Helper()
	var puts []clientv3.Op
	for i := range n {
		id := fmt.Sprintf("done-%07d", i)
		rec := protocol.Record{ID: id, State: protocol.StateCommitted, Participants: []string{"a", "b"},
			Created: finished, Deadline: finished.Add(time.Minute), Decided: finished, Finished: finished, Digest: protocol.Digest(branches("a", "b"))}
		v, err := protocol.EncodeRecord(rec)
		if err != nil {
			t.Fatal(err)
		}
		puts = append(puts, clientv3.OpPut(keys.Record(id), string(v)), clientv3.OpPut(keys.Vote(id, "a"), "yes"), clientv3.OpPut(keys.Vote(id, "b"), "yes"))
		if len(puts) >= 120 || i == n-1 {
			if _, err := cli.Txn(t.Context()).Then(puts...).Commit(); err != nil {
				t.Fatal(err)
			}
			puts = nil
		}
	}
}

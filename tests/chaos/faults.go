package chaos

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/concord-tx/concord/protocol"
)

// Fault is a kind of fault the nemesis injects.
type Fault string

const (
	// Banks.
	FaultKillBank       Fault = "kill-bank"        // kill -9 at a random moment, restart
	FaultKillBankVoted  Fault = "kill-bank-voted"  // kill -9 between its yes vote and the decision
	FaultKillBankCommit Fault = "kill-bank-commit" // kill -9 after the commit decision, before its ack
	FaultPauseBank      Fault = "pause-bank"       // SIGSTOP a prepared bank past its lease, SIGCONT
	// Coordinators.
	FaultKillCoord  Fault = "kill-coord"  // kill -9 a replica mid-load, restart
	FaultPauseCoord Fault = "pause-coord" // SIGSTOP a replica past its lease, SIGCONT
	// etcd.
	FaultKillLeader   Fault = "kill-etcd-leader"
	FaultKillFollower Fault = "kill-etcd-follower"
	FaultPauseEtcd    Fault = "pause-etcd" // SIGSTOP the leader or a follower (even odds), SIGCONT
	FaultCompaction   Fault = "compaction" // continuous: compact every few hundred ms
	// Links between etcd members (etcdpartition.go).
	FaultPartitionLeader   Fault = "partition-etcd-leader"   // cut the leader off from its peers, both ways
	FaultPartitionFollower Fault = "partition-etcd-follower" // cut a follower off from its peers, both ways
	FaultPartitionOneWay   Fault = "partition-etcd-oneway"   // one direction only, the leader or a follower
	// Links between a service and etcd.
	FaultPartitionBank  Fault = "partition-bank"
	FaultPartitionCoord Fault = "partition-coord"
	FaultSlowLinks      Fault = "slow-links"     // latency, jitter and connection drops
	FaultLostResponses  Fault = "lost-responses" // continuous: answers to applied Txns cut
)

// continuous faults run for the whole fault phase; the others are injected
// one at a time, each healed before the next.
var continuous = map[Fault]bool{FaultCompaction: true, FaultLostResponses: true}

// Nemesis injects faults into a System, from a seeded random source, and
// counts them by kind. Every fault it injects it also heals.
type Nemesis struct {
	// LostResponseRate is the share of answers to applied mutations that
	// lost-responses cuts (default 5%).
	LostResponseRate float64

	sys    *System
	faults []Fault
	rng    *rand.Rand
	log    *os.File
	start  time.Time

	mu       sync.Mutex
	attempts map[string]int // discrete faults the nemesis set out to inject
	counts   map[string]int
	effects  map[string]int // what the faults were seen to do
	failures []string       // faults that did not do what they say
}

// NewNemesis injects the given faults; its timeline goes to logPath.
func NewNemesis(sys *System, faults []Fault, seed uint64, logPath string) (*Nemesis, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	return &Nemesis{sys: sys, faults: faults, rng: rand.New(rand.NewPCG(seed, 0xfa017)), log: f, start: time.Now(), attempts: map[string]int{}, counts: map[string]int{}, effects: map[string]int{}}, nil
}

// Counts returns the faults injected, by kind.
func (n *Nemesis) Counts() map[string]int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return maps.Clone(n.counts)
}

// Effects returns what the faults were seen to do, by effect.
func (n *Nemesis) Effects() map[string]int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return maps.Clone(n.effects)
}

// Failures lists the faults that did not do what they say: an etcd
// partition that leaked or showed no effect, a member that did not rejoin.
func (n *Nemesis) Failures() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.failures)
}

func (n *Nemesis) effect(name string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.effects[name]++
}

func (n *Nemesis) failed(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	n.note("FAILED: %s", msg)
	n.mu.Lock()
	defer n.mu.Unlock()
	n.failures = append(n.failures, msg)
}

// Close closes the timeline.
func (n *Nemesis) Close() { n.log.Close() }

func (n *Nemesis) count(kind string, format string, args ...any) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.counts[kind]++
	fmt.Fprintf(n.log, "%s +%7.3fs %-20s %s\n", time.Now().Format("15:04:05.000"), time.Since(n.start).Seconds(), kind, fmt.Sprintf(format, args...))
}

func (n *Nemesis) note(format string, args ...any) {
	n.mu.Lock()
	defer n.mu.Unlock()
	fmt.Fprintf(n.log, "%s +%7.3fs %s\n", time.Now().Format("15:04:05.000"), time.Since(n.start).Seconds(), fmt.Sprintf(format, args...))
}

// between draws a duration in [lo, hi).
func (n *Nemesis) between(lo, hi time.Duration) time.Duration {
	n.mu.Lock()
	defer n.mu.Unlock()
	return lo + time.Duration(n.rng.Int64N(int64(hi-lo)))
}

func (n *Nemesis) intn(k int) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.rng.IntN(k)
}

// Run injects faults until ctx ends, then heals everything it broke.
func (n *Nemesis) Run(ctx context.Context) {
	var wg sync.WaitGroup
	var discrete []Fault
	for _, f := range n.faults {
		if continuous[f] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				n.continuous(ctx, f)
			}()
		} else {
			discrete = append(discrete, f)
		}
	}
	// In rounds, each discrete fault once per round in a random order, so
	// that a long run tries every one of them.
	for len(discrete) > 0 && ctx.Err() == nil {
		round := slices.Clone(discrete)
		n.mu.Lock()
		n.rng.Shuffle(len(round), func(i, j int) { round[i], round[j] = round[j], round[i] })
		n.mu.Unlock()
		for _, f := range round {
			if ctx.Err() != nil {
				break
			}
			n.inject(ctx, f)
			if ctx.Err() == nil {
				// Cut short by the phase's end, an attempt that waited for
				// its moment says nothing.
				n.mu.Lock()
				n.attempts[string(f)]++
				n.mu.Unlock()
			}
			sleep(ctx, n.between(300*time.Millisecond, 1200*time.Millisecond))
		}
	}
	wg.Wait()
}

// minAttempts is how many times a discrete fault must have been tried
// before never having been injected counts as a failure of the suite: a
// fault that waits for a moment (a yes vote, a commit decision) may miss it
// once or twice, but not every time in a long run.
const minAttempts = 3

// NeverInjected lists the discrete faults tried to the end at least
// minAttempts times and injected none of them: the run did not test what it says it did.
func (n *Nemesis) NeverInjected() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return neverInjected(n.attempts, n.counts, minAttempts)
}

func neverInjected(attempts, counts map[string]int, min int) []string {
	var out []string
	for _, f := range slices.Sorted(maps.Keys(attempts)) {
		if attempts[f] >= min && counts[f] == 0 {
			out = append(out, fmt.Sprintf("%s: tried %d times, never injected (see faults.log)", f, attempts[f]))
		}
	}
	return out
}

// sleep waits d or until ctx ends: a fault's duration, not a wait for a
// condition.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// hold waits d even if ctx ends early, but no longer than d: a fault that
// has begun runs its course, so that each is what it says.
func hold(d time.Duration) { time.Sleep(d) }

func (n *Nemesis) continuous(ctx context.Context, f Fault) {
	switch f {
	case FaultCompaction:
		for ctx.Err() == nil {
			rev, err := n.sys.Cluster.Compact(context.WithoutCancel(ctx))
			if err == nil {
				n.count(string(f), "compacted to revision %d", rev)
			}
			sleep(ctx, n.between(200*time.Millisecond, 600*time.Millisecond))
		}
	case FaultLostResponses:
		proxies := n.sys.Proxies()
		before := int64(0)
		rate := n.LostResponseRate
		if rate == 0 {
			rate = 0.05
		}
		for _, p := range proxies {
			before += p.Stats().LostResponses
			p.Update(func(l *LinkFaults) { l.LoseResponseRate = rate })
		}
		n.note("lost-responses on: %.0f%% of answers to applied Txn/Put/DeleteRange are cut, on every link", rate*100)
		<-ctx.Done()
		var lost int64
		for _, p := range proxies {
			p.Update(func(l *LinkFaults) { l.LoseResponseRate = 0 })
			lost += p.Stats().LostResponses
		}
		lost -= before
		n.mu.Lock()
		n.counts[string(f)] += int(lost)
		n.mu.Unlock()
		n.note("lost-responses off: %d answers were cut", lost)
	}
}

func (n *Nemesis) pick(svcs []*Service) *Service {
	var up []*Service
	for _, s := range svcs {
		if s.Running() && !s.Paused() {
			up = append(up, s)
		}
	}
	if len(up) == 0 {
		return nil
	}
	return up[n.intn(len(up))]
}

// pickCoord picks the replica that leads recovery two times out of three,
// another one otherwise, and says which it picked.
func (n *Nemesis) pickCoord(ctx context.Context) (*Service, string) {
	var leader *Service
	var others []*Service
	for _, c := range n.sys.Coords {
		if !c.Running() || c.Paused() {
			continue
		}
		hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		h, err := coordHealth(hctx, c, readClient)
		cancel()
		if err == nil && h.Leader && leader == nil {
			leader = c
		} else {
			others = append(others, c)
		}
	}
	if leader != nil && (len(others) == 0 || n.intn(3) < 2) {
		return leader, "the leader"
	}
	if len(others) == 0 {
		return nil, ""
	}
	return others[n.intn(len(others))], "not the leader"
}

// targets are the banks the bank faults may hit: those of
// Config.FaultBanks, or every bank.
func (n *Nemesis) targets() []*Service {
	if len(n.sys.Cfg.FaultBanks) == 0 {
		return n.sys.Banks
	}
	var out []*Service
	for _, b := range n.sys.Banks {
		if slices.Contains(n.sys.Cfg.FaultBanks, b.Name) {
			out = append(out, b)
		}
	}
	return out
}

// bank returns the target bank of that name, or nil.
func (n *Nemesis) bank(name string) *Service {
	for _, b := range n.targets() {
		if b.Name == name {
			return b
		}
	}
	return nil
}

// inject runs one discrete fault to its end, healing what it broke.
func (n *Nemesis) inject(ctx context.Context, f Fault) {
	ttl := n.sys.Cfg.LeaseTTL
	switch f {
	case FaultKillBank:
		if b := n.pick(n.targets()); b != nil {
			n.killRestart(f, b, n.between(0, 1500*time.Millisecond), "at a random moment")
		}
	case FaultKillBankVoted:
		// A yes vote that did not decide, on a transaction still undecided.
		ev, err := n.await(ctx, func(e Event, t *TxView) bool {
			return e.Kind == protocol.KindVote && e.Vote == protocol.VoteYes && !e.Decided && !e.Relisted &&
				t != nil && !t.Decision.Valid() && n.bank(e.Participant) != nil && n.bank(e.Participant).Running()
		})
		if err != nil {
			n.note("%s: no undecided yes vote within the wait", f)
			return
		}
		b := n.bank(ev.Participant)
		b.Kill()
		decided := "still undecided"
		if t, ok := n.sys.Observer.Tx(ev.ID); ok && t.Decision.Valid() {
			decided = fmt.Sprintf("already %v at revision %d", t.Decision, t.DecidedRev)
		}
		n.restartAfter(f, b, n.between(200*time.Millisecond, 1500*time.Millisecond),
			"after its yes vote on %s at revision %d (%s when killed)", ev.ID, ev.Rev, decided)
	case FaultKillBankCommit:
		// Hold one bank's commits in its Commit handler, wait for a commit
		// decision it takes part in, and kill it there.
		b := n.pick(n.targets())
		if b == nil {
			return
		}
		if err := b.CloseGate(); err != nil {
			n.note("%s: %v", f, err)
			return
		}
		defer b.OpenGate()
		ev, err := n.await(ctx, func(e Event, t *TxView) bool {
			return e.Kind == protocol.KindRecord && e.State == protocol.StateCommitting && !e.Relisted && t != nil && slices.Contains(t.Participants, b.Name)
		})
		if err != nil {
			n.note("%s: no commit decision for %s within the wait", f, b.Name)
			return
		}
		hold(n.between(20*time.Millisecond, 300*time.Millisecond)) // the handler is waiting at the gate
		b.Kill()
		acked := "its ack not yet written"
		if t, ok := n.sys.Observer.Tx(ev.ID); ok {
			if _, pending := t.Inbox[b.Name]; !pending {
				acked = "but it had acknowledged already"
			}
		}
		b.OpenGate()
		n.restartAfter(f, b, n.between(200*time.Millisecond, 1500*time.Millisecond),
			"inside Commit of %s (decided at revision %d), %s", ev.ID, ev.Rev, acked)
	case FaultPauseBank:
		ev, err := n.await(ctx, func(e Event, t *TxView) bool {
			return e.Kind == protocol.KindVote && e.Vote == protocol.VoteYes && !e.Decided && !e.Relisted &&
				t != nil && !t.Decision.Valid() && n.bank(e.Participant) != nil && n.bank(e.Participant).Running() && !n.bank(e.Participant).Paused()
		})
		if err != nil {
			n.note("%s: no prepared bank within the wait", f)
			return
		}
		b := n.bank(ev.Participant)
		n.pause(f, b.Process, ttl+n.between(500*time.Millisecond, 2*time.Second), fmt.Sprintf("prepared on %s (yes at revision %d)", ev.ID, ev.Rev))
	case FaultKillCoord:
		if c, role := n.pickCoord(ctx); c != nil {
			n.killRestart(f, c, n.between(500*time.Millisecond, 3*time.Second), "mid-load, "+role)
		}
	case FaultPauseCoord:
		if c, role := n.pickCoord(ctx); c != nil {
			n.pause(f, c.Process, ttl+n.between(500*time.Millisecond, 2*time.Second), "mid-load, "+role)
		}
	case FaultKillLeader, FaultKillFollower:
		m, _ := n.member(ctx, f, f == FaultKillLeader)
		if m == nil {
			return
		}
		down := n.between(time.Second, 4*time.Second)
		m.Kill()
		n.count(string(f), "%s killed, restarting in %v", m.Name, down.Round(time.Millisecond))
		hold(down)
		if err := m.Start(); err != nil {
			n.note("%s: restart failed: %v", m.Name, err)
		}
	case FaultPauseEtcd:
		// A frozen member keeps its ports: the kernel takes connections
		// and requests, and nothing answers them. Its peers elect another
		// leader if it led; clients must leave it on their own.
		m, role := n.member(ctx, f, n.intn(2) == 0)
		if m == nil {
			return
		}
		n.pause(f, m.Process, n.between(time.Second, ttl+2*time.Second), role)
	case FaultPartitionLeader, FaultPartitionFollower, FaultPartitionOneWay:
		n.partitionMember(ctx, f)
	case FaultPartitionBank, FaultPartitionCoord:
		svcs := n.sys.Banks
		if f == FaultPartitionCoord {
			svcs = n.sys.Coords
		}
		s := n.pick(svcs)
		if s == nil {
			return
		}
		d := n.between(time.Second, ttl+2*time.Second)
		s.SetLinks(LinkFaults{Partition: true})
		n.count(string(f), "%s cut off from every etcd member for %v", s.Name, d.Round(time.Millisecond))
		hold(d)
		s.SetLinks(LinkFaults{})
		n.note("%s healed", s.Name)
	case FaultSlowLinks:
		s := n.pick(n.sys.Services())
		if s == nil {
			return
		}
		lf := LinkFaults{Latency: n.between(20*time.Millisecond, 200*time.Millisecond), Jitter: 50 * time.Millisecond, DropRate: 0.003}
		d := n.between(2*time.Second, 5*time.Second)
		s.SetLinks(lf)
		n.count(string(f), "%s: latency %v+%v jitter, %.1f%% of frames reset the connection, for %v", s.Name, lf.Latency.Round(time.Millisecond), lf.Jitter, lf.DropRate*100, d.Round(time.Millisecond))
		hold(d)
		s.SetLinks(LinkFaults{})
		n.note("%s healed", s.Name)
	}
}

// member waits for a healthy cluster and returns its leader, or one of
// its followers at random; nil (and a note) if there is none within 10s.
func (n *Nemesis) member(ctx context.Context, f Fault, leader bool) (*Member, string) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := n.sys.Cluster.WaitHealthy(cctx); err != nil {
		n.note("%s: cluster not healthy, skipped: %v", f, err)
		return nil, ""
	}
	l, followers, err := n.sys.Cluster.Leader(cctx)
	if err != nil || len(followers) == 0 {
		n.note("%s: no leader found: %v", f, err)
		return nil, ""
	}
	if leader {
		return l, "the leader"
	}
	return followers[n.intn(len(followers))], "a follower"
}

// await waits a little for an event matching match.
func (n *Nemesis) await(ctx context.Context, match func(Event, *TxView) bool) (Event, error) {
	actx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	return n.sys.Observer.Await(actx, match)
}

func (n *Nemesis) killRestart(f Fault, s *Service, down time.Duration, why string) {
	s.Kill()
	n.restartAfter(f, s, down, "%s", why)
}

func (n *Nemesis) restartAfter(f Fault, s *Service, down time.Duration, format string, args ...any) {
	n.count(string(f), "%s killed %s; restart in %v", s.Name, fmt.Sprintf(format, args...), down.Round(time.Millisecond))
	hold(down)
	if err := s.Start(); err != nil {
		n.note("%s: restart failed: %v", s.Name, err)
	}
}

func (n *Nemesis) pause(f Fault, s *Process, d time.Duration, why string) {
	if err := s.Pause(); err != nil {
		n.note("%s: %v", f, err)
		return
	}
	n.count(string(f), "%s stopped (%s) for %v, lease TTL %v", s.Name, why, d.Round(time.Millisecond), n.sys.Cfg.LeaseTTL)
	hold(d)
	if err := s.Resume(); err != nil {
		n.note("%s: %v", f, err)
	}
	n.note("%s resumed", s.Name)
}

// HealAll undoes anything still broken: every link clean, every process
// running and resumed.
func (n *Nemesis) HealAll() {
	for _, p := range n.sys.Proxies() {
		p.Set(LinkFaults{})
	}
	n.sys.Cluster.HealPeers()
	for _, m := range n.sys.Cluster.Members {
		if m.Paused() {
			m.Resume()
		}
		if !m.Running() {
			m.Start()
		}
	}
	for _, s := range n.sys.Services() {
		if s.Paused() {
			s.Resume()
		}
		if !s.Running() {
			s.Start()
		}
	}
	ps := n.sys.Cluster.PeerStats()
	n.note("healed everything (peer proxies: %d connections accepted, %d of them with their dialer unnamed, %d times a direction was held)",
		ps.Conns, ps.Unnamed, ps.HeldByPartition)
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

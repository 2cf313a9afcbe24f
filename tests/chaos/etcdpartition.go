package chaos

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// peerProbeKey is written by the partition faults, through the members on
// either side of a cut, to see which side can commit. It is outside
// Concord's prefix: nothing else reads it.
const peerProbeKey = "chaos-peer-probe"

// Effects of the etcd partition faults, counted by the nemesis.
const (
	EffectNewLeader     = "new-leader"      // the others elected a leader other than the cut leader
	EffectFellBehind    = "fell-behind"     // the cut member stayed below what the others committed
	EffectWriteFailed   = "write-failed"    // a write through the cut member failed while cut
	EffectNoLeaderWatch = "no-leader-watch" // a WithRequireLeader watch on it ended with "no leader"
	EffectRejoined      = "rejoined"        // after the heal: same leader, caught up, writable
)

// memberState is what one member says of itself.
type memberState struct {
	id, leader uint64
	rev        int64
	err        error
}

// states asks every member for its status through its own client.
func (c *Cluster) states(ctx context.Context) map[*Member]memberState {
	out := make(map[*Member]memberState, len(c.Members))
	for _, m := range c.Members {
		cli, err := c.MemberClient(m)
		if err != nil {
			out[m] = memberState{err: err}
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		st, err := pb.NewMaintenanceClient(cli.ActiveConnection()).Status(sctx, &pb.StatusRequest{})
		cancel()
		if err != nil {
			out[m] = memberState{err: err}
			continue
		}
		out[m] = memberState{id: st.Header.MemberId, leader: st.Leader, rev: st.Header.Revision}
	}
	return out
}

// agreedLeader is the leader every member of ms names, 0 if they do not
// all name the same one.
func agreedLeader(states map[*Member]memberState, ms []*Member) uint64 {
	var l uint64
	for i, m := range ms {
		st := states[m]
		if st.err != nil || st.leader == 0 || (i > 0 && st.leader != l) {
			return 0
		}
		l = st.leader
	}
	return l
}

// partitionMember cuts one member off from its peers (both ways, or one
// way for partition-etcd-oneway), for a random time and at least until the
// cut showed: a write through the member fails, the others commit without
// it while it stays behind (unless only its own bytes are held: it may
// still hear them), and the others elect a new leader if it led. Then it
// heals and waits for the member to rejoin. A cut with no effect within
// 15s, one through which the member learned what the others committed or
// took a write, and a member that does not rejoin within 20s of the heal
// are failures of the fault itself, which the faults check reports.
func (n *Nemesis) partitionMember(ctx context.Context, f Fault) {
	c := n.sys.Cluster
	bg := context.WithoutCancel(ctx)
	wctx, cancel := context.WithTimeout(bg, 10*time.Second)
	err := c.WaitHealthy(wctx)
	var leader *Member
	var followers []*Member
	if err == nil {
		leader, followers, err = c.Leader(wctx)
	}
	cancel()
	if err != nil || len(followers) != len(c.Members)-1 {
		n.note("%s: cluster not healthy, skipped: %v", f, err)
		return
	}
	m, role, cut := leader, "the leader", CutBoth
	if f == FaultPartitionFollower || (f == FaultPartitionOneWay && n.intn(2) == 0) {
		m, role = followers[n.intn(len(followers))], "a follower"
	}
	if f == FaultPartitionOneWay {
		cut = []PeerCut{CutOut, CutIn}[n.intn(2)]
	}
	var rest []*Member
	for _, x := range c.Members {
		if x != m {
			rest = append(rest, x)
		}
	}
	before := c.states(bg)
	if before[m].err != nil {
		n.note("%s: %s does not answer, skipped: %v", f, m.Name, before[m].err)
		return
	}
	mid, wasLeader := before[m].id, m == leader
	names := map[uint64]string{}
	for x, st := range before {
		if st.err == nil {
			names[st.id] = x.Name
		}
	}
	mcli, err := c.MemberClient(m)
	if err != nil {
		n.note("%s: %v", f, err)
		return
	}
	least := n.between(time.Second, 6*time.Second)

	c.CutPeers(m, cut)
	cutAt := time.Now()
	n.count(string(f), "%s (%s, revision %d) cut off from its peers, %v, for at least %v", m.Name, role, before[m].rev, cut, least.Round(time.Millisecond))

	pctx, stop := context.WithCancel(bg)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var (
		probeRev    int64 // highest revision the others committed since the cut
		writeFailed bool
		noLeaderAt  time.Duration
		leaks       []string
	)
	wg.Add(3)
	go func() { // the others commit without m
		defer wg.Done()
		for i := 0; pctx.Err() == nil; i++ {
			x := rest[i%len(rest)]
			cli, err := c.MemberClient(x)
			if err != nil {
				return
			}
			actx, acancel := context.WithTimeout(pctx, time.Second)
			resp, err := cli.Put(actx, peerProbeKey, "through "+x.Name)
			acancel()
			if err == nil {
				mu.Lock()
				probeRev = max(probeRev, resp.Header.Revision)
				mu.Unlock()
				sleep(pctx, 200*time.Millisecond) // a write now and then, not a flood
			}
		}
	}()
	go func() { // m's clients cannot write
		defer wg.Done()
		for pctx.Err() == nil {
			actx, acancel := context.WithTimeout(pctx, time.Second)
			_, err := mcli.Put(actx, peerProbeKey, "through "+m.Name)
			acancel()
			mu.Lock()
			if err == nil {
				leaks = append(leaks, fmt.Sprintf("a write through %s succeeded %v after the cut", m.Name, time.Since(cutAt).Round(time.Millisecond)))
			} else if pctx.Err() == nil {
				writeFailed = true
			}
			mu.Unlock()
		}
	}()
	go func() { // nor keep a watch that requires a leader, once it has none
		defer wg.Done()
		for resp := range mcli.Watch(clientv3.WithRequireLeader(pctx), peerProbeKey) {
			if err := resp.Err(); err != nil && strings.Contains(err.Error(), "no leader") {
				mu.Lock()
				noLeaderAt = time.Since(cutAt)
				mu.Unlock()
				return
			}
		}
	}()

	// Watch both sides until the cut has shown, and for at least least.
	needBehind := cut != CutOut
	var newLeader uint64
	var behindAt time.Duration
	var lastRev int64
	deadline := cutAt.Add(15 * time.Second)
	for {
		states := c.states(bg)
		mu.Lock()
		pr, wf, leaked := probeRev, writeFailed, len(leaks) > 0
		mu.Unlock()
		if st := states[m]; st.err == nil {
			lastRev = st.rev
			if needBehind && pr > 0 {
				if st.rev >= pr {
					mu.Lock()
					leaks = append(leaks, fmt.Sprintf("%s reached revision %d, which the others committed after the cut", m.Name, st.rev))
					mu.Unlock()
					leaked = true
				} else if behindAt == 0 {
					behindAt = time.Since(cutAt)
				}
			}
		}
		if l := agreedLeader(states, rest); wasLeader && l != 0 && l != mid && newLeader == 0 {
			newLeader = l
			n.note("%s: the others elected %s %v after the cut", m.Name, names[l], time.Since(cutAt).Round(time.Millisecond))
		}
		shown := wf && (!needBehind || behindAt > 0) && (!wasLeader || newLeader != 0)
		if leaked || (shown && time.Since(cutAt) >= least) || time.Now().After(deadline) {
			break
		}
		sleep(bg, 100*time.Millisecond) // polling pace
	}
	stop()
	wg.Wait()
	heldFor := time.Since(cutAt)
	c.HealPeers()
	healAt := time.Now()

	mu.Lock()
	defer mu.Unlock()
	n.note("%s healed after %v: others at revision %d, %s at %d; writes through it failed: %v; fell behind: %v; new leader: %s; require-leader watch ended: %v",
		m.Name, heldFor.Round(time.Millisecond), probeRev, m.Name, lastRev, writeFailed,
		seenAfter(behindAt), nameOr(names, newLeader), seenAfter(noLeaderAt))
	for _, l := range leaks {
		n.failed("%s: the cut of %s (%s, %v) leaked: %s", f, m.Name, role, cut, l)
	}
	var missing []string
	if !writeFailed {
		missing = append(missing, "no write through it failed")
	}
	if needBehind && behindAt == 0 {
		missing = append(missing, fmt.Sprintf("it was never seen behind the others (they reached revision %d)", probeRev))
	}
	if wasLeader && newLeader == 0 {
		missing = append(missing, "the others elected no new leader")
	}
	if len(missing) > 0 && len(leaks) == 0 {
		n.failed("%s: the cut of %s (%s, %v) had no effect in %v: %s", f, m.Name, role, cut, heldFor.Round(time.Millisecond), strings.Join(missing, "; "))
	}
	if writeFailed {
		n.effect(EffectWriteFailed)
	}
	if behindAt > 0 {
		n.effect(EffectFellBehind)
	}
	if newLeader != 0 {
		n.effect(EffectNewLeader)
	}
	if noLeaderAt > 0 {
		n.effect(EffectNoLeaderWatch)
	}

	// The member rejoins: it names the others' leader, has caught up with
	// what they committed, and takes a write.
	for deadline := healAt.Add(20 * time.Second); ; {
		states := c.states(bg)
		st := states[m]
		l := agreedLeader(states, c.Members)
		if st.err == nil && l != 0 && st.rev >= probeRev {
			actx, acancel := context.WithTimeout(bg, 2*time.Second)
			_, err := mcli.Put(actx, peerProbeKey, "through "+m.Name+", healed")
			acancel()
			if err == nil {
				n.effect(EffectRejoined)
				n.note("%s rejoined %v after the heal: leader %s, revision %d", m.Name, time.Since(healAt).Round(time.Millisecond), nameOr(names, l), st.rev)
				return
			}
		}
		if time.Now().After(deadline) {
			n.failed("%s: %s did not rejoin within 20s of the heal: status %+v, the others at revision %d", f, m.Name, st, probeRev)
			return
		}
		sleep(bg, 100*time.Millisecond) // polling pace
	}
}

func seenAfter(d time.Duration) string {
	if d == 0 {
		return "no"
	}
	return "after " + d.Round(time.Millisecond).String()
}

func nameOr(names map[uint64]string, id uint64) string {
	if id == 0 {
		return "none"
	}
	if s, ok := names[id]; ok {
		return s
	}
	return fmt.Sprintf("%x", id)
}

package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// scenarios: each fault family alone, then all of them mixed.
var scenarios = []Scenario{
	{Name: "bank-kill", Faults: []Fault{FaultKillBank, FaultKillBankVoted, FaultKillBankCommit}},
	{Name: "bank-pause", Faults: []Fault{FaultPauseBank}},
	{Name: "coord-kill", Faults: []Fault{FaultKillCoord}},
	{Name: "coord-pause", Faults: []Fault{FaultPauseCoord}},
	{Name: "etcd-kill", Faults: []Fault{FaultKillLeader, FaultKillFollower}},
	{Name: "etcd-pause", Faults: []Fault{FaultPauseEtcd}},
	{Name: "partition", Faults: []Fault{FaultPartitionBank, FaultPartitionCoord, FaultSlowLinks}},
	{Name: "compaction", Faults: []Fault{FaultCompaction}},
	{Name: "lost-responses", Faults: []Fault{FaultLostResponses}, LostResponseRate: 0.2},
	{Name: "etcd-partition", Faults: []Fault{FaultPartitionLeader, FaultPartitionFollower, FaultPartitionOneWay}},
	postgresBankKill,
	{Name: "mixed", Faults: []Fault{
		FaultKillBank, FaultKillBankVoted, FaultKillBankCommit, FaultPauseBank,
		FaultKillCoord, FaultPauseCoord, FaultKillLeader, FaultKillFollower, FaultPauseEtcd,
		FaultPartitionLeader, FaultPartitionFollower, FaultPartitionOneWay,
		FaultPartitionBank, FaultPartitionCoord, FaultSlowLinks,
		FaultCompaction, FaultLostResponses,
	}},
}

// settings are read from the environment:
//
//	CHAOS_DURATION  length of each scenario's fault phase (default 8s)
//	CHAOS_SEED      seed of every scenario (default: a random one each, printed)
//	CHAOS_DIR       where run directories go (default: a new one under $TMPDIR)
//	CHAOS_KEEP=1    keep run directories of passing runs too
//	CHAOS_RACE=0|1  build coord and demo-participant with -race (default: as the suite)
type settings struct {
	duration time.Duration
	seed     uint64
	seedSet  bool
	dir      string
	keep     bool
}

func readSettings(t *testing.T) settings {
	s := settings{duration: 8 * time.Second, keep: os.Getenv("CHAOS_KEEP") == "1"}
	if v := os.Getenv("CHAOS_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("CHAOS_DURATION=%q: expected a positive duration such as 30m", v)
		}
		s.duration = d
	}
	if v := os.Getenv("CHAOS_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("CHAOS_SEED=%q: expected an unsigned integer", v)
		}
		s.seed, s.seedSet = n, true
	}
	s.dir = os.Getenv("CHAOS_DIR")
	if s.dir == "" {
		d, err := os.MkdirTemp("", "concord-chaos-"+time.Now().Format("20060102-150405")+"-")
		if err != nil {
			t.Fatal(err)
		}
		s.dir = d
	} else if err := os.MkdirAll(s.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestChaos runs every scenario in turn against real processes and prints
// the summary table. A run that breaks an invariant fails and keeps its
// directory: history, fault timeline, etcd events and every process's log.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos runs real etcd, coordinator and bank processes for minutes; skipped with -short")
	}
	st := readSettings(t)
	var mu sync.Mutex
	var rows []Summary
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		if len(rows) == 0 {
			return
		}
		table := Table(rows)
		os.WriteFile(filepath.Join(st.dir, "summary.md"), []byte(table), 0o644)
		// Printed, not logged: the table is the point of the run.
		fmt.Printf("\nchaos summary (%s):\n%s\n", st.dir, table)
		if !st.keep && !t.Failed() {
			os.RemoveAll(st.dir)
		}
	})
	for _, sc := range scenarios {
		t.Run(sc.Name, func(t *testing.T) {
			sc := withTestStores(t, sc)
			seed := st.seed
			if !st.seedSet {
				seed = rand.Uint64() >> 16
			}
			dir := filepath.Join(st.dir, sc.Name)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			t.Logf("seed %d (replay: CHAOS_SEED=%d go test ./tests/chaos -run 'TestChaos/%s$' -v)", seed, seed, sc.Name)
			rc := RunConfig{
				Seed:     seed,
				Dir:      dir,
				Before:   3 * time.Second,
				Duration: st.duration,
				After:    3 * time.Second,
				Bound:    30 * time.Second,
				Workers:  8,
				Logf:     t.Logf,
			}
			sum, err := Run(context.Background(), bins, sc, rc)
			mu.Lock()
			if err == nil {
				rows = append(rows, sum)
			}
			mu.Unlock()
			if err != nil {
				t.Fatalf("%s (seed %d, directory %s): %v", sc.Name, seed, dir, err)
			}
			t.Logf("\n%s", Table([]Summary{sum}))
			if g := sum.NoCampaign; g.Count > 0 {
				t.Logf("%s: %d windows with no coordinator replica in the election, longest %v from %s",
					sc.Name, g.Count, g.Longest.Round(time.Millisecond), g.From.Format("15:04:05.000"))
			}
			if sum.Failed() {
				t.Errorf("%s: invariants broken (seed %d); history, fault timeline and logs kept in %s:\n  %s",
					sc.Name, seed, dir, strings.Join(sum.Details, "\n  "))
			} else if sum.Committed == 0 {
				t.Errorf("%s: no transfer committed: the system did not work at all (logs in %s)", sc.Name, dir)
			}
		})
	}
}

package chaos

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/concord-tx/concord/protocol"
)

// Scenario is a named set of faults.
type Scenario struct {
	Name   string
	Faults []Fault
	// LostResponseRate overrides the share of answers lost-responses cuts.
	LostResponseRate float64
	// Banks, Stores and FaultBanks override the default banks (three on
	// bbolt, every one a fault target); see Config.
	Banks      []string
	Stores     map[string]string
	FaultBanks []string
}

// RunConfig sets the shape of one run.
type RunConfig struct {
	Seed     uint64
	Dir      string        // run directory; kept when a check fails
	Before   time.Duration // traffic before the faults
	Duration time.Duration // faults
	After    time.Duration // traffic after the heal
	Bound    time.Duration // every transaction terminal within this after the heal
	Workers  int           // concurrent clients
	Logf     func(format string, args ...any)
}

// Summary is the outcome of one run: one row of the report.
type Summary struct {
	Scenario   string
	Seed       uint64
	Attempted  int
	Committed  int
	Aborted    int
	Unknown    int
	Faults     map[string]int
	Effects    map[string]int // what the faults were seen to do (etcd partitions)
	Violations map[string]int
	Slowest    time.Duration
	SlowestID  string
	Longest    time.Duration
	LongestID  string
	Rate       map[Phase]float64 // answered transfers per second
	Wall       time.Duration
	Dir        string
	Details    []string
	// NoCampaign: windows in which no coordinator replica was in the
	// election, so none could take over a dead leader's work.
	NoCampaign Gap
}

// Failed reports whether any check failed.
func (s Summary) Failed() bool {
	for _, v := range s.Violations {
		if v > 0 {
			return true
		}
	}
	return false
}

// Run runs one scenario from start to checks: start the system, send
// traffic, inject the faults, heal, wait for every transaction to end, read
// every bank and etcd, and check.
func Run(ctx context.Context, b *Binaries, sc Scenario, rc RunConfig) (sum Summary, err error) {
	began := time.Now()
	sum = Summary{Scenario: sc.Name, Seed: rc.Seed, Dir: rc.Dir}
	logf := rc.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	cfg := Config{
		Dir:       rc.Dir,
		Seed:      rc.Seed,
		Members:   3,
		Coords:    2,
		Banks:     []string{"bank-a", "bank-b", "bank-c"},
		Accounts:  []string{"alice", "bob", "carol"},
		Opening:   100,
		LeaseTTL:  2 * time.Second,
		Prefix:    protocol.DefaultPrefix,
		Retention: 30 * time.Second,
	}
	if len(sc.Banks) > 0 {
		cfg.Banks = sc.Banks
	}
	cfg.Stores, cfg.FaultBanks = sc.Stores, sc.FaultBanks
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	sys, err := StartSystem(sctx, b, cfg)
	cancel()
	if err != nil {
		return sum, fmt.Errorf("start: %w", err)
	}
	defer sys.Close()
	logf("%s: system up in %v (etcd %v)", sc.Name, time.Since(began).Round(time.Millisecond), sys.Cluster.Endpoints())

	hist, err := NewHistory(filepath.Join(rc.Dir, "history.jsonl"))
	if err != nil {
		return sum, err
	}
	defer hist.Close()
	tr := &Traffic{Banks: map[string][]string{}, History: hist, TxTimeout: 3 * time.Second, MaxAmount: 60, IDPrefix: "t"}
	for _, c := range sys.Coords {
		tr.Coords = append(tr.Coords, c.URL())
	}
	for _, bk := range sys.Banks {
		tr.Banks[bk.Name] = cfg.Accounts
	}
	tr.SetPhase(PhaseBefore)
	tctx, stopTraffic := context.WithCancel(ctx)
	trafficDone := make(chan struct{})
	go func() {
		defer close(trafficDone)
		tr.Run(tctx, rc.Workers, rc.Seed)
	}()
	defer func() {
		stopTraffic()
		<-trafficDone // on every return: no client left behind
	}()
	phaseStart := time.Now()
	durations := map[Phase]time.Duration{}
	sleep(ctx, rc.Before)
	durations[PhaseBefore] = time.Since(phaseStart)

	tr.SetPhase(PhaseDuring)
	phaseStart = time.Now()
	nem, err := NewNemesis(sys, sc.Faults, rc.Seed, filepath.Join(rc.Dir, "faults.log"))
	if err != nil {
		return sum, err
	}
	defer nem.Close()
	nem.LostResponseRate = sc.LostResponseRate
	fctx, stopFaults := context.WithTimeout(ctx, rc.Duration)
	stopProgress := reportProgress(logf, sc.Name, phaseStart, hist, nem)
	nem.Run(fctx)
	stopProgress()
	stopFaults()
	nem.HealAll()
	healed := time.Now()
	durations[PhaseDuring] = healed.Sub(phaseStart)
	logf("%s: faults over after %v: %v", sc.Name, durations[PhaseDuring].Round(time.Millisecond), nem.Counts())

	tr.SetPhase(PhaseAfter)
	phaseStart = time.Now()
	rctx, cancel := context.WithTimeout(ctx, rc.Bound)
	readyErr := sys.WaitReady(rctx)
	cancel()
	if readyErr != nil {
		logf("%s: not ready after heal: %v", sc.Name, readyErr)
	}
	sleep(ctx, rc.After)
	stopTraffic()
	<-trafficDone
	durations[PhaseAfter] = time.Since(phaseStart)

	// Quiescence: every transaction terminal and every inbox empty, or the
	// bound has passed (the liveness check then says what is left).
	qctx, cancel := context.WithDeadline(ctx, healed.Add(rc.Bound).Add(rc.After+15*time.Second))
	final, qerr := waitQuiet(qctx, sys)
	cancel()
	if qerr != nil {
		logf("%s: not quiet: %v", sc.Name, qerr)
	}
	octx, cancel := context.WithTimeout(ctx, 10*time.Second)
	if err := sys.Observer.WaitRev(octx, final.Rev); err != nil {
		logf("%s: observer behind: %v", sc.Name, err)
	}
	cancel()
	banks, err := readBanks(ctx, sys)
	if err != nil {
		return sum, err
	}
	ops := hist.Ops()
	opening := map[string]map[string]int64{}
	for _, bk := range sys.Banks {
		opening[bk.Name] = map[string]int64{}
		for _, a := range cfg.Accounts {
			opening[bk.Name][a] = cfg.Opening
		}
	}
	bankLogs, coordLogs := map[string]string{}, map[string]string{}
	for _, bk := range sys.Banks {
		bankLogs[bk.Name] = bk.LogPath()
	}
	for _, c := range sys.Coords {
		coordLogs[c.Name] = c.LogPath()
	}
	// Stop everything before the process checks read the logs.
	for _, svc := range sys.Services() {
		svc.Kill()
	}
	rep := Check(CheckInput{
		Ops: ops, Txs: sys.Observer.Txs(), Etcd: final, Banks: banks, Opening: opening,
		Healed: healed, Bound: rc.Bound, Processes: sys.Processes(), BankLogs: bankLogs,
		CoordLogs: coordLogs, CampaignEnd: sys.Observer.CampaignEnd,
	})
	for _, f := range append(nem.Failures(), nem.NeverInjected()...) {
		rep.fail(CheckFaults, "%s", f)
	}
	sum.Attempted = len(ops)
	sum.Rate = map[Phase]float64{}
	for _, op := range ops {
		switch op.Result {
		case Committed:
			sum.Committed++
		case Aborted:
			sum.Aborted++
		default:
			sum.Unknown++
		}
		if op.Result != Unknown {
			sum.Rate[op.Phase]++
		}
	}
	for p, d := range durations {
		if d > 0 {
			sum.Rate[p] /= d.Seconds()
		}
	}
	sum.Faults = nem.Counts()
	sum.Effects = nem.Effects()
	sum.Violations = rep.Violations
	sum.Slowest, sum.SlowestID = rep.Slowest, rep.SlowestID
	sum.Longest, sum.LongestID = rep.Longest, rep.LongestID
	sum.Details = rep.Details
	sum.NoCampaign = sys.Observer.NoCampaign()
	sum.Wall = time.Since(began)
	writeArtifacts(rc.Dir, sum, sys.Observer.Relists())
	return sum, nil
}

// waitQuiet waits until etcd holds no undecided or unacknowledged
// transaction, and returns the last read.
func waitQuiet(ctx context.Context, sys *System) (EtcdState, error) {
	var st EtcdState
	var err error
	for {
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		st, err = ReadEtcd(rctx, sys.Cluster.Client(), sys.Keys)
		cancel()
		if err == nil {
			busy := len(st.Inboxes)
			for _, r := range st.Records {
				if !r.State.Terminal() {
					busy++
				}
			}
			if busy == 0 {
				return st, nil
			}
			err = fmt.Errorf("%d records or inboxes still active", busy)
		}
		select {
		case <-ctx.Done():
			if st.Rev == 0 {
				return st, fmt.Errorf("%w (last: %v)", ctx.Err(), err)
			}
			return st, err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// readBanks asks every bank for its accounts and records.
func readBanks(ctx context.Context, sys *System) (map[string]BankState, error) {
	out := make(map[string]BankState)
	for _, bk := range sys.Banks {
		var st BankState
		if err := getJSON(ctx, bk.URL()+"/accounts", &st.Accounts); err != nil {
			return nil, fmt.Errorf("%s: %w", bk.Name, err)
		}
		if err := getJSON(ctx, bk.URL()+"/applied", &st.Applied); err != nil {
			return nil, fmt.Errorf("%s: %w", bk.Name, err)
		}
		out[bk.Name] = st
	}
	return out, nil
}

// writeArtifacts leaves the summary and the violations in the run
// directory.
func writeArtifacts(dir string, s Summary, relists int) {
	var b strings.Builder
	b.WriteString(Table([]Summary{s}))
	fmt.Fprintf(&b, "\nobserver re-lists after compaction: %d\n", relists)
	if g := s.NoCampaign; g.Count > 0 {
		fmt.Fprintf(&b, "windows with no coordinator replica in the election: %d, longest %v (from %s, ended at revision %d)\n",
			g.Count, g.Longest.Round(time.Millisecond), g.From.Format("15:04:05.000"), g.Rev)
	}
	if len(s.Details) > 0 {
		b.WriteString("\nviolations:\n")
		for _, d := range s.Details {
			b.WriteString("  " + d + "\n")
		}
	}
	os.WriteFile(filepath.Join(dir, "summary.txt"), []byte(b.String()), 0o644)
}

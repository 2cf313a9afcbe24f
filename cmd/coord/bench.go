package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/concord-tx/concord/cmd/coord/internal/bench"
	"go.uber.org/zap"
)

func runBench(ctx context.Context, c console, args []string) error {
	f := newFlagSet("bench", "coord bench [flags]", `Runs transactions end to end through the real coordinator and participant
packages — one coordinator client and replica, and --participants in-process
participants whose handlers do nothing — against an embedded single-node etcd
in a temporary directory, or against --etcd. On the same etcd, in the same
run, it measures the floor: plain compare-and-swap Txns at the same concurrency, one
Txn's latency, and the commit path's shape with bare etcd calls (the path
floor) at the same concurrency, beside which it prints Concord's p50, CPU
and throughput as ratios. It measures the protocol's floor too: the same
bare calls writing what the protocol's commit path writes (the begin with
Concord's record and prepare messages, each vote Txn fenced and carrying
the decision, a watch for the decision; one request per write, so at
concurrency above 1 group commit can take Concord below it). Its ratio to
the path floor is what the design's commit path costs; Concord's ratio to
it, what Concord adds. And it measures the design's floor: the protocol's
floor with what the design asks after the decision, as Concord does it
(each voter's acknowledgement riding on its next vote, or sent alone once
it has waited 10ms; the last one writing the terminal record; finished records deleted
many to a Txn every 100ms; a run's own cleanup charged to it). At
concurrency 1 it is the least the design's whole transaction costs; above 1
its requests are not batched across transactions, as Concord's are, and it
is not a floor. At concurrency 1 the floors are measured between blocks of 100 of
Concord's transactions, so that all of them see the machine in the same state.
Above 1 they take turns with the load in four rounds: each round runs the load
until its cleanup runs beside it, measures a window of a quarter of
--transactions (or of --duration), waits until that work is done, then runs
each floor for half the window (0.5s to 5s). Throughput, latency and CPU are the windows'; the transactions run
outside them are printed as unmeasured and counted in the requests per
transaction.
It prints throughput, latency, etcd requests per transaction by kind and
the bytes its writes carry (counted exactly, by a client interceptor), and
where that stands against the floor. Finished transactions are deleted after --retention, within the
run, so that the counts include their cleanup.

The ceiling is the floor's Txn rate divided by N+2, the design's etcd writes
per transaction for N participants sent one request each (begin, N votes,
finalisation); group commit is how Concord goes past it.

With --deployed it measures the deployed shape instead: the real coord serve
(on its embedded etcd) and --participants demo banks (demo-participant serve,
with balances no run exhausts, so every vote is yes), each a process of its
own (or, with --participant yes, participant processes whose handlers do
nothing), with transactions sent to coord's HTTP API by its Go client over
kept-alive connections. It reports throughput, latency, etcd's requests,
watch responses, writes and WAL fsyncs per transaction (from etcd's own
/metrics), and each process's CPU per transaction (from /proc, Linux only),
the load measured in one window once steady, as above.
The binaries are built with go build into a temporary directory (run it
from the module's directory), or given with --coord-bin and
--participant-bin. SIGINT stops the run and the processes.

`+tracingHelp)
	f.env = benchEnvPrefix
	etcd := f.String("etcd", "", "comma-separated etcd `endpoints`; empty: an embedded etcd in a temporary directory")
	participants := f.Int("participants", 2, "participants per transaction (`N`)")
	concurrency := f.Int("concurrency", 1, "transactions in flight")
	transactions := f.Int("transactions", 2000, "transactions to run (0: run for --duration)")
	f.String("duration", "10s", "how long to measure when --transactions is 0 (`duration`); the run takes longer, warming up and measuring the floors")
	payload := f.Int("payload", 0, "`bytes` of payload per branch")
	f.String("retention", "1s", "`duration` the replica keeps finished transactions before deleting them; the run\nwaits until every one is deleted, so the counts include the cleanup")
	asJSON := f.Bool("json", false, "print one JSON object instead of tables, for scripts")
	deployed := f.Bool("deployed", false, "instead: run coord serve and the participants as processes of their own, and send the\ntransactions to coord's HTTP API (see above)")
	coordBin := f.String("coord-bin", "", "with --deployed: the coord `binary`; empty: built with go build (give both or neither)")
	participantBin := f.String("participant-bin", "", "with --deployed: the participant's `binary`; empty: built with go build")
	participantKind := f.String("participant", bench.ParticipantBank, "with --deployed: the participants' `kind`: bank (demo-participant serve, a bbolt store) or yes\n(a participant process whose handlers do nothing, as in the in-process benchmark)")
	undecided := f.Int("undecided", 0, "instead: begin this many transactions that stay undecided and report the memory of\nthe process holding the coordinator client and replica (use --etcd to leave etcd out of it)")
	if _, err := parseCommand(f, args, c); err != nil {
		return err
	}
	if *undecided < 0 {
		return usagef("%s: %q, expected 0 or more", f.source("undecided"), f.value("undecided"))
	}
	cfg := bench.Config{Participants: *participants, Concurrency: *concurrency, Transactions: *transactions, Payload: *payload, Progress: c.stderr}
	if *transactions == 0 {
		d, err := f.duration("duration")
		if err != nil {
			return err
		}
		cfg.Duration = d
	}
	retention, err := f.duration("retention")
	if err != nil {
		return err
	}
	cfg.Retention = retention
	if *etcd != "" {
		cfg.Endpoints = strings.Split(*etcd, ",")
	}
	for _, check := range []struct {
		name string
		ok   bool
		want string
	}{
		{"participants", *participants >= 1 && *participants <= 100, "1 to 100"},
		{"concurrency", *concurrency >= 1, "at least 1"},
		{"transactions", *transactions >= 0, "0 or more"},
		{"payload", *payload >= 0 && *payload <= 64<<10, "0 to 65536"},
	} {
		if !check.ok {
			return usagef("%s: %q, expected %s", f.source(check.name), f.value(check.name), check.want)
		}
	}
	if !*deployed {
		for _, name := range []string{"coord-bin", "participant-bin", "participant"} {
			if f.value(name) != f.Lookup(name).DefValue {
				return usagef("%s: only with --deployed", f.source(name))
			}
		}
	} else {
		for _, name := range []string{"etcd", "undecided", "payload"} {
			if d := f.Lookup(name).DefValue; f.value(name) != d {
				return usagef("%s: not with --deployed (it runs coord serve on its embedded etcd, with the demo banks' payloads)", f.source(name))
			}
		}
		if *participantKind != bench.ParticipantBank && *participantKind != bench.ParticipantYes {
			return usagef("%s: %q, expected %s or %s", f.source("participant"), *participantKind, bench.ParticipantBank, bench.ParticipantYes)
		}
		if (*coordBin == "") != (*participantBin == "") {
			return usagef("--coord-bin and --participant-bin: give both, or neither to build them")
		}
	}
	tr, err := startTracing(ctx, c, "coord-bench", newLogger(c.stderr, logConfig{level: zap.WarnLevel, format: "console"}))
	if err != nil {
		return err
	}
	defer tr.Flush()
	cfg.TracerProvider = tr.Provider
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if *deployed {
		return benchDeployed(ctx, c.stdout, bench.DeployedConfig{
			Participants: cfg.Participants, Concurrency: cfg.Concurrency, Transactions: cfg.Transactions,
			Duration: cfg.Duration, Retention: cfg.Retention, CoordBin: *coordBin, ParticipantBin: *participantBin, Participant: *participantKind,
			Progress: c.stderr,
		}, *asJSON)
	}
	if *undecided > 0 {
		return benchUndecided(ctx, c.stdout, cfg.Endpoints, *undecided, *asJSON)
	}
	res, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(c.stdout, res)
	}
	printBench(c.stdout, res)
	return nil
}

// printLoad writes the rows both benchmarks print of the load:
// concurrency, committed, throughput, and latency from what to the
// decision.
func printLoad(tw io.Writer, l bench.Load, elapsedSeconds float64, from string) {
	fmt.Fprintf(tw, "concurrency\t%d\t\n", l.Concurrency)
	fmt.Fprintf(tw, "committed\t%d\tin %.1fs (%d failed)\n", l.Committed, elapsedSeconds, l.Failed)
	if l.Unmeasured > 0 {
		fmt.Fprintf(tw, "unmeasured\t%d\tmore, run while the load grew steady and drained: in the counts per transaction, not in the times or CPU\n", l.Unmeasured)
	}
	fmt.Fprintf(tw, "throughput\t%.0f tx/s\t\n", l.TxPerSec)
	fmt.Fprintf(tw, "latency\tp50 %.2f ms\tp99 %.2f ms, max %.2f ms (%s to decision)\n", l.P50ms, l.P99ms, l.Maxms, from)
}

// requestKinds lists etcd's requests per transaction by kind, sorted.
func requestKinds(perTx map[string]float64) string {
	var kinds []string
	for _, k := range slices.Sorted(maps.Keys(perTx)) {
		kinds = append(kinds, fmt.Sprintf("%s %.3f", k, perTx[k]))
	}
	return strings.Join(kinds, ", ")
}

func printBench(w io.Writer, r bench.Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	etcd := "external"
	if r.Embedded {
		etcd = "embedded single-node"
	}
	fmt.Fprintf(tw, "participants\t%d\tpayload %d bytes, %s etcd\n", r.Participants, r.PayloadBytes, etcd)
	printLoad(tw, r.Load, r.ElapsedSeconds, "begin")
	fmt.Fprintf(tw, "etcd requests/tx\t%s\t\n", requestKinds(r.EtcdRequestsPerTx))
	fmt.Fprintf(tw, "etcd writes/tx\t%.3f\tfinalisation and cleanup included (N+2 = %d sent one request each)\n", r.EtcdWritesPerTx, r.Participants+2)
	fmt.Fprintf(tw, "write bytes/tx\t%.0f\tthe write requests as sent to etcd; the path floor: %.0f\n", r.EtcdWriteBytesPerTx, r.PathFloorWriteBytesPerTx)
	fmt.Fprintf(tw, "write shape/tx\t%.1f compares, %.1f ops\tin those writes, nested and both branches; the path floor: %.1f, %.1f\n", r.EtcdComparesPerTx, r.EtcdOpsPerTx, r.PathFloorComparesPerTx, r.PathFloorOpsPerTx)
	when := fmt.Sprintf("in %d rounds taking turns with the load", r.FloorRounds)
	if r.FloorBlock > 0 {
		when = fmt.Sprintf("between blocks of %d transactions", r.FloorBlock)
	}
	fmt.Fprintf(tw, "floor\t%.0f Txn/s\tplain compare-and-swap at concurrency %d, %s; one Txn p50 %.2f ms\n", r.TxnPerSec, r.Concurrency, when, r.TxnP50ms)
	fmt.Fprintf(tw, "ceiling\t%.0f tx/s\tfloor / (N+2)\n", r.CeilingTxPerSec)
	fmt.Fprintf(tw, "against it\t%.0f%%\tof the ceiling; p50 is %.1fx one Txn\n", 100*r.CeilingFraction, r.P50OverTxn)
	fmt.Fprintf(tw, "path floor\t%.0f tx/s\tbegin, %d votes and a watch with bare etcd calls, at concurrency %d\n", r.PathFloorTxPerSec, r.Participants, r.PathFloorConcurrency)
	fmt.Fprintf(tw, "path floor latency\tp50 %.2f ms\tp99 %.2f ms; p50 %.1fx one Txn\n", r.PathFloorP50ms, r.PathFloorP99ms, r.PathFloorOverTxn)
	where := "this process"
	if r.Embedded {
		where += ", etcd included"
	}
	fmt.Fprintf(tw, "CPU/tx\t%.2f ms\t%s; the path floor: %.2f ms\n", r.CPUmsPerTx, where, r.PathFloorCPUmsPerTx)
	fmt.Fprintf(tw, "against the path floor\tp50 %.2fx\tCPU/tx %.2fx, throughput %.2fx; throughput %.2fx the ceiling\n", r.P50OverPathFloor, r.CPUOverPathFloor, r.TxPerSecOverPathFloor, r.CeilingFraction)
	pf, df := r.ProtocolFloor, r.DesignFloor
	fmt.Fprintf(tw, "protocol floor\t%.0f tx/s\tthe protocol's begin and %d vote Txns (fenced, carrying the decision) and a watch for the decision, bare etcd calls\n", pf.TxPerSec, r.Participants)
	fmt.Fprintf(tw, "protocol floor latency\tp50 %.2f ms\tp99 %.2f ms; CPU/tx %.2f ms; %.0f write bytes, %.1f compares, %.1f ops per tx\n", pf.P50ms, pf.P99ms, pf.CPUmsPerTx, pf.WriteBytesPerTx, pf.ComparesPerTx, pf.OpsPerTx)
	fmt.Fprintf(tw, "against the path floor\tp50 %.2fx\tCPU/tx %.2fx: what the design's commit path costs above the path floor\n", pf.P50OverPathFloor, pf.CPUOverPathFloor)
	fmt.Fprintf(tw, "Concord against it\tp50 %.2fx\tCPU/tx %.2fx: what Concord spends above its protocol's commit path\n", pf.ConcordP50Over, pf.ConcordCPUOver)
	scope := "the least the design's whole transaction costs"
	if r.Concurrency > 1 {
		scope = "not a floor above concurrency 1, where Concord batches across transactions"
	}
	fmt.Fprintf(tw, "design floor\t%.0f tx/s\tthe protocol floor with acknowledgements riding on votes, the terminal record and batched cleanup; %s\n", df.TxPerSec, scope)
	fmt.Fprintf(tw, "design floor latency\tp50 %.2f ms\tp99 %.2f ms; CPU/tx %.2f ms; %.0f write bytes, %.1f compares, %.1f ops per tx\n", df.P50ms, df.P99ms, df.CPUmsPerTx, df.WriteBytesPerTx, df.ComparesPerTx, df.OpsPerTx)
	fmt.Fprintf(tw, "against the path floor\tp50 %.2fx\tCPU/tx %.2fx: what the design's whole transaction costs above the path floor\n", df.P50OverPathFloor, df.CPUOverPathFloor)
	fmt.Fprintf(tw, "Concord against it\tp50 %.2fx\tCPU/tx %.2fx: what Concord spends above its design\n", df.ConcordP50Over, df.ConcordCPUOver)
	if r.SyscallsPerTx >= 0 {
		fmt.Fprintf(tw, "syscalls/tx\t%.1f\treads and writes, %s; the path floor: %.1f\n", r.SyscallsPerTx, where, r.PathFloorSyscallsPerTx)
	}
	fmt.Fprintf(tw, "goroutines/tx\t%.2f\tstarted, %s; the path floor: %.2f\n", r.GoroutinesPerTx, where, r.PathFloorGoroutinesPerTx)
	tw.Flush()
}

func benchDeployed(ctx context.Context, w io.Writer, cfg bench.DeployedConfig, asJSON bool) error {
	r, err := bench.RunDeployed(ctx, cfg)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(w, r)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "shape\tdeployed\tcoord serve (embedded etcd) and %d participants, each a process; HTTP API, kept-alive connections\n", r.Participants)
	fmt.Fprintf(tw, "participants\t%d\t%s\n", r.Participants, r.Participant)
	fmt.Fprintf(tw, "binaries\t%s\t\n", r.Binaries)
	printLoad(tw, r.Load, r.ElapsedSeconds, "HTTP request")
	fmt.Fprintf(tw, "etcd requests/tx\t%s\tunary requests etcd served, finalisation and cleanup included\n", requestKinds(r.EtcdRequestsPerTx))
	fmt.Fprintf(tw, "etcd writes/tx\t%.3f\traft proposals committed\n", r.EtcdWritesPerTx)
	fmt.Fprintf(tw, "watch responses/tx\t%.2f\t\n", r.WatchResponsesPerTx)
	fmt.Fprintf(tw, "WAL fsyncs/tx\t%.3f\t\n", r.WALFsyncsPerTx)
	fmt.Fprintf(tw, "CPU/tx\t%.2f ms\tthe servers: coord serve with its etcd, and the participants\n", r.CPUmsPerTx)
	for _, p := range r.Processes {
		fmt.Fprintf(tw, "  %s\t%.2f ms\t%.0f%% (pid %d)\n", p.Name, p.CPUmsPerTx, 100*p.Share, p.PID)
	}
	fmt.Fprintf(tw, "client CPU/tx\t%.2f ms\tthis process, sending the requests\n", r.ClientCPUmsPerTx)
	return tw.Flush()
}

func benchUndecided(ctx context.Context, w io.Writer, endpoints []string, n int, asJSON bool) error {
	m, err := bench.Undecided(ctx, endpoints, n)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(w, m)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	where := "coordinator client and replica"
	if m.Embedded {
		where += ", and the embedded etcd"
	}
	fmt.Fprintf(tw, "undecided transactions\t%d\ttracked by the leading replica\n", m.Undecided)
	fmt.Fprintf(tw, "resident memory\t%.1f MiB\t%s\n", float64(m.RSSBytes)/(1<<20), where)
	fmt.Fprintf(tw, "Go heap in use\t%.1f MiB\t%.0f bytes per transaction\n", float64(m.HeapBytes)/(1<<20), m.HeapPerTxBytes)
	fmt.Fprintf(tw, "goroutines\t%d\tbefore the transactions: %d\n", m.GoroutinesAfter, m.GoroutinesBefore)
	fmt.Fprintf(tw, "etcd leases\t%d\tthe replica's and the silent participant's\n", m.LeasesAfter)
	return tw.Flush()
}

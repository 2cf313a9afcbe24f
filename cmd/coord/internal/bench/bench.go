// Package bench measures Concord end to end against the etcd underneath
// it: transactions through the real coordinator and participant packages,
// and, in the same run on the same etcd, the rate and latency of plain
// compare-and-swap Txns — the floor no coordinator over etcd can beat.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/concord-tx/concord/cmd/coord/internal/embedded"
	"github.com/concord-tx/concord/coordinator"
	"github.com/concord-tx/concord/internal/flowcontrol"
	"github.com/concord-tx/concord/participant"
	"github.com/concord-tx/concord/protocol"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

// Config says what to run.
type Config struct {
	Endpoints []string // etcd to use; empty: an embedded single-node etcd in a temp dir
	// TracerProvider records the transactions' spans; nil: the global
	// provider, a no-op unless the program installed an SDK.
	TracerProvider trace.TracerProvider
	Participants   int           // participants per transaction
	Concurrency    int           // transactions in flight
	Transactions   int           // how many to run; 0: run for Duration
	Duration       time.Duration // with Transactions 0
	Payload        int           // bytes of payload per branch
	Progress       io.Writer     // progress lines; nil: none
	// Retention is how long the replica keeps finished transactions before
	// deleting them (0: DefaultRetention). The run waits until every one is
	// deleted, so the counts include the cleanup.
	Retention    time.Duration
	ClientConfig func(*clientv3.Config)
}

// Load is what both benchmarks (Run and RunDeployed) report of the
// transactions themselves.
type Load struct {
	Participants int `json:"participants"`
	Concurrency  int `json:"concurrency"`
	Committed    int `json:"committed"` // in the measured windows
	Failed       int `json:"failed"`    // wherever they ran
	// Unmeasured is how many more transactions committed outside the
	// measured windows, while the load grew steady and drained (see
	// steady): in the etcd counts per transaction, not in the times or CPU.
	Unmeasured int `json:"unmeasured"`

	TxPerSec float64 `json:"tx_per_sec"`
	P50ms    float64 `json:"p50_ms"`
	P99ms    float64 `json:"p99_ms"`
	Maxms    float64 `json:"max_ms"`
}

// measured fills in the figures of lat, a load that took elapsed.
func (l *Load) measured(lat latencies, elapsed time.Duration) {
	l.Committed, l.Failed = len(lat.ok), lat.failed
	l.TxPerSec = float64(l.Committed) / elapsed.Seconds()
	l.P50ms, l.P99ms, l.Maxms = percentile(lat.ok, 50), percentile(lat.ok, 99), percentile(lat.ok, 100)
}

// checkLoad checks the settings both benchmarks share.
func checkLoad(participants, concurrency, transactions int, duration, retention time.Duration) error {
	switch {
	case participants < 1 || participants > protocol.DefaultMaxBranches:
		return fmt.Errorf("participants: %d, expected 1 to %d", participants, protocol.DefaultMaxBranches)
	case concurrency < 1:
		return fmt.Errorf("concurrency: %d, expected at least 1", concurrency)
	case transactions < 0 || transactions == 0 && duration <= 0:
		return errors.New("transactions or duration: expected a positive number of transactions or a positive duration")
	case retention < 0:
		return fmt.Errorf("retention: %v, expected a positive duration", retention)
	}
	return nil
}

// Result is one run's figures.
type Result struct {
	Load

	EtcdRequestsPerTx map[string]float64 `json:"etcd_requests_per_tx"`
	EtcdWritesPerTx   float64            `json:"etcd_writes_per_tx"`
	// Bytes of the write requests per transaction, as encoded: what etcd's
	// raft log, WAL, apply and watchers carry. The path floor's beside.
	EtcdWriteBytesPerTx      float64 `json:"etcd_write_bytes_per_tx"`
	PathFloorWriteBytesPerTx float64 `json:"path_floor_write_bytes_per_tx"`
	// The compares and operations of those writes per transaction, at
	// every level of nesting and in both branches (see Counter.Shape).
	EtcdComparesPerTx      float64 `json:"etcd_compares_per_tx"`
	EtcdOpsPerTx           float64 `json:"etcd_ops_per_tx"`
	PathFloorComparesPerTx float64 `json:"path_floor_compares_per_tx"`
	PathFloorOpsPerTx      float64 `json:"path_floor_ops_per_tx"`

	TxnPerSec       float64 `json:"txn_per_sec"`
	TxnP50ms        float64 `json:"txn_p50_ms"`
	CeilingTxPerSec float64 `json:"ceiling_tx_per_sec"`
	CeilingFraction float64 `json:"ceiling_fraction"`
	P50OverTxn      float64 `json:"p50_over_txn"`
	// The commit path's shape with bare etcd calls, at the load's
	// concurrency: the least p50 and CPU per transaction, and the most
	// throughput, any coordinator of this shape gets from this etcd.
	PathFloorConcurrency int     `json:"path_floor_concurrency"`
	PathFloorTxPerSec    float64 `json:"path_floor_tx_per_sec"`
	PathFloorP50ms       float64 `json:"path_floor_p50_ms"`
	PathFloorP99ms       float64 `json:"path_floor_p99_ms"`
	PathFloorOverTxn     float64 `json:"path_floor_over_txn"`
	// The ratios the targets are stated in: Concord's p50 and CPU per
	// transaction over the path floor's, its throughput over the path
	// floor's.
	P50OverPathFloor      float64 `json:"p50_over_path_floor"`
	CPUOverPathFloor      float64 `json:"cpu_over_path_floor"`
	TxPerSecOverPathFloor float64 `json:"tx_per_sec_over_path_floor"`
	// The protocol's floor: the same loop writing what the protocol's
	// commit path writes, Concord's values included (see protocolShape),
	// at the load's concurrency, measured beside the path floor. What
	// Concord spends above it is its own; what it spends above the path
	// floor, the design's.
	ProtocolFloor Floor `json:"protocol_floor"`
	// The design's floor: the protocol's floor with what the design asks
	// after the decision, acknowledgements, the terminal record and
	// cleanup, as Concord does them (see finisher). A floor at concurrency
	// 1 only: above it Concord batches across transactions, and it does
	// not.
	DesignFloor Floor `json:"design_floor"`
	// CPU time, read and write system calls and goroutines started by
	// this process per transaction (the embedded etcd's included when it
	// runs here), for the load and for the path floor. System calls are -1
	// where the system does not count them (it does on Linux).
	CPUmsPerTx               float64 `json:"cpu_ms_per_tx"`
	PathFloorCPUmsPerTx      float64 `json:"path_floor_cpu_ms_per_tx"`
	SyscallsPerTx            float64 `json:"syscalls_per_tx"`
	PathFloorSyscallsPerTx   float64 `json:"path_floor_syscalls_per_tx"`
	GoroutinesPerTx          float64 `json:"goroutines_per_tx"`
	PathFloorGoroutinesPerTx float64 `json:"path_floor_goroutines_per_tx"`
	// FloorBlock, at concurrency 1: the floors were measured in blocks of
	// this many transactions alternating with the load's. FloorRounds,
	// above 1: the load and the floors took turns this many times, the
	// load measured only once steady (see inRounds).
	FloorBlock     int     `json:"floor_block"`
	FloorRounds    int     `json:"floor_rounds"`
	Embedded       bool    `json:"embedded_etcd"`
	PayloadBytes   int     `json:"payload_bytes"`
	ElapsedSeconds float64 `json:"elapsed_s"`
}

// Floor is what one of the bare paths with the protocol's shape measured.
type Floor struct {
	TxPerSec float64 `json:"tx_per_sec"`
	P50ms    float64 `json:"p50_ms"`
	P99ms    float64 `json:"p99_ms"`
	// CPU of this process per transaction, etcd's included when it runs
	// here; the bytes, compares and operations of its write requests.
	CPUmsPerTx      float64 `json:"cpu_ms_per_tx"`
	WriteBytesPerTx float64 `json:"write_bytes_per_tx"`
	ComparesPerTx   float64 `json:"compares_per_tx"`
	OpsPerTx        float64 `json:"ops_per_tx"`
	// Its p50 and CPU per transaction over the path floor's, and
	// Concord's over it.
	P50OverPathFloor float64 `json:"p50_over_path_floor"`
	CPUOverPathFloor float64 `json:"cpu_over_path_floor"`
	ConcordP50Over   float64 `json:"concord_p50_over"`
	ConcordCPUOver   float64 `json:"concord_cpu_over"`
}

// DefaultRetention keeps finished transactions briefly, so that their
// cleanup happens within the run and is counted with them.
const DefaultRetention = time.Second

// Run runs the benchmark.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if err := checkLoad(cfg.Participants, cfg.Concurrency, cfg.Transactions, cfg.Duration, cfg.Retention); err != nil {
		return Result{}, err
	}
	if cfg.Retention == 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.Payload < 0 || cfg.Payload > protocol.DefaultMaxPayload {
		return Result{}, fmt.Errorf("payload: %d bytes, expected 0 to %d", cfg.Payload, protocol.DefaultMaxPayload)
	}
	progress := cfg.Progress
	if progress == nil {
		progress = io.Discard
	}
	res := Result{Load: Load{Participants: cfg.Participants, Concurrency: cfg.Concurrency}, PayloadBytes: cfg.Payload}
	endpoints, stopEtcd, err := etcdFor(cfg.Endpoints)
	if err != nil {
		return res, err
	}
	defer stopEtcd()
	res.Embedded = len(cfg.Endpoints) == 0
	// Concord's requests and the floors' are counted apart.
	counter, floorCounter := NewCounter(), NewCounter()
	newClient := func(counted bool) (*clientv3.Client, error) {
		c := clientv3.Config{
			Endpoints:   endpoints,
			DialTimeout: 5 * time.Second,
			DialOptions: flowcontrol.DialOptions(),
			Logger:      zap.NewNop(),
		}
		if counted {
			c.DialOptions = append(c.DialOptions, grpc.WithChainUnaryInterceptor(counter.Interceptor()))
		} else {
			c.DialOptions = append(c.DialOptions, grpc.WithChainUnaryInterceptor(floorCounter.Interceptor()))
		}
		if cfg.ClientConfig != nil {
			cfg.ClientConfig(&c)
		}
		return clientv3.New(c)
	}
	var clients []*clientv3.Client
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	// Concord's clients are counted; the floors' apart, so that their
	// requests, measured between Concord's, stay out of its counts.
	client := func(counted bool) (*clientv3.Client, error) {
		c, err := newClient(counted)
		if err == nil {
			clients = append(clients, c)
		}
		return c, err
	}

	// Each run has its own prefix so runs against a shared etcd never meet.
	// The floors' keys live beside Concord's, not under them: Concord's
	// watches (the client's and the replica's) would otherwise receive the
	// floors' writes too, and slow the floors down.
	prefix := fmt.Sprintf("/concord-bench-%08x", rand.Uint32())
	floors := prefix + "-floors"
	names := make([]string, cfg.Participants)
	for i := range names {
		names[i] = fmt.Sprintf("p%d", i)
		cli, err := client(true)
		if err != nil {
			return res, err
		}
		p, err := participant.New(cli, names[i], participant.HandlerFuncs{}, participant.WithPrefix(prefix), participant.WithWorkers(max(32, cfg.Concurrency)), participant.WithTracerProvider(cfg.TracerProvider))
		if err != nil {
			return res, err
		}
		defer p.Close()
		if err := p.WaitActive(ctx); err != nil {
			return res, err
		}
	}
	ccli, err := client(true)
	if err != nil {
		return res, err
	}
	coord, err := coordinator.NewClient(ctx, ccli, coordinator.WithPrefix(prefix), coordinator.WithTracerProvider(cfg.TracerProvider))
	if err != nil {
		return res, err
	}
	defer coord.Close()
	// As coord serve runs them: the replica follows the client's watch.
	replica, err := coordinator.NewReplica(ccli, coordinator.WithPrefix(prefix), coordinator.WithRetention(cfg.Retention), coordinator.WithTracerProvider(cfg.TracerProvider), coordinator.WithClient(coord))
	if err != nil {
		return res, err
	}
	defer replica.Close()
	keys, err := protocol.NewKeys(prefix)
	if err != nil {
		return res, err
	}

	payload := make([]byte, cfg.Payload)
	for i := range payload {
		payload[i] = 'x'
	}
	branches := make([]protocol.Branch, len(names))
	for i, n := range names {
		branches[i] = protocol.Branch{Participant: n, Payload: payload}
	}
	// Warm up connections and caches.
	if _, err := runLoad(ctx, concordDo(coord, branches), min(cfg.Concurrency, 8), 50); err != nil {
		return res, fmt.Errorf("warm-up: %w", err)
	}
	// The floors' client, which also polls for quiet, so that its reads
	// stay out of Concord's counts.
	floorCli, err := client(false)
	if err != nil {
		return res, err
	}
	if err := waitQuiet(ctx, floorCli, keys, cfg.Retention); err != nil {
		return res, err
	}

	voters := make([]*clientv3.Client, cfg.Participants)
	for i := range voters {
		if voters[i], err = client(false); err != nil {
			return res, err
		}
	}
	// Values the size of a record with this payload.
	value := make([]byte, 256+cfg.Payload)
	for i := range value {
		value[i] = 'x'
	}
	path, err := startBarePath(ctx, floorCli, voters, floors, value, cfg.Concurrency > 1)
	if err != nil {
		return res, fmt.Errorf("commit path floor: %w", err)
	}
	defer path.close()
	proto, err := startProtocolPath(ctx, floorCli, voters, floors, names, payload, cfg.Concurrency > 1, false)
	if err != nil {
		return res, fmt.Errorf("protocol floor: %w", err)
	}
	defer proto.close()
	design, err := startProtocolPath(ctx, floorCli, voters, floors, names, payload, cfg.Concurrency > 1, true)
	if err != nil {
		return res, fmt.Errorf("design floor: %w", err)
	}
	defer design.close()
	floorPaths := floorPaths{path: path, protocol: proto, design: design}

	var m measured
	before, bytesBefore := counter.Snapshot(), counter.Bytes()
	cmpsBefore, opsBefore := counter.Shape()
	path.counter, proto.counter, design.counter = floorCounter, floorCounter, floorCounter
	if cfg.Concurrency == 1 {
		m, err = alternate(ctx, coord, branches, floorCli, floorPaths, floors, cfg, progress)
	} else {
		m, err = inRounds(ctx, coord, branches, floorCli, floorPaths, floors, keys, cfg, progress)
	}
	if err != nil {
		return res, err
	}
	// Acknowledgements, finalisation and cleanup belong to the transactions
	// too.
	if err := waitQuiet(ctx, floorCli, keys, cfg.Retention); err != nil {
		return res, err
	}
	counts := Diff(counter.Snapshot(), before)

	res.measured(m.load, m.elapsed)
	res.ElapsedSeconds = m.elapsed.Seconds()
	inWindows := res.Committed + res.Failed
	res.Failed += m.failedOutside
	res.Unmeasured = m.unmeasured
	n := float64(res.Committed + res.Failed + res.Unmeasured)
	res.EtcdRequestsPerTx = make(map[string]float64)
	for k, v := range counts {
		res.EtcdRequestsPerTx[k] = float64(v) / n
	}
	res.EtcdWritesPerTx = float64(Writes(counts)) / n
	res.EtcdWriteBytesPerTx = float64(counter.Bytes()-bytesBefore) / n
	cmps, ops := counter.Shape()
	res.EtcdComparesPerTx, res.EtcdOpsPerTx = float64(cmps-cmpsBefore)/n, float64(ops-opsBefore)/n
	if k := float64(len(m.path.lats)); k > 0 {
		res.PathFloorWriteBytesPerTx = float64(path.bytes) / k
		res.PathFloorComparesPerTx, res.PathFloorOpsPerTx = float64(path.compares)/k, float64(path.ops)/k
	}
	res.CPUmsPerTx, res.SyscallsPerTx, res.GoroutinesPerTx = m.used.per(inWindows)

	res.TxnPerSec = m.txnRate
	res.TxnP50ms = percentile(m.single, 50)
	// The design's writes per transaction, one request each: begin, N
	// votes, finalisation. Group commit sends fewer requests than that,
	// which is how the rate can pass the ceiling.
	res.CeilingTxPerSec = m.txnRate / float64(cfg.Participants+2)
	res.CeilingFraction = res.TxPerSec / res.CeilingTxPerSec
	if res.TxnP50ms > 0 {
		res.P50OverTxn = res.P50ms / res.TxnP50ms
	}
	res.PathFloorCPUmsPerTx, res.PathFloorSyscallsPerTx, res.PathFloorGoroutinesPerTx = m.path.used.per(len(m.path.lats))
	res.PathFloorConcurrency = cfg.Concurrency
	res.PathFloorP50ms, res.PathFloorP99ms = percentile(m.path.lats, 50), percentile(m.path.lats, 99)
	res.PathFloorTxPerSec = float64(len(m.path.lats)) / m.path.elapsed.Seconds()
	if res.TxnP50ms > 0 {
		res.PathFloorOverTxn = res.PathFloorP50ms / res.TxnP50ms
	}
	if res.PathFloorP50ms > 0 {
		res.P50OverPathFloor = res.P50ms / res.PathFloorP50ms
	}
	if res.PathFloorCPUmsPerTx > 0 {
		res.CPUOverPathFloor = res.CPUmsPerTx / res.PathFloorCPUmsPerTx
	}
	if res.PathFloorTxPerSec > 0 {
		res.TxPerSecOverPathFloor = res.TxPerSec / res.PathFloorTxPerSec
	}
	res.ProtocolFloor = res.floorFigures(m.protocol, proto)
	res.DesignFloor = res.floorFigures(m.design, design)
	if cfg.Concurrency == 1 {
		res.FloorBlock = block
	} else {
		res.FloorRounds = m.rounds
	}
	path.close() // before their keys go
	proto.close()
	design.close()
	_, _ = ccli.Delete(ctx, prefix+"/", clientv3.WithPrefix())
	_, _ = ccli.Delete(ctx, floors+"/", clientv3.WithPrefix())
	return res, nil
}

// measured is what a run measured: Concord's transactions, and the floors.
type measured struct {
	load    latencies
	elapsed time.Duration // the load's wall time
	used    usage         // what this process used during the load
	// unmeasured and failedOutside are how many transactions committed
	// and failed outside the load's measured windows (filling and
	// draining them, at a concurrency above 1); rounds, how many windows.
	unmeasured, failedOutside, rounds int

	txnRate  float64         // compare-and-swap Txns a second at the load's concurrency
	single   []time.Duration // one compare-and-swap Txn at a time
	path     floorRun        // the bare commit path
	protocol floorRun        // the protocol's floor
	design   floorRun        // the design's floor
}

// floorPaths are the bare paths a run measures beside the load.
type floorPaths struct {
	path, protocol, design *barePath
}

// run runs each bare path, c at a time, for n transactions or for d, and
// adds what each measured to m.
func (fp floorPaths) run(ctx context.Context, m *measured, c, n int, d time.Duration) error {
	for _, f := range []struct {
		name string
		p    *barePath
		into *floorRun
	}{{"commit path floor", fp.path, &m.path}, {"protocol floor", fp.protocol, &m.protocol}, {"design floor", fp.design, &m.design}} {
		if err := f.into.runFloor(ctx, f.p, c, n, d); err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
	}
	return nil
}

// floorRun is what the runs of a bare path measured: each transaction's
// latency, their wall time and what this process used meanwhile.
type floorRun struct {
	lats    []time.Duration
	elapsed time.Duration
	used    usage
}

// runFloor runs p, c at a time, for n transactions or for d, and adds
// what it measured to f.
func (f *floorRun) runFloor(ctx context.Context, p *barePath, c, n int, d time.Duration) error {
	if err := p.warm(ctx); err != nil {
		return err
	}
	used := processUsage()
	lats, took, err := p.run(ctx, c, n, d)
	if err != nil {
		return err
	}
	f.used.add(used)
	f.elapsed += took
	f.lats = append(f.lats, lats...)
	return nil
}

// floorFigures returns the figures of bare path p, which measured f,
// against the path floor's and Concord's in r.
func (r *Result) floorFigures(f floorRun, p *barePath) Floor {
	var x Floor
	if len(f.lats) == 0 {
		return x
	}
	k := float64(len(f.lats))
	x.TxPerSec = k / f.elapsed.Seconds()
	x.P50ms, x.P99ms = percentile(f.lats, 50), percentile(f.lats, 99)
	x.CPUmsPerTx, _, _ = f.used.per(len(f.lats))
	x.WriteBytesPerTx = float64(p.bytes) / k
	x.ComparesPerTx, x.OpsPerTx = float64(p.compares)/k, float64(p.ops)/k
	if r.PathFloorP50ms > 0 && r.PathFloorCPUmsPerTx > 0 {
		x.P50OverPathFloor = x.P50ms / r.PathFloorP50ms
		x.CPUOverPathFloor = x.CPUmsPerTx / r.PathFloorCPUmsPerTx
	}
	if x.P50ms > 0 && x.CPUmsPerTx > 0 {
		x.ConcordP50Over = r.P50ms / x.P50ms
		x.ConcordCPUOver = r.CPUmsPerTx / x.CPUmsPerTx
	}
	return x
}

// block is how many transactions each part of an alternating run takes
// before handing over to the next.
const block = 100

// alternate measures at concurrency 1, in alternating blocks: block
// transactions through Concord, then as many single compare-and-swap Txns,
// then as many transactions along each bare path, and again. A shared
// machine's speed drifts by tens of percent over seconds; measured in
// blocks a fraction of a second long, they all see the same machine, and
// their ratios mean what they say.
func alternate(ctx context.Context, coord *coordinator.Client, branches []protocol.Branch, cli *clientv3.Client, fp floorPaths, floors string, cfg Config, progress io.Writer) (measured, error) {
	var m measured
	workers, err := casWorkers(ctx, cli, floors, 1)
	if err != nil {
		return m, fmt.Errorf("floor: %w", err)
	}
	single := workers[0]
	var singleTime time.Duration
	start, shown := time.Now(), time.Now()
	for cfg.Transactions > 0 && len(m.load.ok)+m.load.failed < cfg.Transactions || cfg.Transactions == 0 && m.elapsed < cfg.Duration {
		n := block
		if cfg.Transactions > 0 {
			n = min(n, cfg.Transactions-len(m.load.ok)-m.load.failed)
		}
		used, t0 := processUsage(), time.Now()
		lat, err := runLoad(ctx, concordDo(coord, branches), 1, n)
		m.elapsed += time.Since(t0)
		m.used.add(used)
		m.load.ok = append(m.load.ok, lat.ok...)
		m.load.failed += lat.failed
		if err != nil && len(m.load.ok) == 0 {
			return m, err
		}

		t0 = time.Now()
		for range n {
			d, err := single.once(ctx)
			if err != nil {
				return m, fmt.Errorf("floor: %w", err)
			}
			m.single = append(m.single, d)
		}
		singleTime += time.Since(t0)

		if err := fp.run(ctx, &m, 1, n, 0); err != nil {
			return m, err
		}

		if time.Since(shown) >= time.Second {
			shown = time.Now()
			fmt.Fprintf(progress, "%6.1fs  %8d committed  %8.0f tx/s   p50 %.2f ms; between blocks: one Txn p50 %.2f ms, bare path p50 %.2f ms\n",
				time.Since(start).Seconds(), len(m.load.ok), float64(len(m.load.ok))/m.elapsed.Seconds(), percentile(m.load.ok, 50), percentile(m.single, 50), percentile(m.path.lats, 50))
		}
	}
	m.txnRate = float64(len(m.single)) / singleTime.Seconds()
	return m, nil
}

// etcdFor returns endpoints if given; otherwise it starts an embedded
// single-node etcd in a temporary directory and returns its endpoints and
// how to stop it and remove the directory.
func etcdFor(endpoints []string) ([]string, func(), error) {
	if len(endpoints) > 0 {
		return endpoints, func() {}, nil
	}
	dir, err := os.MkdirTemp("", "concord-bench-")
	if err != nil {
		return nil, nil, err
	}
	srv, err := startEmbedded(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return srv.Endpoints(), func() {
		srv.Close()
		os.RemoveAll(dir)
	}, nil
}

// startEmbedded starts the embedded etcd of `coord serve`, but with
// compaction off and etcd's default quota, in dir, on two loopback ports
// free at the time of the call.
func startEmbedded(dir string) (*embedded.Server, error) {
	clientURL, peerURL, err := embedded.LoopbackURLs()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return embedded.Start(ctx, embedded.Config{Dir: dir, ClientURL: clientURL, PeerURL: peerURL, AutoCompaction: "0"})
}

type latencies struct {
	ok     []time.Duration
	failed int
}

// doFunc runs one transaction to its decision and says whether it
// committed; id names it in errors.
type doFunc func(ctx context.Context) (committed bool, id string, err error)

// concordDo runs transactions of branches through coord.
func concordDo(coord *coordinator.Client, branches []protocol.Branch) doFunc {
	return func(ctx context.Context) (bool, string, error) {
		out, err := coord.Do(ctx, coordinator.Request{Branches: branches})
		if err == nil && !out.Committed() {
			err = fmt.Errorf("%v", out.State)
		}
		return err == nil, out.ID, err
	}
}

// runLoad runs total transactions with c workers.
func runLoad(ctx context.Context, do doFunc, c, total int) (latencies, error) {
	var (
		mu       sync.Mutex
		lat      latencies
		firstErr error
		issued   atomic.Int64
		wg       sync.WaitGroup
	)
	for range c {
		wg.Go(func() {
			for ctx.Err() == nil && issued.Add(1) <= int64(total) {
				t0 := time.Now()
				committed, id, err := do(ctx)
				took := time.Since(t0)
				mu.Lock()
				if !committed {
					lat.failed++
					if firstErr == nil {
						firstErr = fmt.Errorf("transaction %s: %w", id, err)
					}
				} else {
					lat.ok = append(lat.ok, took)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return lat, firstErr
}

// waitQuiet waits until every transaction is finalised (no inbox key is
// left) and deleted (no record or vote is left), which takes retention.
func waitQuiet(ctx context.Context, cli *clientv3.Client, keys protocol.Keys, retention time.Duration) error {
	return waitFor(ctx, cli, keys, retention, true)
}

// waitFor waits until no inbox key is left and, if deleted, no record or
// vote either.
func waitFor(ctx context.Context, cli *clientv3.Client, keys protocol.Keys, retention time.Duration, deleted bool) error {
	start, end := keys.Records()
	count := func(key string, opts ...clientv3.OpOption) (int64, error) {
		resp, err := cli.Get(ctx, key, append(opts, clientv3.WithCountOnly())...)
		if err != nil {
			return 0, err
		}
		return resp.Count, nil
	}
	deadline := time.Now().Add(retention + time.Minute)
	for {
		inbox, err := count(keys.Inboxes(), clientv3.WithPrefix())
		if err != nil {
			return err
		}
		var records int64
		if deleted {
			if records, err = count(start, clientv3.WithRange(end)); err != nil {
				return err
			}
		}
		if inbox == 0 && records == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d inbox keys and %d records and votes still there %v after the load", inbox, records, retention+time.Minute)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// casWorkers returns c compare-and-swap workers, one key each under
// floors, each having run one Txn to learn its key's revision: a worker's
// first Txn fails its compare and writes nothing, and is not measured.
func casWorkers(ctx context.Context, cli *clientv3.Client, floors string, c int) ([]*cas, error) {
	workers := make([]*cas, c)
	for w := range workers {
		workers[w] = &cas{cli: cli, key: fmt.Sprintf("%s/cas/%d", floors, w)}
		if _, err := workers[w].once(ctx); err != nil {
			return nil, err
		}
	}
	return workers, nil
}

// casFloor runs plain compare-and-swap Txns through workers, each one at a
// time, for d: the cheapest guarded write etcd offers. It returns each
// Txn's latency and how long they ran.
func casFloor(ctx context.Context, workers []*cas, d time.Duration) ([]time.Duration, time.Duration, error) {
	runCtx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		mu   sync.Mutex
		lats []time.Duration
		errs atomic.Int64
		wg   sync.WaitGroup
	)
	start := time.Now()
	for _, worker := range workers {
		wg.Go(func() {
			var local []time.Duration
			for runCtx.Err() == nil {
				d, err := worker.once(runCtx)
				if err != nil {
					if runCtx.Err() == nil {
						errs.Add(1)
					}
					continue
				}
				local = append(local, d)
			}
			mu.Lock()
			lats = append(lats, local...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if len(lats) == 0 {
		return nil, elapsed, fmt.Errorf("no Txn succeeded (%d errors)", errs.Load())
	}
	return lats, elapsed, nil
}

// cas is compare-and-swap Txns on one key, one at a time.
type cas struct {
	cli *clientv3.Client
	key string
	rev int64 // the key's ModRevision as last seen
}

// once runs one Txn and returns how long it took.
func (c *cas) once(ctx context.Context) (time.Duration, error) {
	t0 := time.Now()
	resp, err := c.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(c.key), "=", c.rev)).
		Then(clientv3.OpPut(c.key, "v")).Else(clientv3.OpGet(c.key)).Commit()
	if err != nil {
		return 0, err
	}
	took := time.Since(t0)
	if resp.Succeeded {
		c.rev = resp.Header.Revision
	} else if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
		c.rev = kvs[0].ModRevision
	}
	return took, nil
}

func percentile(ds []time.Duration, p float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p / 100)
	return float64(s[i].Microseconds()) / 1000
}

package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"time"

	"github.com/concord-tx/concord/httpapi"
	"github.com/concord-tx/concord/internal/flowcontrol"
	"github.com/concord-tx/concord/protocol"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

// DeployedConfig says what to run in the deployed shape: `coord serve`
// (on its embedded etcd) and Participants demo banks (`demo-participant
// serve`), each a process of its own, with transactions sent to coord's
// HTTP API.
type DeployedConfig struct {
	Participants int           // banks per transaction
	Concurrency  int           // transactions in flight
	Transactions int           // how many to run; 0: run for Duration
	Duration     time.Duration // with Transactions 0
	// Retention is coord serve's --retention (0: DefaultRetention); the run
	// waits until every finished transaction is deleted, so the request
	// counts include the cleanup, as Run's do.
	Retention time.Duration
	// Participant is what the participants are: ParticipantBank (the
	// default) or ParticipantYes.
	Participant string
	// CoordBin and ParticipantBin are the binaries of coord and of the
	// participant; empty: both are built with `go build` into the run's
	// temporary directory, which needs the module's source in the working
	// directory.
	CoordBin, ParticipantBin string
	Progress                 io.Writer // progress lines; nil: none
}

// DeployedResult is one deployed run's figures. etcd's requests, watch
// responses, raft proposals and WAL fsyncs are read from the embedded
// etcd's own /metrics before and after (its server-side counters; the
// requests this benchmark makes to wait for the cleanup are taken out).
// CPU is each child process's user and system time over the load once
// steady (see steady), from /proc/<pid>/stat.
type DeployedResult struct {
	Load

	// Unary requests etcd served, by gRPC method (Txn, Range, ...).
	EtcdRequestsPerTx map[string]float64 `json:"etcd_requests_per_tx"`
	// Raft proposals etcd committed: its writes, whichever request made them.
	EtcdWritesPerTx     float64 `json:"etcd_writes_per_tx"`
	WatchResponsesPerTx float64 `json:"watch_responses_per_tx"`
	WALFsyncsPerTx      float64 `json:"wal_fsyncs_per_tx"`

	// CPUmsPerTx is the servers' CPU per transaction: coord serve (its
	// embedded etcd included) and the participants' processes.
	CPUmsPerTx float64      `json:"cpu_ms_per_tx"`
	Processes  []ProcessCPU `json:"processes"`
	// ClientCPUmsPerTx is this process's: the HTTP client sending the load.
	ClientCPUmsPerTx float64 `json:"client_cpu_ms_per_tx"`

	Participant    string  `json:"participant"` // what the participants are
	Binaries       string  `json:"binaries"`    // built where, or given
	ElapsedSeconds float64 `json:"elapsed_s"`
}

// ProcessCPU is one server process's CPU per transaction and its share of
// the servers' total.
type ProcessCPU struct {
	Name       string  `json:"name"`
	PID        int     `json:"pid"`
	CPUmsPerTx float64 `json:"cpu_ms_per_tx"`
	Share      float64 `json:"share"`
}

// The participants the deployed benchmark can run.
const (
	// ParticipantBank is the demo bank, `demo-participant serve`, with a
	// bbolt store: a participant as a user would write one, whose store
	// syncs each prepare and commit to its disk.
	ParticipantBank = "bank"
	// ParticipantYes is a participant whose handlers do nothing
	// (./yesparticipant): Concord's own cost, as in the in-process
	// benchmark.
	ParticipantYes = "yes"
)

// deployedBalance is each bank account's opening balance: a transaction
// moves 1, so no run can run out of it and every vote is yes.
const deployedBalance = 1 << 50

// RunDeployed runs the benchmark in the deployed shape. The child
// processes are stopped (SIGTERM, then SIGKILL after a grace period) before
// it returns, whether the run ends, fails or ctx is cancelled.
func RunDeployed(ctx context.Context, cfg DeployedConfig) (res DeployedResult, err error) {
	if err := checkLoad(cfg.Participants, cfg.Concurrency, cfg.Transactions, cfg.Duration, cfg.Retention); err != nil {
		return res, err
	}
	switch {
	case cfg.Participant != "" && cfg.Participant != ParticipantBank && cfg.Participant != ParticipantYes:
		return res, fmt.Errorf("participant: %q, expected %s or %s", cfg.Participant, ParticipantBank, ParticipantYes)
	case (cfg.CoordBin == "") != (cfg.ParticipantBin == ""):
		return res, errors.New("coord and participant binaries: give both paths, or neither to build them")
	}
	if cfg.Retention == 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.Participant == "" {
		cfg.Participant = ParticipantBank
	}
	progress := cfg.Progress
	if progress == nil {
		progress = io.Discard
	}
	res = DeployedResult{Load: Load{Participants: cfg.Participants, Concurrency: cfg.Concurrency}, Participant: "demo-participant serve (bbolt store, balances of 2^50)"}
	if cfg.Participant == ParticipantYes {
		res.Participant = "yesparticipant (handlers that do nothing)"
	}
	dir, err := os.MkdirTemp("", "concord-bench-deployed-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	coordBin, bankBin := cfg.CoordBin, cfg.ParticipantBin
	if coordBin == "" {
		if coordBin, bankBin, err = buildBinaries(ctx, dir, cfg.Participant, progress); err != nil {
			return res, err
		}
		res.Binaries = "built with go build into " + dir
	} else {
		res.Binaries = "given: " + coordBin + ", " + bankBin
	}

	// Free loopback ports: coord's API, etcd's client and peer URLs, and
	// each bank's HTTP address.
	addrs, err := loopbackAddrs(3 + cfg.Participants)
	if err != nil {
		return res, err
	}
	apiURL, etcdURL := "http://"+addrs[0], "http://"+addrs[1]
	var children []*child
	defer func() {
		// Participants first: they revoke their leases on coord's etcd.
		for i := len(children) - 1; i >= 0; i-- {
			if serr := children[i].stop(); serr != nil && err == nil {
				err = serr
			}
		}
	}()
	coord, err := startChild(dir, "coord", coordBin, "serve",
		"--listen", addrs[0], "--embedded-client-url", etcdURL, "--embedded-peer-url", "http://"+addrs[2],
		"--data-dir", filepath.Join(dir, "etcd"), "--retention", cfg.Retention.String(), "--log-level", "warn")
	if err != nil {
		return res, err
	}
	children = append(children, coord)
	hc := &http.Client{Transport: keepAlive(cfg.Concurrency)}
	defer hc.CloseIdleConnections()
	api, err := httpapi.NewClient(apiURL, httpapi.WithHTTPClient(hc))
	if err != nil {
		return res, err
	}
	fmt.Fprintf(progress, "coord serve (pid %d) starting: API %s, embedded etcd %s\n", coord.pid(), apiURL, etcdURL)
	if err := coord.await(ctx, func(ctx context.Context) error { _, err := api.Health(ctx); return err }); err != nil {
		return res, err
	}
	branches := make([]httpapi.BranchRequest, cfg.Participants)
	for i := range branches {
		name := fmt.Sprintf("bank-%d", i)
		args := []string{"serve", "--name", name, "--etcd", etcdURL,
			"--db", filepath.Join(dir, name+".db"), "--listen", addrs[3+i],
			"--accounts", fmt.Sprintf("a=%d,b=%d", deployedBalance, deployedBalance), "--log-level", "warn"}
		if cfg.Participant == ParticipantYes {
			name = fmt.Sprintf("yes-%d", i)
			args = []string{"--name", name, "--etcd", etcdURL, "--listen", addrs[3+i], "--workers", fmt.Sprint(max(32, cfg.Concurrency))}
		}
		bank, err := startChild(dir, name, bankBin, args...)
		if err != nil {
			return res, err
		}
		children = append(children, bank)
		fmt.Fprintf(progress, "%s: %s (pid %d) starting at %s\n", name, res.Participant, bank.pid(), addrs[3+i])
		if err := bank.await(ctx, healthy(hc, "http://"+addrs[3+i]+"/healthz")); err != nil {
			return res, err
		}
		// The first bank pays, the others are paid: every vote is yes.
		move := `{"account":"b","amount":1}`
		if i == 0 {
			move = fmt.Sprintf(`{"account":"a","amount":%d}`, -(cfg.Participants - 1))
		}
		branches[i] = httpapi.BranchRequest{Participant: name, Payload: json.RawMessage(move)}
	}
	do := func(ctx context.Context) (bool, string, error) {
		out, err := api.Do(ctx, httpapi.BeginRequest{Branches: branches})
		if err == nil && out.State != protocol.StateCommitted {
			err = fmt.Errorf("%v: %s", out.State, out.Reason)
		}
		return err == nil, out.ID, err
	}

	// This benchmark's own etcd client waits for the cleanup; its requests
	// are counted, to be taken out of etcd's.
	counter := NewCounter()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints: []string{etcdURL}, DialTimeout: 5 * time.Second, Logger: zap.NewNop(),
		DialOptions: append(flowcontrol.DialOptions(), grpc.WithChainUnaryInterceptor(counter.Interceptor())),
	})
	if err != nil {
		return res, err
	}
	defer cli.Close()
	keys, err := protocol.NewKeys(protocol.DefaultPrefix)
	if err != nil {
		return res, err
	}
	if _, err := runLoad(ctx, do, min(cfg.Concurrency, 8), 50); err != nil {
		return res, fmt.Errorf("warm-up: %w", err)
	}
	if err := waitQuiet(ctx, cli, keys, cfg.Retention); err != nil {
		return res, err
	}

	metricsURL := etcdURL + "/metrics"
	before, err := scrapeEtcd(ctx, hc, metricsURL)
	if err != nil {
		return res, err
	}
	ours := counter.Snapshot()
	fmt.Fprintf(progress, "running transactions at concurrency %d through %s\n", cfg.Concurrency, apiURL)
	var (
		cpu0, cpu1  []time.Duration
		cpuErr      error
		self0, self time.Duration
	)
	w, err := steady(ctx, do, cfg.Concurrency, warmFor(cfg.Retention), cfg.Transactions, cfg.Duration, progress, func(open bool) {
		var cpu []time.Duration
		var err error
		if cpu, err = childrenCPU(children); err != nil && cpuErr == nil {
			cpuErr = err
		}
		if open {
			cpu0, self0 = cpu, processCPU()
		} else {
			cpu1, self = cpu, processCPU()-self0
		}
	})
	lat, elapsed := w.lat, w.elapsed
	if ctx.Err() != nil {
		return res, fmt.Errorf("stopped after %d committed transactions: %w", len(lat.ok), context.Cause(ctx))
	}
	if err != nil && len(lat.ok) == 0 {
		return res, err
	}
	if cpuErr != nil {
		return res, cpuErr
	}
	fmt.Fprintf(progress, "waiting for every transaction's finalisation and cleanup (--retention %v)\n", cfg.Retention)
	if err := waitQuiet(ctx, cli, keys, cfg.Retention); err != nil {
		return res, err
	}
	after, err := scrapeEtcd(ctx, hc, metricsURL)
	if err != nil {
		return res, err
	}
	// Our own waiting: Ranges (count only) and nothing else.
	ownRanges := float64(Diff(counter.Snapshot(), ours)["Range"])

	res.measured(lat, elapsed)
	res.ElapsedSeconds = elapsed.Seconds()
	// etcd's counters are over every transaction run; CPU over the window.
	inWindow := float64(res.Committed + res.Failed)
	if inWindow == 0 {
		return res, fmt.Errorf("no transaction ended in the measured window (%v): run longer", elapsed)
	}
	res.Failed += w.failedOutside
	res.Unmeasured = w.unmeasured
	n := float64(res.Committed + res.Failed + res.Unmeasured)
	res.EtcdRequestsPerTx = make(map[string]float64)
	for method, v := range after.requests {
		d := v - before.requests[method]
		if method == "Range" {
			d -= ownRanges
		}
		if d > 0 {
			res.EtcdRequestsPerTx[method] = d / n
		}
	}
	res.EtcdWritesPerTx = (after.proposals - before.proposals) / n
	res.WatchResponsesPerTx = (after.watchResponses - before.watchResponses) / n
	res.WALFsyncsPerTx = (after.fsyncs - before.fsyncs) / n
	var total time.Duration
	for i := range children {
		total += cpu1[i] - cpu0[i]
	}
	for i, c := range children {
		used := cpu1[i] - cpu0[i]
		p := ProcessCPU{Name: c.name, PID: c.pid(), CPUmsPerTx: ms(used) / inWindow}
		if total > 0 {
			p.Share = float64(used) / float64(total)
		}
		res.Processes = append(res.Processes, p)
	}
	res.CPUmsPerTx = ms(total) / inWindow
	res.ClientCPUmsPerTx = ms(self) / inWindow
	return res, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// keepAlive is an HTTP transport that keeps a connection per worker, so
// that every request goes on a kept-alive connection (Go's default keeps
// two per host, which at higher concurrency would open a new one for most
// requests).
func keepAlive(concurrency int) *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = concurrency + 16
	tr.MaxIdleConnsPerHost = concurrency + 16
	return tr
}

// healthy returns a check that GET url answers 200.
func healthy(hc *http.Client, url string) func(context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	}
}

// buildBinaries builds coord and the participant's binary into dir.
func buildBinaries(ctx context.Context, dir, participant string, progress io.Writer) (coord, other string, err error) {
	const module = "github.com/concord-tx/concord/cmd/"
	pkg := module + "demo-participant"
	if participant == ParticipantYes {
		pkg = module + "coord/internal/bench/yesparticipant"
	}
	fmt.Fprintf(progress, "building coord and %s with go build into %s\n", path.Base(pkg), dir)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+string(filepath.Separator), module+"coord", pkg)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", "", fmt.Errorf("go build of coord and %s (run from the module's directory, or give both binaries' paths): %w\n%s", path.Base(pkg), err, out)
	}
	return filepath.Join(dir, "coord"), filepath.Join(dir, path.Base(pkg)), nil
}

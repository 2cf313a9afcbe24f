package bench

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// A short run of the deployed shape: every transaction commits through
// coord serve's HTTP API and two demo banks of their own; etcd's counts
// per transaction are within what the commit path can send; every
// process's CPU is counted; and no process is left behind, after a run or
// after one that is cancelled (as SIGINT does).
func TestRunDeployed(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the deployed benchmark reads /proc: Linux only")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	coord, bank, err := buildBinaries(ctx, t.TempDir(), ParticipantBank, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	const n, participants = 200, 2
	res, err := RunDeployed(ctx, DeployedConfig{Participants: participants, Concurrency: 4, Transactions: n, CoordBin: coord, ParticipantBin: bank, Progress: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	if res.Committed != n || res.Failed != 0 || res.TxPerSec <= 0 || res.P50ms <= 0 || res.P99ms < res.P50ms {
		t.Fatalf("committed %d, failed %d, %.0f tx/s, p50 %.2f ms, p99 %.2f ms", res.Committed, res.Failed, res.TxPerSec, res.P50ms, res.P99ms)
	}
	// At most a begin, a vote per participant, a finalisation and a
	// cleanup each, unbatched (2N+1 with the cleanup shared); at least one
	// write each (their begins may share a Txn, but not their votes' with
	// each other's at concurrency 4).
	if w := res.EtcdWritesPerTx; w < 1 || w > 2*participants+1 {
		t.Errorf("etcd writes per transaction %.3f, want 1 to 2N+1 = %d", w, 2*participants+1)
	}
	if txn := res.EtcdRequestsPerTx["Txn"]; txn < 1 || txn > 2*participants+1 {
		t.Errorf("etcd Txn requests per transaction %.3f, want 1 to 2N+1 (all: %v)", txn, res.EtcdRequestsPerTx)
	}
	// Our own waiting was taken out of the reads: what is left is the
	// services' own (health checks, catching up), far below one per
	// transaction.
	if r := res.EtcdRequestsPerTx["Range"]; r > 1 {
		t.Errorf("etcd Range requests per transaction %.3f, want under 1", r)
	}
	// Each transaction's begin reaches both banks, and its decision too;
	// a response may carry several transactions' events, so no lower bound
	// but one, and no more than every watcher (2 banks, coord's client and
	// replica) getting each of the ~8 events of a transaction alone.
	if w := res.WatchResponsesPerTx; w < 1 || w > 32 {
		t.Errorf("watch responses per transaction %.2f, want 1 to 32", w)
	}
	if f := res.WALFsyncsPerTx; f <= 0 || f > res.EtcdWritesPerTx+0.5 {
		t.Errorf("WAL fsyncs per transaction %.3f, want more than 0 and at most the writes (%.3f)", f, res.EtcdWritesPerTx)
	}
	names := []string{"coord", "bank-0", "bank-1"}
	if len(res.Processes) != len(names) {
		t.Fatalf("processes %+v, want %v", res.Processes, names)
	}
	var shares float64
	for i, p := range res.Processes {
		if p.Name != names[i] || p.CPUmsPerTx <= 0 || p.PID <= 0 {
			t.Errorf("process %d: %+v, want %s with its CPU counted", i, p, names[i])
		}
		shares += p.Share
	}
	if math.Abs(shares-1) > 0.01 || res.CPUmsPerTx <= 0 {
		t.Errorf("CPU per transaction %.2f ms, shares sum to %.3f", res.CPUmsPerTx, shares)
	}
	noChildren(t)

	// Participants that do nothing, in processes of their own.
	coord, yes, err := buildBinaries(ctx, t.TempDir(), ParticipantYes, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	res, err = RunDeployed(ctx, DeployedConfig{Participants: participants, Concurrency: 4, Transactions: 100, Participant: ParticipantYes, CoordBin: coord, ParticipantBin: yes, Progress: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Committed != 100 || len(res.Processes) != 3 || res.Processes[1].Name != "yes-0" || res.EtcdWritesPerTx < 1 || res.EtcdWritesPerTx > 2*participants+1 {
		t.Errorf("yes participants: %+v", res)
	}
	noChildren(t)

	// Cancelled during the load: it stops, and so do the processes.
	lctx, stop := context.WithCancel(ctx)
	defer stop()
	_, err = RunDeployed(lctx, DeployedConfig{Participants: participants, Concurrency: 2, Duration: time.Minute, CoordBin: coord, ParticipantBin: bank,
		Progress: &cancelOn{t: t, line: "committed", cancel: stop}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled run: %v, want context.Canceled", err)
	}
	noChildren(t)

	for _, bad := range []DeployedConfig{{Participants: 0, Concurrency: 1, Transactions: 1}, {Participants: 2, Concurrency: 1}, {Participants: 2, Concurrency: 1, Transactions: 1, CoordBin: coord}} {
		if _, err := RunDeployed(ctx, bad); err == nil {
			t.Errorf("config %+v accepted", bad)
		}
	}
}

// noChildren fails unless this process has no child processes, exited or
// not (a zombie is one that was not waited for).
func noChildren(t *testing.T) {
	t.Helper()
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range stats {
		b, err := os.ReadFile(path)
		i := strings.LastIndexByte(string(b), ')')
		if err != nil || i < 0 {
			continue // gone meanwhile
		}
		fields := strings.Fields(string(b[i+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(os.Getpid()) {
			t.Errorf("process left behind: %s", b[:i+1])
		}
	}
}

// testWriter writes progress lines to the test's log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// cancelOn logs progress and cancels when a line holds line.
type cancelOn struct {
	t      *testing.T
	line   string
	cancel context.CancelFunc
	mu     sync.Mutex
}

func (c *cancelOn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t.Log(strings.TrimSpace(string(b)))
	if strings.Contains(string(b), c.line) {
		c.cancel()
	}
	return len(b), nil
}

package bench

import (
	"context"
	"math"
	"runtime"
	"testing"
	"time"

	"github.com/concord-tx/concord/internal/testkit/leaktest"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

// A short run: every transaction commits, requests are counted, and the
// commit path stays within N+2 writes a transaction even unbatched.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := Run(ctx, Config{Participants: 3, Concurrency: 4, Transactions: 200, Payload: 100})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	if res.Committed != 200 || res.Failed != 0 {
		t.Fatalf("committed %d, failed %d", res.Committed, res.Failed)
	}
	// Above concurrency 1 the load takes turns with the floors, measured
	// once steady: more transactions run than are measured.
	if res.FloorRounds != rounds || res.FloorBlock != 0 || res.Unmeasured < 1 {
		t.Errorf("floor rounds %d, floor block %d, unmeasured %d; want %d rounds and some unmeasured", res.FloorRounds, res.FloorBlock, res.Unmeasured, rounds)
	}
	// Fewer transactions than rounds: a round each, of one.
	few, err := Run(ctx, Config{Participants: 2, Concurrency: 2, Transactions: 3})
	if err != nil || few.Committed != 3 || few.FloorRounds != 3 || few.CPUmsPerTx <= 0 {
		t.Errorf("3 transactions at concurrency 2: %d committed in %d rounds, CPU %.2f ms/tx, %v", few.Committed, few.FloorRounds, few.CPUmsPerTx, err)
	}
	if res.EtcdWritesPerTx <= 0 || res.EtcdWritesPerTx > float64(2*3+1) {
		t.Errorf("etcd writes per transaction %.2f, want (0, 2N+1]", res.EtcdWritesPerTx)
	}
	// Each begin writes every branch's payload (base64 in Concord's
	// messages); the path floor's begin writes N+1 values of 256+payload
	// bytes.
	if res.EtcdWriteBytesPerTx < 3*100 || res.PathFloorWriteBytesPerTx < 4*(256+100) {
		t.Errorf("write bytes per transaction %.0f, path floor %.0f: below the payloads they carry", res.EtcdWriteBytesPerTx, res.PathFloorWriteBytesPerTx)
	}
	// The path floor's begin compares once and writes N+1 keys; each of
	// its N votes compares once and writes one. Concord's writes hold at
	// least as much.
	// Exactly: the floors' first transaction, which warms their watches,
	// is left out of their counts as of their times.
	if !near(res.PathFloorComparesPerTx, 4) || !near(res.PathFloorOpsPerTx, 7) ||
		res.EtcdComparesPerTx < res.PathFloorComparesPerTx || res.EtcdOpsPerTx < res.PathFloorOpsPerTx {
		t.Errorf("compares and ops per transaction %.2f, %.2f; path floor %.2f, %.2f (want 4, 7)", res.EtcdComparesPerTx, res.EtcdOpsPerTx, res.PathFloorComparesPerTx, res.PathFloorOpsPerTx)
	}
	// The protocol's floor: a begin of one compare and N+1 puts; N votes
	// of three compares (fence, record, vote) and N-1 nested ones (the
	// other votes), writing the vote, or the vote, the decided record and
	// N commit messages, else reading the vote.
	if n := 3.0; !near(res.ProtocolFloor.ComparesPerTx, 1+n*(n+2)) || !near(res.ProtocolFloor.OpsPerTx, n+1+n*(n+4)) || res.ProtocolFloor.WriteBytesPerTx <= res.PathFloorWriteBytesPerTx {
		t.Errorf("protocol floor: %.2f compares, %.2f ops, %.0f bytes per transaction (want 16, 25, above the path floor's %.0f)", res.ProtocolFloor.ComparesPerTx, res.ProtocolFloor.OpsPerTx, res.ProtocolFloor.WriteBytesPerTx, res.PathFloorWriteBytesPerTx)
	}
	checkDesignFloor(t, 3, res)
	if df := res.DesignFloor; df.TxPerSec <= 0 || df.P99ms < df.P50ms || df.P50ms < res.TxnP50ms/2 || df.CPUmsPerTx <= 0 {
		t.Errorf("design floor: %.0f tx/s, p50 %.2f ms, p99 %.2f ms, CPU %.2f ms/tx", df.TxPerSec, df.P50ms, df.P99ms, df.CPUmsPerTx)
	}
	if res.ProtocolFloor.TxPerSec <= 0 || res.ProtocolFloor.P99ms < res.ProtocolFloor.P50ms || res.ProtocolFloor.P50ms < res.TxnP50ms/2 || res.ProtocolFloor.CPUmsPerTx <= 0 {
		t.Errorf("protocol floor: %.0f tx/s, p50 %.2f ms, p99 %.2f ms, CPU %.2f ms/tx", res.ProtocolFloor.TxPerSec, res.ProtocolFloor.P50ms, res.ProtocolFloor.P99ms, res.ProtocolFloor.CPUmsPerTx)
	}
	if res.EtcdRequestsPerTx["Txn"] == 0 || res.TxnPerSec <= 0 || res.TxnP50ms <= 0 || res.P50ms <= 0 {
		t.Errorf("missing figures: %+v", res)
	}
	// The path starts with a Txn: its p50 cannot be far below one Txn's.
	if res.PathFloorP50ms < res.TxnP50ms/2 || res.PathFloorOverTxn <= 0 {
		t.Errorf("commit path floor p50 %.2f ms (%.2fx one Txn of %.2f ms): below what one Txn takes", res.PathFloorP50ms, res.PathFloorOverTxn, res.TxnP50ms)
	}
	// The path floor ran at the load's concurrency, and the ratios are of
	// the figures printed.
	if res.PathFloorConcurrency != 4 || res.PathFloorTxPerSec <= 0 || res.PathFloorP99ms < res.PathFloorP50ms || res.PathFloorCPUmsPerTx <= 0 {
		t.Errorf("path floor at concurrency %d: %.0f tx/s, p50 %.2f ms, p99 %.2f ms, CPU %.2f ms/tx", res.PathFloorConcurrency, res.PathFloorTxPerSec, res.PathFloorP50ms, res.PathFloorP99ms, res.PathFloorCPUmsPerTx)
	}
	for _, r := range []struct {
		name      string
		got, want float64
	}{
		{"p50 over the path floor's", res.P50OverPathFloor, res.P50ms / res.PathFloorP50ms},
		{"CPU over the path floor's", res.CPUOverPathFloor, res.CPUmsPerTx / res.PathFloorCPUmsPerTx},
		{"throughput over the path floor's", res.TxPerSecOverPathFloor, res.TxPerSec / res.PathFloorTxPerSec},
		{"the protocol floor's p50 over the path floor's", res.ProtocolFloor.P50OverPathFloor, res.ProtocolFloor.P50ms / res.PathFloorP50ms},
		{"the protocol floor's CPU over the path floor's", res.ProtocolFloor.CPUOverPathFloor, res.ProtocolFloor.CPUmsPerTx / res.PathFloorCPUmsPerTx},
		{"p50 over the protocol floor's", res.ProtocolFloor.ConcordP50Over, res.P50ms / res.ProtocolFloor.P50ms},
		{"CPU over the protocol floor's", res.ProtocolFloor.ConcordCPUOver, res.CPUmsPerTx / res.ProtocolFloor.CPUmsPerTx},
		{"the design floor's p50 over the path floor's", res.DesignFloor.P50OverPathFloor, res.DesignFloor.P50ms / res.PathFloorP50ms},
		{"the design floor's CPU over the path floor's", res.DesignFloor.CPUOverPathFloor, res.DesignFloor.CPUmsPerTx / res.PathFloorCPUmsPerTx},
		{"p50 over the design floor's", res.DesignFloor.ConcordP50Over, res.P50ms / res.DesignFloor.P50ms},
		{"CPU over the design floor's", res.DesignFloor.ConcordCPUOver, res.CPUmsPerTx / res.DesignFloor.CPUmsPerTx},
	} {
		if r.got != r.want || r.got <= 0 {
			t.Errorf("%s: %v, want %v", r.name, r.got, r.want)
		}
	}
	if want := res.TxnPerSec / 5; res.CeilingTxPerSec != want {
		t.Errorf("ceiling %.1f, want floor/(N+2) = %.1f", res.CeilingTxPerSec, want)
	}
	// At concurrency 1 the floors are measured between blocks of the load.
	one, err := Run(ctx, Config{Participants: 2, Concurrency: 1, Transactions: 150})
	if err != nil {
		t.Fatal(err)
	}
	if one.Committed != 150 || one.Failed != 0 || one.Unmeasured != 0 || one.FloorBlock != block || one.FloorRounds != 0 || one.PathFloorConcurrency != 1 {
		t.Fatalf("concurrency 1: committed %d (%d unmeasured), failed %d, floor block %d, rounds %d", one.Committed, one.Unmeasured, one.Failed, one.FloorBlock, one.FloorRounds)
	}
	if one.TxnP50ms <= 0 || one.TxnPerSec <= 0 || one.PathFloorP50ms < one.TxnP50ms/2 || one.P50OverTxn <= 0 || one.ProtocolFloor.P50ms < one.TxnP50ms/2 || one.ProtocolFloor.ConcordP50Over <= 0 || one.DesignFloor.P50ms < one.TxnP50ms/2 || one.DesignFloor.ConcordP50Over <= 0 {
		t.Errorf("concurrency 1: missing figures: %+v", one)
	}
	checkDesignFloor(t, 2, one)
	// Each transaction's requests and watch events are read and written by
	// this process (etcd runs here), and Linux counts them.
	if runtime.GOOS == "linux" && (one.SyscallsPerTx < 10 || one.PathFloorSyscallsPerTx < 5) {
		t.Errorf("concurrency 1: %.1f system calls per transaction, %.1f on the path floor: too few to be counted", one.SyscallsPerTx, one.PathFloorSyscallsPerTx)
	}
	// etcd starts a goroutine per request it serves, so the bare path
	// starts about three per transaction. Concord's own are kept for the
	// next transaction (its runners and senders), or fire only when a
	// transaction is slow (an acknowledgement's timer, a hedged request):
	// at most a few more per transaction than etcd's.
	if one.PathFloorGoroutinesPerTx < 2 || one.GoroutinesPerTx < one.PathFloorGoroutinesPerTx-1 || one.GoroutinesPerTx > one.PathFloorGoroutinesPerTx+4 {
		t.Errorf("concurrency 1: %.2f goroutines started per transaction, %.2f on the path floor; want at least 2 on the path floor and within -1..+4 of it", one.GoroutinesPerTx, one.PathFloorGoroutinesPerTx)
	}
	if one.EtcdWritesPerTx < 2 || one.EtcdWritesPerTx > 4 {
		t.Errorf("concurrency 1: %.2f etcd writes per transaction, want 2 to N+2 (the floors' are not counted)", one.EtcdWritesPerTx)
	}
	for _, bad := range []Config{{Participants: 0, Concurrency: 1, Transactions: 1}, {Participants: 2, Concurrency: 0, Transactions: 1}, {Participants: 2, Concurrency: 1}} {
		if _, err := Run(ctx, bad); err == nil {
			t.Errorf("config %+v accepted", bad)
		}
	}
}

// BenchmarkCommit runs b.N two-participant transactions end to end on an
// embedded etcd and reports, besides ns/op (wall time per transaction at
// that concurrency), the etcd write requests and latency per transaction.
func BenchmarkCommit(b *testing.B) {
	for _, c := range []int{1, 64} {
		b.Run(map[int]string{1: "concurrency-1", 64: "concurrency-64"}[c], func(b *testing.B) {
			res, err := Run(context.Background(), Config{Participants: 2, Concurrency: c, Transactions: max(b.N, c)})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(res.EtcdWritesPerTx, "writes/tx")
			b.ReportMetric(res.P50ms, "p50-ms")
			b.ReportMetric(res.P50OverTxn, "p50/txn")
			b.ReportMetric(res.PathFloorOverTxn, "pathfloor/txn")
			b.ReportMetric(res.P50OverPathFloor, "p50/pathfloor")
			b.ReportMetric(res.CPUOverPathFloor, "cpu/pathfloor")
			b.ReportMetric(res.ProtocolFloor.ConcordP50Over, "p50/protocolfloor")
			b.ReportMetric(res.ProtocolFloor.ConcordCPUOver, "cpu/protocolfloor")
			b.ReportMetric(res.DesignFloor.ConcordP50Over, "p50/designfloor")
			b.ReportMetric(res.DesignFloor.ConcordCPUOver, "cpu/designfloor")
			b.ReportMetric(res.CeilingFraction*100, "%ceiling")
		})
	}
}

// checkDesignFloor checks what the design's floor of a run with n
// participants wrote per transaction beside the protocol's floor: n
// acknowledgements of two operations each (the inbox key's deletion; the
// terminal record, for the last) and the cleanup's two (the record, its
// votes). Each acknowledgement compares its inbox key and, nested, the
// record and the n-1 other inbox keys; the cleanup compares the record;
// the fences of the Txns that carry them come on top, as many as they
// take.
func checkDesignFloor(t *testing.T, n float64, res Result) {
	t.Helper()
	pf, df := res.ProtocolFloor, res.DesignFloor
	if least := pf.ComparesPerTx + n*(n+1) + 1; !near(df.OpsPerTx, pf.OpsPerTx+2*n+2) || df.ComparesPerTx < least || df.WriteBytesPerTx <= pf.WriteBytesPerTx {
		t.Errorf("design floor at concurrency %d: %.2f compares, %.2f ops, %.0f bytes per transaction (want at least %.0f, exactly %.0f, above the protocol floor's %.0f)", res.Concurrency, df.ComparesPerTx, df.OpsPerTx, df.WriteBytesPerTx, least, pf.OpsPerTx+2*n+2, pf.WriteBytesPerTx)
	}
}

// near reports whether a per-transaction count is v, but for float rounding.
func near(got, v float64) bool { return math.Abs(got-v) < 1e-9 }

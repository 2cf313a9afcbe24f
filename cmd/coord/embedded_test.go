package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/concord-tx/concord/httpapi"
	"github.com/concord-tx/concord/internal/testkit/poll"
	"github.com/concord-tx/concord/participant"
	"github.com/concord-tx/concord/protocol"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// bank is a participant for the tests: it votes no on payloads mentioning
// "overdraft", and while gate is closed its Prepare waits.
type bank struct {
	gate chan struct{} // nil: never waits
}

func (b bank) handler() participant.Handler {
	return participant.HandlerFuncs{PrepareFunc: func(ctx context.Context, tx participant.Tx) error {
		if strings.Contains(string(tx.Payload), "overdraft") {
			return errors.New("insufficient funds")
		}
		if b.gate != nil {
			select {
			case <-b.gate:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}}
}

// startBank runs participant name against etcd at endpoints.
func startBank(t *testing.T, cli *clientv3.Client, prefix, name string, b bank) *participant.Participant {
	t.Helper()
	p, err := participant.New(cli, name, b.handler(),
		participant.WithPrefix(prefix),
		participant.WithLeaseTTL(2*time.Second),
		participant.WithRequestTimeout(time.Second),
		participant.WithRetryBackoff(20*time.Millisecond, 200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.WaitActive(ctx); err != nil {
		t.Fatalf("participant %s: %v", name, err)
	}
	return p
}

func etcdClient(t *testing.T, endpoints ...string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// waitTerminal polls the API until transaction id is terminal.
func waitTerminal(t *testing.T, api *httpapi.Client, id string) httpapi.Transaction {
	t.Helper()
	var tx httpapi.Transaction
	poll.Until(t, 20*time.Second, id+" terminal", func() (bool, string) {
		var err error
		tx, err = api.Get(context.Background(), id)
		if err != nil {
			return false, err.Error()
		}
		return tx.State.Terminal(), tx.State.String()
	})
	return tx
}

// TestEmbedded runs `coord serve` on its embedded etcd with participants
// from the SDK: transactions commit and abort, `coord tx` shows them, a
// SIGTERM lets the request in flight finish, and a restart keeps every
// transaction.
func TestEmbedded(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	addrs := freeAddrs(t, 2)
	args := []string{"--data-dir", dir, "--embedded-client-url", "http://" + addrs[0], "--embedded-peer-url", "http://" + addrs[1], "--lease-ttl", "2s", "--timeout", "20s"}
	coord := startCoord(t, "coord", nil, args...)
	ctx := context.Background()
	// Its space quota is 8 GiB unless --embedded-quota-bytes says otherwise
	// (the restart below), as etcd itself reports it.
	if q := metric(t, "http://"+addrs[0], "etcd_server_quota_backend_bytes"); q != 8<<30 {
		t.Errorf("embedded etcd's quota: %.0f bytes, want 8 GiB", q)
	}

	// Participants reach the embedded etcd like any etcd.
	cli := etcdClient(t, "http://"+addrs[0])
	gate := make(chan struct{})
	banks := []*participant.Participant{
		startBank(t, cli, "/tx", "bank-a", bank{}),
		startBank(t, cli, "/tx", "bank-b", bank{}),
		startBank(t, cli, "/tx", "bank-slow", bank{gate: gate}),
	}

	out, err := coord.api.Begin(ctx, httpapi.BeginRequest{ID: "t-commit", Branches: []httpapi.BranchRequest{
		{Participant: "bank-a", Payload: json.RawMessage(`{"account": "alice", "amount": -5}`)},
		{Participant: "bank-b", Payload: json.RawMessage(`{"account": "bob", "amount": 5}`)},
	}}, true)
	if err != nil || out.State != protocol.StateCommitted {
		t.Fatalf("t-commit: %+v %v, want committed", out, err)
	}
	out, err = coord.api.Begin(ctx, httpapi.BeginRequest{ID: "t-abort", Branches: []httpapi.BranchRequest{
		{Participant: "bank-a", Payload: json.RawMessage(`{"amount": 500}`)},
		{Participant: "bank-b", Payload: json.RawMessage(`"overdraft"`)},
	}}, true)
	if err != nil || out.State != protocol.StateAborted || out.Reason != "bank-b: insufficient funds" {
		t.Fatalf("t-abort: %+v %v, want aborted by bank-b", out, err)
	}
	waitTerminal(t, coord.api, "t-commit")
	waitTerminal(t, coord.api, "t-abort")

	// It is all in etcd: records under /tx, no inbox key left.
	keys := protocol.DefaultKeys()
	resp, err := cli.Get(ctx, keys.Record("t-commit"))
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("etcd get %s: %v %v", keys.Record("t-commit"), resp, err)
	}
	if rec, err := protocol.DecodeRecord(resp.Kvs[0].Value); err != nil || rec.State != protocol.StateCommitted {
		t.Fatalf("record in etcd: %+v %v", rec, err)
	}
	if resp, err := cli.Get(ctx, keys.Inboxes(), clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil || resp.Count != 0 {
		t.Fatalf("inbox keys left: %v %v", resp, err)
	}

	checkTxCommands(t, coord)

	// SIGTERM while a request waits for its decision: the API stops
	// accepting, the request is answered, then everything stops in order.
	type result struct {
		out httpapi.Outcome
		err error
	}
	inflight := make(chan result, 1)
	go func() {
		out, err := coord.api.Begin(ctx, httpapi.BeginRequest{ID: "t-inflight", Branches: []httpapi.BranchRequest{{Participant: "bank-a"}, {Participant: "bank-slow"}}}, true)
		inflight <- result{out, err}
	}()
	poll.Until(t, 10*time.Second, "t-inflight begun", func() (bool, string) {
		tx, err := coord.api.Get(ctx, "t-inflight")
		return err == nil && tx.State == protocol.StatePreparing, "not yet"
	})
	if err := coord.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "API closed to new requests", func() (bool, string) {
		_, err := coord.api.Health(ctx)
		var apiErr *httpapi.Error
		return err != nil && !errors.As(err, &apiErr), "still answering"
	})
	close(gate) // bank-slow votes yes: t-inflight commits
	select {
	case r := <-inflight:
		if r.err != nil || r.out.State != protocol.StateCommitted {
			t.Fatalf("in-flight request: %+v %v, want committed", r.out, r.err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("in-flight request not answered")
	}
	// The participants lose etcd with the coordinator; new instances catch
	// up with their inboxes after the restart.
	for _, b := range banks {
		b.Close()
	}
	if code := coord.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("exit status %d after SIGTERM", code)
	}
	assertInOrder(t, coord.logs, "shutting down: finishing requests in flight (signal again to exit at once)",
		"http server stopped", "replica stopped; its lease is revoked", "embedded etcd stopped")

	// Restart on the same data: every transaction is still there, and the
	// participants finish what the stop interrupted.
	coord = startCoord(t, "coord-restarted", nil, append(args, "--embedded-quota-bytes", "1073741824")...)
	if q := metric(t, "http://"+addrs[0], "etcd_server_quota_backend_bytes"); q != 1<<30 {
		t.Errorf("embedded etcd's quota after a restart with --embedded-quota-bytes 1073741824: %.0f bytes", q)
	}
	startBank(t, cli, "/tx", "bank-a", bank{})
	startBank(t, cli, "/tx", "bank-b", bank{})
	startBank(t, cli, "/tx", "bank-slow", bank{})
	want := map[string]protocol.State{
		"t-commit": protocol.StateCommitted, "t-abort": protocol.StateAborted,
		"t-operator": protocol.StateAborted, "t-inflight": protocol.StateCommitted,
	}
	for id, state := range want {
		if tx := waitTerminal(t, coord.api, id); tx.State != state {
			t.Errorf("%s after restart: %v, want %v", id, tx.State, state)
		}
	}
	l, err := coord.api.List(ctx, httpapi.ListOptions{})
	if err != nil || len(l.Transactions) != len(want) {
		t.Fatalf("list after restart: %+v %v, want %d transactions", l, err, len(want))
	}
	out, err = coord.api.Begin(ctx, httpapi.BeginRequest{ID: "t-after", Branches: []httpapi.BranchRequest{{Participant: "bank-a"}, {Participant: "bank-slow"}}}, true)
	if err != nil || out.State != protocol.StateCommitted {
		t.Fatalf("t-after: %+v %v, want committed", out, err)
	}
	if code := coord.stop(t, syscall.SIGINT, 30*time.Second); code != 0 {
		t.Fatalf("exit status %d after SIGINT", code)
	}
}

// checkTxCommands runs `coord tx` against the running coordinator, which
// has t-commit and t-abort; bank-slow's Prepare waits, so a transaction
// with it stays preparing.
func checkTxCommands(t *testing.T, coord *coordProc) {
	// In this process, but for the first and one more, which run the binary.
	addr := []string{"--addr", coord.url}
	tx := func(args ...string) (int, string, string) {
		return runInProcess(append(append([]string{"tx"}, args...), addr...), nil)
	}

	code, stdout, stderr := runCoord(t, "tx", "list", "--addr", coord.url)
	if code != 0 || stderr != "" {
		t.Fatalf("tx list: exit %d, stderr %q", code, stderr)
	}
	rows := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(rows) != 3 || !regexp.MustCompile(`^ID +STATE +PARTICIPANTS +CREATED +REASON$`).MatchString(rows[0]) ||
		!regexp.MustCompile(`^t-abort +aborted +bank-a,bank-b +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}Z +bank-b: insufficient funds$`).MatchString(rows[1]) ||
		!regexp.MustCompile(`^t-commit +committed +bank-a,bank-b +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}Z *$`).MatchString(rows[2]) {
		t.Fatalf("tx list:\n%s", stdout)
	}

	code, stdout, _ = tx("list", "--json", "--state", "committed")
	var l httpapi.List
	if err := json.Unmarshal([]byte(stdout), &l); code != 0 || err != nil || len(l.Transactions) != 1 || l.Transactions[0].ID != "t-commit" {
		t.Fatalf("tx list --json --state committed: exit %d, %v\n%s", code, err, stdout)
	}
	// The hint repeats the listing's own flags.
	code, stdout, stderr = tx("list", "--limit", "1")
	if code != 0 || strings.Count(stdout, "\n") != 2 || stderr != "more: coord tx list --addr "+coord.url+" --limit 1 --after t-abort\n" {
		t.Fatalf("tx list --limit 1: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, _ = tx("list", "--json", "--state", "unfinished")
	if err := json.Unmarshal([]byte(stdout), &l); code != 0 || err != nil || len(l.Transactions) != 0 {
		t.Fatalf("tx list --json --state unfinished: exit %d, %v\n%s, want none: both are terminal", code, err, stdout)
	}
	code, _, stderr = tx("list", "--state", "done")
	if code != 2 || !strings.Contains(stderr, `coord tx list: --state: "done" is not a state (expected preparing, committing, aborting, committed, aborted or unfinished)`) {
		t.Fatalf("tx list --state done: exit %d, stderr %q", code, stderr)
	}

	code, stdout, _ = tx("show", "t-abort")
	for _, want := range []string{
		`(?m)^ID: +t-abort$`, `(?m)^State: +aborted$`, `(?m)^Cause: +vote_no$`, `(?m)^Reason: +bank-b: insufficient funds$`,
		`(?m)^Created: +\d{4}-`, `(?m)^Deadline: +\d{4}-`, `(?m)^Decided: +\d{4}-`, `(?m)^Finished: +\d{4}-`,
		`(?m)^PARTICIPANT +VOTE +ACKED$`, `(?m)^bank-a +(yes|none) +yes$`, `(?m)^bank-b +no \(insufficient funds\) +yes$`,
	} {
		if code != 0 || !regexp.MustCompile(want).MatchString(stdout) {
			t.Fatalf("tx show t-abort: exit %d, no %s in\n%s", code, want, stdout)
		}
	}
	code, stdout, _ = runCoord(t, "tx", "show", "--json", "t-commit", "--addr", coord.url) // flags after the id too
	var shown httpapi.Transaction
	if err := json.Unmarshal([]byte(stdout), &shown); code != 0 || err != nil || shown.State != protocol.StateCommitted || len(shown.Branches) != 2 || !shown.Branches[1].Acked {
		t.Fatalf("tx show --json: exit %d, %v\n%s", code, err, stdout)
	}
	code, _, stderr = tx("show", "t-missing")
	if code != 1 || stderr != "coord tx show: coordinator: transaction not found: t-missing (HTTP 404 Not Found)\n" {
		t.Fatalf("tx show t-missing: exit %d, stderr %q", code, stderr)
	}

	code, _, stderr = tx("abort", "t-commit")
	if code != 1 || !strings.Contains(stderr, "coord tx abort: coordinator: transaction already committed: t-commit is committed (HTTP 409 Conflict)") {
		t.Fatalf("tx abort t-commit: exit %d, stderr %q", code, stderr)
	}
	if _, err := coord.api.Begin(context.Background(), httpapi.BeginRequest{ID: "t-operator", Branches: []httpapi.BranchRequest{{Participant: "bank-slow"}}}, false); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = tx("abort", "t-operator", "--reason", "ops said so")
	if code != 0 || stdout != "t-operator aborting: ops said so\n" {
		t.Fatalf("tx abort t-operator: exit %d, %q %q", code, stdout, stderr)
	}
	code, stdout, _ = tx("abort", "--json", "t-operator")
	var o httpapi.Outcome
	if err := json.Unmarshal([]byte(stdout), &o); code != 0 || err != nil || o.Cause != protocol.CauseOperator || !o.State.Decided() {
		t.Fatalf("tx abort --json: exit %d, %v\n%s", code, err, stdout)
	}

	// The metrics saw it all (decisions as the leader's watch sees them).
	poll.Until(t, 10*time.Second, "metrics", func() (bool, string) {
		resp, err := http.Get(coord.url + "/metrics")
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		for _, want := range []string{"concord_transactions_begun_total 3", "concord_transactions_committed_total 1",
			`concord_transactions_aborted_total{cause="vote_no"} 1`, `concord_transactions_aborted_total{cause="operator"} 1`} {
			if !strings.Contains(string(body), want+"\n") {
				return false, "no " + want
			}
		}
		return true, ""
	})
}

// assertInOrder checks that the log has messages msgs in this order.
func assertInOrder(t *testing.T, logs *logLines, msgs ...string) {
	t.Helper()
	i := 0
	for _, l := range logs.lines() {
		if i < len(msgs) && l["msg"] == msgs[i] {
			i++
		}
	}
	if i < len(msgs) {
		t.Fatalf("log lacks %q after %q:\n%s", msgs[i], msgs[:i], logs.String())
	}
}

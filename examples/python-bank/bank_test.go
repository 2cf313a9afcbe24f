// Package pythonbank_test runs the Python bank (bank.py, standard library
// only) behind `coord gateway` in transfers with the Go demo bank, and
// through the conformance suite.
package pythonbank_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/concord-tx/concord/coordinator"
	"github.com/concord-tx/concord/internal/testkit/etcdtest"
	"github.com/concord-tx/concord/internal/testkit/freeport"
	"github.com/concord-tx/concord/internal/testkit/leaktest"
	"github.com/concord-tx/concord/internal/testkit/poll"
	"github.com/concord-tx/concord/protocol"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

// python3 returns the interpreter's path, or skips the test (fails it
// when CI=true).
func python3(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3 is not on the PATH; CI must have it")
		}
		t.Skip("python3 is not on the PATH: install Python 3 (apt-get install python3) to run the Python bank")
	}
	return p
}

// build builds pkg into dir and returns the binary's path.
func build(t *testing.T, dir, pkg string) string {
	t.Helper()
	out := filepath.Join(dir, filepath.Base(pkg))
	if b, err := exec.Command("go", "build", "-o", out, pkg).CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

// proc is a process the test started and stops at cleanup.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func start(t *testing.T, logPath string, name string, args ...string) *proc {
	t.Helper()
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop() })
	return p
}

// stop ends the process with SIGTERM, then SIGKILL after 10s.
func (p *proc) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.kill()
	}
}

// kill ends it at once (kill -9).
func (p *proc) kill() {
	p.cmd.Process.Kill()
	<-p.done
}

// world is a Go bank and the Python bank behind a gateway, on one etcd,
// with an in-process coordinator client and replica.
type world struct {
	t              *testing.T
	dir            string
	python, bankPy string
	pyAddr         string
	goAddr         string
	client         *coordinator.Client
	cli            *clientv3.Client
	py             *proc
}

func newWorld(t *testing.T) *world {
	w := &world{t: t, dir: t.TempDir(), python: python3(t)}
	bin := t.TempDir()
	coord := build(t, bin, "github.com/concord-tx/concord/cmd/coord")
	demo := build(t, bin, "github.com/concord-tx/concord/cmd/demo-participant")
	wd, _ := os.Getwd()
	w.bankPy = filepath.Join(wd, "bank.py")
	etcd := etcdtest.Start(t)
	w.cli = etcd.Client(t)
	addrs, err := freeport.Addrs(2)
	if err != nil {
		t.Fatal(err)
	}
	w.goAddr, w.pyAddr = addrs[0], addrs[1]
	secret := filepath.Join(w.dir, "secret")
	if err := os.WriteFile(secret, []byte("s3cret-for-the-test\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	w.openGate()
	start(t, filepath.Join(w.dir, "bank-a.log"), demo, "serve", "--name", "bank-a", "--etcd", strings.Join(etcd.Endpoints, ","),
		"--db", filepath.Join(w.dir, "bank-a.db"), "--listen", w.goAddr, "--accounts", "alice=100", "--lease-ttl", "2s")
	w.startPython()
	start(t, filepath.Join(w.dir, "gateway.log"), coord, "gateway", "--participant", "bank-py", "--etcd", strings.Join(etcd.Endpoints, ","),
		"--url", "http://"+w.pyAddr, "--secret-file", secret, "--lease-ttl", "2s", "--health-interval", "200ms", "--log-level", "debug")
	ctx := context.Background()
	if w.client, err = coordinator.NewClient(ctx, w.cli); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.client.Close() })
	r, err := coordinator.NewReplica(w.cli, coordinator.WithLeaseTTL(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	keys, err := protocol.NewKeys(protocol.DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"bank-a", "bank-py"} {
		poll.Until(t, 30*time.Second, name+" registered", func() (bool, string) {
			resp, err := w.cli.Get(ctx, keys.Participant(name))
			return err == nil && len(resp.Kvs) == 1, fmt.Sprint(err)
		})
	}
	return w
}

func (w *world) startPython() {
	w.py = start(w.t, filepath.Join(w.dir, "bank-py.log"), w.python, w.bankPy, "--port", strings.Split(w.pyAddr, ":")[1],
		"--db", filepath.Join(w.dir, "bank-py.sqlite"), "--accounts", "carol=50",
		"--secret-file", filepath.Join(w.dir, "secret"), "--commit-gate", filepath.Join(w.dir, "gate"))
}

func (w *world) openGate() {
	if err := os.WriteFile(filepath.Join(w.dir, "gate"), nil, 0o644); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) closeGate() {
	if err := os.Remove(filepath.Join(w.dir, "gate")); err != nil {
		w.t.Fatal(err)
	}
}

// balances returns alice's balance at the Go bank and carol's at the
// Python bank.
func (w *world) balances() (alice, carol int64, err error) {
	var a map[string]struct{ Balance int64 }
	var c map[string]int64
	if err := getJSON("http://"+w.goAddr+"/accounts", &a); err != nil {
		return 0, 0, err
	}
	if err := getJSON("http://"+w.pyAddr+"/accounts", &c); err != nil {
		return 0, 0, err
	}
	return a["alice"].Balance, c["carol"], nil
}

func getJSON(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

// waitBalances waits until alice and carol hold want.
func (w *world) waitBalances(alice, carol int64) {
	w.t.Helper()
	poll.Until(w.t, 30*time.Second, fmt.Sprintf("alice %d and carol %d", alice, carol), func() (bool, string) {
		a, c, err := w.balances()
		return err == nil && a == alice && c == carol, fmt.Sprintf("alice %d, carol %d, %v", a, c, err)
	})
}

// waitState waits until transaction id's record is in state want.
func (w *world) waitState(id string, want protocol.State) protocol.Record {
	w.t.Helper()
	var rec protocol.Record
	poll.Until(w.t, 30*time.Second, id+" "+want.String(), func() (bool, string) {
		tx, err := w.client.Get(context.Background(), id)
		rec = tx.Record
		return err == nil && rec.State == want, fmt.Sprintf("%v %v", rec.State, err)
	})
	return rec
}

func transfer(id, from string, fromAmount int64, to string) coordinator.Request {
	branch := func(p, account string, amount int64) protocol.Branch {
		b, _ := json.Marshal(map[string]any{"account": account, "amount": amount})
		return protocol.Branch{Participant: p, Payload: b}
	}
	bankOf := map[string]string{"alice": "bank-a", "carol": "bank-py"}
	return coordinator.Request{ID: id, Timeout: 20 * time.Second, Branches: []protocol.Branch{
		branch(bankOf[from], from, -fromAmount), branch(bankOf[to], to, fromAmount),
	}}
}

// TestTransfersWithTheGoBank: a commit, a no vote from the Python bank,
// and a crash of the Python bank after its yes vote; money is conserved.
func TestTransfersWithTheGoBank(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()

	out, err := w.client.Do(ctx, transfer("py-commit", "alice", 10, "carol"))
	if err != nil || !out.Committed() {
		t.Fatalf("transfer alice → carol: %+v, %v", out, err)
	}
	w.waitState("py-commit", protocol.StateCommitted)
	w.waitBalances(90, 60)

	out, err = w.client.Do(ctx, transfer("py-no", "carol", 1000, "alice"))
	if err != nil || out.Committed() || out.Cause != protocol.CauseVoteNo || !strings.HasPrefix(out.Reason, "bank-py: insufficient funds") {
		t.Fatalf("transfer of 1000 from carol: expected a no vote from bank-py; got %+v, %v", out, err)
	}
	w.waitState("py-no", protocol.StateAborted)
	w.waitBalances(90, 60)

	// The Python bank votes yes, then dies before it applies the commit.
	w.closeGate()
	out, err = w.client.Do(ctx, transfer("py-crash", "carol", 5, "alice"))
	if err != nil || !out.Committed() {
		t.Fatalf("transfer carol → alice: %+v, %v", out, err)
	}
	w.waitState("py-crash", protocol.StateCommitting) // bank-a may have applied it; bank-py waits at the gate
	tx, err := w.client.Get(ctx, "py-crash")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range tx.Branches {
		if b.Participant == "bank-py" && (b.Vote == nil || !b.Vote.Yes || b.Acked) {
			t.Fatalf("bank-py before the crash: %+v, expected a yes vote and no acknowledgement", b)
		}
	}
	w.py.kill()
	w.openGate()
	w.startPython()
	w.waitState("py-crash", protocol.StateCommitted)
	w.waitBalances(95, 55)
	if a, c, _ := w.balances(); a+c != 150 {
		t.Fatalf("money not conserved: alice %d + carol %d = %d, expected 150", a, c, a+c)
	}
}

// TestGatewayConforms runs `coord conformance` against the Python bank
// behind the gateway (conformance.sh).
func TestGatewayConforms(t *testing.T) {
	python3(t)
	coord := build(t, t.TempDir(), "github.com/concord-tx/concord/cmd/coord")
	wd, _ := os.Getwd()
	cmd := exec.Command(coord, "conformance", "--participant-cmd", filepath.Join(wd, "conformance.sh"), "--dir", t.TempDir())
	cmd.Env = append(os.Environ(), "COORD="+coord)
	out, err := cmd.CombinedOutput()
	t.Logf("\n%s", out)
	if err != nil {
		t.Fatalf("coord conformance: %v", err)
	}
	if strings.Contains(string(out), "FAIL") || !strings.Contains(string(out), "cases passed") {
		t.Fatal("expected a table where every case passed")
	}
}

// TestSignatureChecked: the Python bank turns away a call that is not
// signed, signed with another secret, signed at a timestamp more than
// five minutes off, or with a signature that is not even ASCII, and serves one signed as PROTOCOL.md §12 says (the
// first to reach its store: it prepares, not repeats).
func TestSignatureChecked(t *testing.T) {
	dir := t.TempDir()
	secret := []byte("s3cret-for-the-test")
	if err := os.WriteFile(filepath.Join(dir, "secret"), secret, 0o600); err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	portFile := filepath.Join(dir, "port")
	start(t, filepath.Join(dir, "bank-py.log"), python3(t), filepath.Join(wd, "bank.py"), "--port", "0", "--port-file", portFile,
		"--db", filepath.Join(dir, "bank-py.sqlite"), "--secret-file", filepath.Join(dir, "secret"))
	var port []byte
	poll.Until(t, 30*time.Second, "the bank's port file", func() (bool, string) {
		var err error
		port, err = os.ReadFile(portFile)
		return err == nil && len(port) > 0, fmt.Sprint(err)
	})
	url := "http://127.0.0.1:" + string(port) + "/prepare"
	body := []byte(`{"id": "signed", "revision": 7, "phase": "prepare", "payload": {"vote": "yes"}}`)
	sign := func(key []byte, ts string) string {
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(ts + "."))
		mac.Write(body)
		return "sha256=" + hex.EncodeToString(mac.Sum(nil))
	}
	now := strconv.FormatInt(time.Now().Unix(), 10)
	stale := strconv.FormatInt(time.Now().Add(-6*time.Minute).Unix(), 10)
	for _, c := range []struct {
		name, ts, sig string
		status        int
		result        string
	}{
		{"unsigned", "", "", http.StatusUnauthorized, ""},
		{"no timestamp", "", sign(secret, ""), http.StatusUnauthorized, ""},
		{"another secret", now, sign([]byte("not-the-secret"), now), http.StatusUnauthorized, ""},
		{"stale timestamp", stale, sign(secret, stale), http.StatusUnauthorized, ""},
		{"non-ASCII signature", now, "sha256=\xe9", http.StatusUnauthorized, ""},
		{"signed", now, sign(secret, now), http.StatusOK, "prepared"},
	} {
		req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Concord-Timestamp", c.ts)
		req.Header.Set("X-Concord-Signature", c.sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var answer struct{ Result string }
		err = json.NewDecoder(resp.Body).Decode(&answer)
		resp.Body.Close()
		if err != nil || resp.StatusCode != c.status || answer.Result != c.result {
			t.Errorf("%s: HTTP %d, result %q (%v); expected HTTP %d, result %q", c.name, resp.StatusCode, answer.Result, err, c.status, c.result)
		}
	}
}

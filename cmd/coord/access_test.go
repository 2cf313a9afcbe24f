package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/concord-tx/concord/httpapi"
	"github.com/concord-tx/concord/internal/testkit/certtest"
	"github.com/concord-tx/concord/internal/testkit/etcdtest"
	"github.com/concord-tx/concord/internal/testkit/poll"
	"github.com/concord-tx/concord/protocol"
)

// runCoordEnv runs the coord binary with extra environment env.
func runCoordEnv(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, coordBin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil && cmd.ProcessState == nil {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// `coord serve` with credentials and HTTPS, used by `coord tx` with a
// token and a CA file: each role does what it may, nothing without a
// token; the abort is logged with who and from where, tokens never; a
// reason with a terminal escape is shown escaped; SIGHUP reloads the
// certificate and the credentials.
func TestServeWithCredentialsAndTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := certtest.New(t, dir, "ca", nil)
	server := certtest.New(t, dir, "server", ca)
	const (
		viewer = "viewer-0123456789abcdef"
		ops    = "ops-0123456789abcdef0123"
	)
	creds := filepath.Join(dir, "credentials")
	if err := os.WriteFile(creds, []byte("# coord serve's callers\nviewer:read:"+viewer+"\nops:admin:"+ops+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	etcd := etcdtest.Start(t)
	coord := startCoord(t, "coord", []string{"CONCORD_TLS_CERT=" + server.CertFile, "CONCORD_TLS_KEY=" + server.KeyFile},
		"--etcd", etcd.Endpoints[0], "--lease-ttl", "2s", "--credentials-file", creds)
	if !strings.HasPrefix(coord.url, "https://") {
		t.Fatalf("serving at %s, want https", coord.url)
	}
	pool, err := httpapi.LoadCAFile(ca.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	opsAPI, err := httpapi.NewClient(coord.url, httpapi.WithRootCAs(pool), httpapi.WithToken(ops))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	poll.Until(t, 10*time.Second, "coord leads", func() (bool, string) {
		h, err := opsAPI.Health(ctx)
		return err == nil && h.Leader, "not leading"
	})
	// bank-held is registered and never votes: t-held waits for a decision.
	startBank(t, etcd.Client(t), protocol.DefaultPrefix, "bank-held", bank{gate: make(chan struct{})})
	if _, err := opsAPI.Begin(ctx, httpapi.BeginRequest{ID: "t-held", Timeout: "1m", Branches: []httpapi.BranchRequest{{Participant: "bank-held"}}}, false); err != nil {
		t.Fatal(err)
	}

	tx := func(env []string, args ...string) (int, string, string) {
		t.Helper()
		return runCoordEnv(t, append(env, "CONCORD_CA_FILE="+ca.CertFile), append(append([]string{"tx"}, args...), "--addr", coord.url)...)
	}
	code, _, stderr := tx(nil, "list")
	if code != 1 || !strings.Contains(stderr, "no credential") || !strings.Contains(stderr, "HTTP 401") {
		t.Errorf("tx list without a token: exit %d, stderr %q", code, stderr)
	}
	code, stdout, stderr := tx([]string{"CONCORD_TOKEN=" + viewer}, "list")
	if code != 0 || !strings.Contains(stdout, "t-held") {
		t.Errorf("tx list with the read role: exit %d\n%s%s", code, stdout, stderr)
	}
	code, _, stderr = tx(nil, "abort", "t-held", "--token", viewer)
	if code != 1 || !strings.Contains(stderr, `credential "viewer" has the read role`) || !strings.Contains(stderr, "HTTP 403") {
		t.Errorf("tx abort with the read role: exit %d, stderr %q", code, stderr)
	}
	evil := "stop\x1b[2J\x1b]0;pwned\x07 now"
	code, stdout, stderr = tx([]string{"CONCORD_TOKEN=" + ops}, "abort", "t-held", "--reason", evil)
	if code != 0 || !strings.HasPrefix(stdout, "t-held abort") || !strings.HasSuffix(stdout, `: stop\x1b[2J\x1b]0;pwned\a now`+"\n") {
		t.Errorf("tx abort with the admin role: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	code, stdout, _ = tx([]string{"CONCORD_TOKEN=" + ops}, "show", "t-held")
	if code != 0 || strings.ContainsRune(stdout, 0x1b) || !strings.Contains(stdout, `stop\x1b[2J`) {
		t.Errorf("tx show: exit %d, want the reason escaped:\n%q", code, stdout)
	}
	if out, err := opsAPI.Get(ctx, "t-held"); err != nil || out.State.Outcome() != protocol.StateAborted {
		t.Errorf("t-held: %+v %v, want aborted", out, err)
	}

	poll.Until(t, 10*time.Second, "the abort logged", func() (bool, string) {
		l, ok := coord.logs.find("abort requested")
		return ok && l["credential"] == "ops" && l["remote"] != "" && l["txid"] == "t-held", "no log line naming ops"
	})
	for _, tok := range []string{viewer, ops} {
		if strings.Contains(coord.logs.String(), tok) {
			t.Errorf("a token is in the logs")
		}
	}

	// A renewed certificate and a rotated token, signalled with SIGHUP:
	// new connections get the new certificate, the old token is refused.
	renewed := certtest.New(t, dir, "server", ca)
	const rotated = "viewer-rotated-0123456789"
	if err := os.WriteFile(creds, []byte("viewer:read:"+rotated+"\nops:admin:"+ops+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := coord.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "the rotated token let in", func() (bool, string) {
		code, _, stderr := tx([]string{"CONCORD_TOKEN=" + rotated}, "list")
		return code == 0, stderr
	})
	if code, _, stderr := tx([]string{"CONCORD_TOKEN=" + viewer}, "list"); code != 1 || !strings.Contains(stderr, "HTTP 401") {
		t.Errorf("the old token after the rotation: exit %d, stderr %q; want 401", code, stderr)
	}
	host := strings.TrimPrefix(coord.url, "https://")
	poll.Until(t, 10*time.Second, "the renewed certificate served", func() (bool, string) {
		conn, err := tls.Dial("tcp", host, &tls.Config{RootCAs: pool})
		if err != nil {
			return false, err.Error()
		}
		defer conn.Close()
		serial := conn.ConnectionState().PeerCertificates[0].SerialNumber
		return serial.Cmp(renewed.Cert.SerialNumber) == 0, "serial " + serial.String()
	})
	if h, err := opsAPI.Health(ctx); err != nil || h.Status != "ok" {
		t.Errorf("after SIGHUP: %+v %v", h, err)
	}

	// A credentials file that does not load, signalled: the error is
	// logged (naming the file, not a token) and the credentials in use
	// stay.
	if err := os.WriteFile(creds, []byte("viewer:read\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := coord.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "the failed reload logged", func() (bool, string) {
		l, ok := coord.logs.find("SIGHUP: the credentials do not load; the previous ones stay in use")
		return ok && strings.Contains(fmt.Sprint(l["error"]), creds+": line 1: an entry is not name:role:token"), fmt.Sprint(l)
	})
	if code, _, stderr := tx([]string{"CONCORD_TOKEN=" + rotated}, "list"); code != 0 {
		t.Errorf("the rotated token after a failed reload: exit %d, stderr %q; want it still let in", code, stderr)
	}
}

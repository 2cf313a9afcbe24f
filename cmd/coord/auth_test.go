package main

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/concord-tx/concord/httpapi"
	"github.com/concord-tx/concord/internal/testkit/etcdtest"
	"github.com/concord-tx/concord/internal/testkit/poll"
)

// TestEtcdAuth: with auth enabled in etcd, `coord serve` logs in with
// --etcd-user and the password from the environment, which never shows
// in its logs; a wrong password stops it at startup with a clear error.
func TestEtcdAuth(t *testing.T) {
	t.Parallel()
	etcd := etcdtest.Start(t)
	cli := etcd.Client(t)
	ctx := context.Background()
	const password = "pw-7f3a9c"
	if _, err := cli.RoleAdd(ctx, "root"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.UserAdd(ctx, "root", password); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.UserGrantRole(ctx, "root", "root"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.AuthEnable(ctx); err != nil {
		t.Fatal(err)
	}

	args := []string{"--etcd", etcd.Endpoints[0], "--etcd-user", "root", "--lease-ttl", "2s"}
	coord := startCoord(t, "coord", []string{passwordEnv + "=" + password}, append(args, "--log-level", "debug")...)
	poll.Until(t, 10*time.Second, "coord leads", func() (bool, string) { return coord.leader(ctx), "not leading" })
	out, err := coord.api.Begin(ctx, httpapi.BeginRequest{ID: "authed", Branches: []httpapi.BranchRequest{{Participant: "nobody"}}}, true)
	if err != nil || out.Cause != "participant_lost" {
		t.Fatalf("begin with auth: %+v %v, want aborted, participant lost", out, err)
	}
	if l, ok := coord.logs.find("connected to etcd"); !ok || l["user"] != "root" {
		t.Errorf("no connection log naming the user: %v", l)
	}
	if strings.Contains(coord.logs.String(), password) {
		t.Errorf("the password is in the logs:\n%s", coord.logs.String())
	}

	// A generous --request-timeout: the error must be the refusal, not a
	// slow dial on a busy machine.
	cmd := exec.Command(coordBin, append([]string{"serve", "--listen", "127.0.0.1:0", "--request-timeout", "20s"}, args...)...)
	cmd.Env = append(os.Environ(), passwordEnv+"=wrong")
	output, err := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(output), "coord serve: etcd at "+etcd.Endpoints[0]+": ") || !strings.Contains(string(output), "authentication failed") {
		t.Fatalf("wrong password: %v\n%s", err, output)
	}
}

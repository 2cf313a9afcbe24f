package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/concord-tx/concord/coordinator"
	"github.com/concord-tx/concord/httpapi"
	"github.com/concord-tx/concord/internal/testkit/etcdtest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// The transfer tool sends the credential of --token or $CONCORD_TOKEN to
// a coordinator that requires one (the real API over a real coordinator).
func TestTransferSendsToken(t *testing.T) {
	const token = "payments-0123456789abcdef"
	creds, err := httpapi.ParseCredentials("payments:begin:"+token, "test")
	if err != nil {
		t.Fatal(err)
	}
	log := zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel))
	cli := etcdtest.Start(t).Client(t)
	rep, err := coordinator.NewReplica(cli, coordinator.WithLogger(log), coordinator.WithLeaseTTL(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rep.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := coordinator.NewClient(ctx, cli, coordinator.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	api := httpapi.New(httpapi.Config{Client: c, Logger: log, Credentials: creds})
	t.Cleanup(api.Close)
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)

	transfer := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := run(append([]string{"transfer", "--coord", srv.URL, "--from", "bank-a:alice", "--to", "bank-b:bob", "--amount", "1", "--request-timeout", "20s"}, args...), &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	t.Setenv("CONCORD_TOKEN", "")
	if code, _, stderr := transfer(); code != exitError || !strings.Contains(stderr, "HTTP 401") {
		t.Errorf("without a token: exit %d, stderr %q; want %d and a 401", code, stderr, exitError)
	}
	// Nobody runs the banks: the coordinator aborts, which shows the
	// request was let in.
	if code, stdout, stderr := transfer("--token", token); code != exitAborted || !strings.Contains(stdout, "participant bank-a is not registered") {
		t.Errorf("--token: exit %d, %q %q; want aborted by the coordinator", code, stdout, stderr)
	}
	t.Setenv("CONCORD_TOKEN", token)
	if code, stdout, stderr := transfer(); code != exitAborted || !strings.HasPrefix(stdout, "aborted tx=") {
		t.Errorf("$CONCORD_TOKEN: exit %d, %q %q; want aborted by the coordinator", code, stdout, stderr)
	}
}

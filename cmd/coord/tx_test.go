package main

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/concord-tx/concord/httpapi"
	"github.com/concord-tx/concord/internal/testkit/poll"
	"github.com/concord-tx/concord/participant"
	"github.com/concord-tx/concord/protocol"
)

// TestTxShowFailures: `coord tx show` of a committed transaction whose
// participant's Commit keeps failing adds a FAILING table: the
// participant, the handler, since when, the attempts so far and the last
// error, on one line with the characters a terminal would act on escaped.
func TestTxShowFailures(t *testing.T) {
	t.Parallel()
	addrs := freeAddrs(t, 2)
	coord := startCoord(t, "coord", nil, "--data-dir", t.TempDir(), "--lease-ttl", "2s",
		"--embedded-client-url", "http://"+addrs[0], "--embedded-peer-url", "http://"+addrs[1])
	cli := etcdClient(t, "http://"+addrs[0])
	startBank(t, cli, "/tx", "bank-a", bank{})
	failing, err := participant.New(cli, "bank-b", participant.HandlerFuncs{CommitFunc: func(context.Context, participant.Tx) error {
		return errors.New("disk full\x1b[2J\nsee /var/log")
	}}, participant.WithLeaseTTL(2*time.Second), participant.WithRetryBackoff(20*time.Millisecond, 200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { failing.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := failing.WaitActive(ctx); err != nil {
		t.Fatal(err)
	}
	out, err := coord.api.Begin(ctx, httpapi.BeginRequest{ID: "t-stuck", Branches: []httpapi.BranchRequest{{Participant: "bank-a"}, {Participant: "bank-b"}}}, true)
	if err != nil || out.State != protocol.StateCommitted {
		t.Fatalf("t-stuck: %+v %v, want committed", out, err)
	}

	var stdout string
	poll.Until(t, 20*time.Second, "tx show lists the failure", func() (bool, string) {
		var code int
		var stderr string
		code, stdout, stderr = runCoord(t, "tx", "show", "t-stuck", "--addr", coord.url)
		return code == 0 && strings.Contains(stdout, "FAILING"), stdout + stderr
	})
	for _, want := range []string{
		`(?m)^State: +committing$`,
		`(?m)^bank-b +yes +no$`,
		`(?m)^FAILING +HANDLER +SINCE +ATTEMPTS +LAST ERROR$`,
		`(?m)^bank-b +commit +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}Z +[1-9]\d* +disk full\\x1b\[2J see /var/log$`,
	} {
		if !regexp.MustCompile(want).MatchString(stdout) {
			t.Errorf("tx show t-stuck: no %s in\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "\x1b") {
		t.Errorf("tx show t-stuck: an escape character reached the terminal:\n%q", stdout)
	}
	if n := strings.Count(stdout, "bank-b"); n != 2 {
		t.Errorf("tx show t-stuck: bank-b on %d lines, want 2 (its branch, its failure):\n%s", n, stdout)
	}
}

package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestTransferRefusesBadArguments checks that a wrong command line gets a
// clear message and exit status 2, and that nothing reaches the
// coordinator.
func TestTransferRefusesBadArguments(t *testing.T) {
	var requests atomic.Int32
	coord := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		http.Error(w, "not expected", http.StatusTeapot)
	}))
	defer coord.Close()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"missing bank", []string{"--from", "alice", "--to", "bank-b:bob", "--amount", "10"}, `--from: transfer: invalid argument: "alice": expected bank:account`},
		{"empty bank", []string{"--from", ":alice", "--to", "bank-b:bob", "--amount", "10"}, `expected bank:account`},
		{"bad bank name", []string{"--from", "Bank A:alice", "--to", "bank-b:bob", "--amount", "10"}, `--from: transfer: invalid argument: "Bank A:alice": bank:`},
		{"missing to", []string{"--from", "bank-a:alice", "--amount", "10"}, "--to is required"},
		{"missing from", []string{"--to", "bank-a:alice", "--amount", "10"}, "--from is required"},
		{"missing amount", []string{"--from", "bank-a:alice", "--to", "bank-b:bob"}, "--amount is required"},
		{"same account", []string{"--from", "bank-a:alice", "--to", "bank-a:alice", "--amount", "10"}, "from and to are the same account bank-a:alice"},
		{"zero", []string{"--from", "bank-a:alice", "--to", "bank-b:bob", "--amount", "0"}, "amount 0, expected more than 0"},
		{"negative", []string{"--from", "bank-a:alice", "--to", "bank-b:bob", "--amount", "-5"}, "amount -5, expected more than 0"},
		{"not a number", []string{"--from", "bank-a:alice", "--to", "bank-b:bob", "--amount", "ten"}, `amount "ten" is not an integer`},
		{"fraction", []string{"--from", "bank-a:alice", "--to", "bank-b:bob", "--amount", "1.5"}, `amount "1.5" is not an integer`},
		{"extra argument", []string{"--from", "bank-a:alice", "--to", "bank-b:bob", "--amount", "1", "now"}, `unexpected argument "now"`},
		{"load with from", []string{"--load", "5", "--from", "bank-a:alice", "--accounts", "bank-a:alice,bank-b:bob", "--banks", "bank-a=http://x,bank-b=http://y"}, "--from, --to, --amount and --id are for one transfer"},
		{"load with one account", []string{"--load", "5", "--accounts", "bank-a:alice", "--banks", "bank-a=http://x"}, "expected at least 2"},
		{"load without bank address", []string{"--load", "5", "--accounts", "bank-a:alice,bank-b:bob", "--banks", "bank-a=http://x"}, "bank bank-b has no address in --banks"},
		{"load with bad concurrency", []string{"--load", "5", "--concurrency", "0", "--accounts", "bank-a:alice,bank-b:bob", "--banks", "bank-a=http://x,bank-b=http://y"}, "--concurrency 0"},
		{"accounts without load", []string{"--accounts", "bank-a:alice,bank-b:bob"}, "--accounts and --banks go with --load N"},
		{"bad coordinator", []string{"--coord", "127.0.0.1:7070", "--from", "bank-a:alice", "--to", "bank-b:bob", "--amount", "1"}, "is not an http(s) URL (expected e.g. http://127.0.0.1:7070)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"transfer", "--coord", coord.URL}, tc.args...)
			var stdout, stderr bytes.Buffer
			if code := run(args, &stdout, &stderr); code != exitError {
				t.Errorf("exit %d, want %d; stderr: %s", code, exitError, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr %q does not say %q", stderr.String(), tc.want)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout %q, want nothing", stdout.String())
			}
		})
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("%d requests reached the coordinator, want none", n)
	}
}

func TestTransferWithoutCoordinatorIsAnError(t *testing.T) {
	coord := httptest.NewServer(http.NotFoundHandler())
	url := coord.URL
	coord.Close() // nothing listens there now
	var stdout, stderr bytes.Buffer
	code := run([]string{"transfer", "--coord", url, "--from", "bank-a:alice", "--to", "bank-b:bob", "--amount", "1", "--request-timeout", "300ms"}, &stdout, &stderr)
	if code != exitError || !strings.Contains(stderr.String(), "outcome unknown") {
		t.Errorf("exit %d, stderr %q; want %d and outcome unknown", code, stderr.String(), exitError)
	}
}

func TestServeRefusesBadArguments(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"no name", nil, nil, "--name is required"},
		{"bad name", []string{"--name", "Bank_A!"}, nil, "--name: protocol: invalid participant name"},
		{"bad accounts", []string{"--name", "bank-a", "--accounts", "alice=-5"}, nil, "--accounts: bank: invalid account: alice=-5"},
		{"short lease", []string{"--name", "bank-a", "--lease-ttl", "200ms"}, nil, "--lease-ttl 200ms, expected at least 1s"},
		{"bad prefix", []string{"--name", "bank-a", "--prefix", "tx/"}, nil, "--prefix: protocol: invalid key prefix"},
		{"bad env", []string{"--name", "bank-a"}, map[string]string{"DEMO_LEASE_TTL": "soon"}, `DEMO_LEASE_TTL="soon"`},
		{"name from env", nil, map[string]string{"DEMO_NAME": "BANK"}, "--name: protocol: invalid participant name: \"BANK\""},
		{"bad log level", []string{"--name", "bank-a", "--log-level", "loud"}, nil, `--log-level: "loud", expected debug, info, warn or error`},
		{"fatal log level", []string{"--name", "bank-a", "--log-level", "fatal"}, nil, `--log-level: "fatal", expected debug, info, warn or error`},
		{"bad listen", []string{"--name", "bank-a", "--listen", "nonsense"}, nil, `--listen: "nonsense" is not host:port`},
		{"unknown store", []string{"--name", "bank-a", "--store", "mysql://db/bank"}, nil, `--store "mysql://db/bank": unknown kind of store (expected postgres://`},
		{"store without database", []string{"--name", "bank-a", "--store", "postgres://u:secret@db:5432"}, nil, "--store postgres://u:xxxxx@db:5432: a host and a database are needed"},
		{"sqlite without path", []string{"--name", "bank-a", "--store", "sqlite:"}, nil, `--store "sqlite:": a file path`},
		{"db and store", []string{"--name", "bank-a", "--db", "a.db", "--store", "sqlite:a.sqlite"}, nil, "--db \"a.db\" and --store \"sqlite:a.sqlite\" both given"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var stdout, stderr bytes.Buffer
			if code := run(append([]string{"serve"}, tc.args...), &stdout, &stderr); code != exitError {
				t.Errorf("exit %d, want %d; stderr: %s", code, exitError, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr %q does not say %q", stderr.String(), tc.want)
			}
		})
	}
}

func TestUnknownCommand(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"launch"}, &stdout, &stderr); code != exitError || !strings.Contains(stderr.String(), `unknown command "launch"`) {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
	if code := run(nil, &stdout, &stderr); code != exitError {
		t.Errorf("no command: exit %d", code)
	}
}

// transfer reads DEMO_TRANSFER_*, not serve's variables: serve's
// DEMO_ACCOUNTS (alice=100) means something else than transfer's
// --accounts, and must not reach it.
func TestTransferEnvironment(t *testing.T) {
	t.Setenv("DEMO_ACCOUNTS", "alice=100")
	t.Setenv("DEMO_TRANSFER_AMOUNT", "0")
	var stdout, stderr bytes.Buffer
	code := run([]string{"transfer", "--from", "bank-a:alice", "--to", "bank-b:bob"}, &stdout, &stderr)
	if code != exitError || !strings.Contains(stderr.String(), "amount 0, expected more than 0") {
		t.Errorf("exit %d, stderr %q; want %d and the amount from DEMO_TRANSFER_AMOUNT refused", code, stderr.String(), exitError)
	}
}

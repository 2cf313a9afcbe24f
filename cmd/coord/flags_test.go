package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/concord-tx/concord/coordinator"
)

// runInProcess runs coord's command line in this process with env as the
// whole environment.
func runInProcess(args []string, env map[string]string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, console{stdout: &stdout, stderr: &stderr, getenv: func(k string) string { return env[k] }})
	return code, stdout.String(), stderr.String()
}

func TestServeRefusesBadFlags(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	badRole, shortToken := filepath.Join(dir, "bad-role"), filepath.Join(dir, "short-token")
	if err := os.WriteFile(badRole, []byte("# ops\nops:boss:0123456789abcdef0123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(shortToken, []byte("ops:admin:secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	goodCreds := filepath.Join(dir, "credentials")
	if err := os.WriteFile(goodCreds, []byte("ops:admin:0123456789abcdef0123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const public = " is not a loopback address, and no credentials are configured: anyone who reaches it could begin and abort transactions.\n" +
		"Configure credentials with --credentials-file FILE (one name:role:token a line, role read, begin or admin) or $CONCORD_CREDENTIALS,\n" +
		"or accept the risk with --insecure-no-auth-on-public-address"
	cases := []struct {
		args []string
		env  map[string]string
		says string
	}{
		{[]string{"--lease-ttl", "abc"}, nil, `--lease-ttl: "abc" is not a duration (expected e.g. 10s)`},
		{nil, map[string]string{"CONCORD_LEASE_TTL": "abc"}, `CONCORD_LEASE_TTL: "abc" is not a duration (expected e.g. 10s)`},
		{[]string{"--lease-ttl", "500ms"}, nil, "--lease-ttl: 500ms is too short (expected at least 1s)"},
		{[]string{"--retention", "-1h"}, nil, `--retention: "-1h" is not positive (expected e.g. 1h)`},
		{[]string{"--timeout", "1ms"}, nil, "--timeout: 1ms is out of bounds (expected between 100ms and 24h0m0s)"},
		{[]string{"--shutdown-timeout", "soon"}, nil, `--shutdown-timeout: "soon" is not a duration (expected e.g. 30s)`},
		{[]string{"--max-body-bytes", "2MB"}, nil, `--max-body-bytes: "2MB" is not a positive number of bytes (expected e.g. 2097152)`},
		{[]string{"--prefix", "tx/"}, nil, `--prefix: "tx/" is not a prefix (expected a path such as /tx: starts with /, no trailing /, no ~)`},
		{[]string{"--listen", "7070"}, nil, `--listen: "7070" is not host:port (expected e.g. 127.0.0.1:7070 or :7070)`},
		{[]string{"--log-level", "loud"}, nil, `--log-level: "loud" is not a level (expected debug, info, warn or error)`},
		{nil, map[string]string{"CONCORD_LOG_FORMAT": "xml"}, `CONCORD_LOG_FORMAT: "xml" is not a format (expected json or console)`},
		{[]string{"--etcd", "http://"}, nil, `--etcd: "http://" is not an endpoint (expected e.g. http://10.0.0.1:2379 or 10.0.0.1:2379)`},
		{[]string{"--etcd", "10.0.0.1"}, nil, `--etcd: "10.0.0.1" has no port`},
		{[]string{"--etcd-cacert", notPEM}, nil, "--etcd-cacert: only with --etcd, or with --embedded-tls-cert (the embedded etcd serves plain HTTP)"},
		{[]string{"--etcd", "10.0.0.1:2379", "--etcd-cacert", notPEM}, nil, "--etcd-cacert: " + notPEM + " holds no PEM certificate"},
		{[]string{"--etcd", "10.0.0.1:2379", "--etcd-cacert", filepath.Join(dir, "missing.pem")}, nil, "--etcd-cacert: open "},
		{[]string{"--etcd", "10.0.0.1:2379", "--etcd-cert", notPEM}, nil, "--etcd-cert: needs --etcd-key too"},
		{[]string{"--etcd", "10.0.0.1:2379", "--etcd-user", "root"}, nil, "--etcd-user: set, but $CONCORD_ETCD_PASSWORD is empty (expected the password there)"},
		{[]string{"--etcd", "10.0.0.1:2379", "--etcd-user", "root:secret"}, nil, `--etcd-user: contains ":" (expected a user name; the password comes from $CONCORD_ETCD_PASSWORD)`},
		{[]string{"--etcd", "10.0.0.1:2379"}, map[string]string{"CONCORD_ETCD_PASSWORD": "pw"}, "$CONCORD_ETCD_PASSWORD: set, but --etcd-user is not (expected both or neither)"},
		{[]string{"--embedded-client-url", "127.0.0.1:2379"}, nil, `--embedded-client-url: "127.0.0.1:2379" is not an http URL with a port (expected e.g. http://127.0.0.1:2379)`},
		{[]string{"--embedded-peer-url", "http://127.0.0.1:2379"}, nil, "--embedded-client-url and --embedded-peer-url: both 127.0.0.1:2379 (expected two addresses)"},
		{[]string{"--embedded-auto-compaction", "forever"}, nil, `--embedded-auto-compaction: "forever" is not a duration (expected e.g. 1h, or 0 to turn compaction off)`},
		{[]string{"--embedded-quota-bytes", "8GiB"}, nil, `--embedded-quota-bytes: "8GiB" is not a positive number of bytes (expected e.g. 8589934592)`},
		{nil, map[string]string{"CONCORD_EMBEDDED_QUOTA_BYTES": "0"}, `CONCORD_EMBEDDED_QUOTA_BYTES: "0" is not a positive number of bytes (expected e.g. 8589934592)`},
		{[]string{"--etcd", "10.0.0.1:2379", "--embedded-quota-bytes", "4294967296"}, nil, "--embedded-quota-bytes: only without --etcd (it sets the embedded etcd's quota; an etcd of your own takes --quota-backend-bytes)"},
		{[]string{"--data-dir", ""}, nil, "--data-dir: empty (expected a directory)"},
		{[]string{"--listen", "0.0.0.0:7070"}, nil, "--listen: 0.0.0.0:7070" + public},
		{[]string{"--listen", ":7070"}, nil, "--listen: :7070" + public},
		{nil, map[string]string{"CONCORD_LISTEN": "10.1.2.3:7070"}, "CONCORD_LISTEN: 10.1.2.3:7070" + public},
		{[]string{"--credentials-file", badRole}, nil, "--credentials-file: " + badRole + `: line 2: credential "ops": the role is not read, begin or admin (expected name:role:token)`},
		{[]string{"--credentials-file", shortToken}, nil, "--credentials-file: " + shortToken + `: line 1: credential "ops": token shorter than 16 characters`},
		{[]string{"--credentials-file", filepath.Join(dir, "missing")}, nil, "--credentials-file: open "},
		{nil, map[string]string{"CONCORD_CREDENTIALS": "ops:admin"}, "$CONCORD_CREDENTIALS: line 1: an entry is not name:role:token"},
		{[]string{"--credentials-file", goodCreds}, map[string]string{"CONCORD_CREDENTIALS": "viewer:read:0123456789abcdef0123"}, `--credentials-file and $CONCORD_CREDENTIALS: credential "viewer": same token as credential "ops"`},
		{[]string{"--tls-cert", notPEM}, nil, "--tls-cert: needs --tls-key too"},
		{[]string{"--max-undecided", "0"}, nil, `--max-undecided: "0" is not a positive number of transactions (expected e.g. 1000)`},
		{[]string{"--max-pending-messages", "0"}, nil, `--max-pending-messages: "0" is not a positive number, or -1 for no limit (expected e.g. 10000)`},
		{nil, map[string]string{"CONCORD_MAX_PENDING_BYTES": "-5"}, `CONCORD_MAX_PENDING_BYTES: "-5" is not a positive number, or -1 for no limit (expected e.g. 67108864)`},
		{[]string{"--lisen", ":7070"}, nil, "flag provided but not defined: --lisen"},
		{[]string{"--listen"}, nil, "flag needs an argument: --listen"},
		{[]string{"extra"}, nil, `unexpected argument "extra"`},
	}
	for _, c := range cases {
		code, stdout, stderr := runInProcess(append([]string{"serve"}, c.args...), c.env)
		if code != 2 || stdout != "" || !strings.HasPrefix(stderr, "coord serve: "+c.says) || !strings.HasSuffix(stderr, "\nRun 'coord serve --help' for usage.\n") {
			t.Errorf("serve %q env %v: exit %d, stderr %q\nwant exit 2 saying %q", c.args, c.env, code, stderr, c.says)
		}
	}
}

func TestServeFlagsFromEnvironment(t *testing.T) {
	env := map[string]string{
		"CONCORD_LISTEN":    "0.0.0.0:8080",
		"CONCORD_LEASE_TTL": "not a duration", // the command line wins
		"CONCORD_ETCD":      "https://10.0.0.1:2379, 10.0.0.2:2379",
		"CONCORD_ETCD_USER": "concord",
		passwordEnv:         "s3cret",
		"CONCORD_PREFIX":    "/payments",
		// Credentials make a public address acceptable.
		credentialsEnv:                 "ops:admin:0123456789abcdef0123, viewer:read:abcdef0123456789abcd",
		"CONCORD_MAX_UNDECIDED":        "50",
		"CONCORD_MAX_PENDING_MESSAGES": "-1",
		"CONCORD_MAX_UNDECIDED_TOTAL":  "20000",
	}
	fs := serveFlags()
	if _, err := fs.parse([]string{"--lease-ttl", "3s", "--timeout", "7s"}, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	cfg, err := parseServe(fs, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.listen != "0.0.0.0:8080" || cfg.leaseTTL != 3*time.Second || cfg.timeout != 7*time.Second || cfg.prefix != "/payments" {
		t.Errorf("config %+v", cfg)
	}
	if strings.Join(cfg.etcd.endpoints, " ") != "https://10.0.0.1:2379 10.0.0.2:2379" || cfg.embedded != nil {
		t.Errorf("etcd %v, embedded %v: want the two endpoints, no embedded etcd", cfg.etcd.endpoints, cfg.embedded)
	}
	if cfg.credentials.Len() != 2 || cfg.maxUndecided != 50 || cfg.maxUndecidedPerCredential != 500 {
		t.Errorf("access: %d credentials, limits %d and %d; want 2, 50 and 500", cfg.credentials.Len(), cfg.maxUndecided, cfg.maxUndecidedPerCredential)
	}
	if want := (coordinator.StorageLimits{MaxPendingMessages: -1, MaxPendingBytes: coordinator.DefaultMaxPendingBytes, MaxUndecided: 20000}); cfg.storage != want {
		t.Errorf("storage limits %+v, want %+v", cfg.storage, want)
	}
	if cfg.etcd.user != "concord" || cfg.etcd.password != "s3cret" {
		t.Errorf("auth %q/%q", cfg.etcd.user, cfg.etcd.password)
	}
	if cfg.retention != time.Hour || cfg.requestTimeout != coordinator.DefaultRequestTimeout || cfg.log.format != "console" {
		t.Errorf("defaults: %+v", cfg)
	}

	// Without --etcd: the embedded etcd, with its defaults.
	fs = serveFlags()
	fs.parse(nil, func(string) string { return "" })
	cfg, err = parseServe(fs, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	e := cfg.embedded
	if e == nil || e.Dir != "./concord-data" || e.ClientURL.String() != "http://127.0.0.1:2379" || e.PeerURL.String() != "http://127.0.0.1:2380" || e.AutoCompaction != "5m" || e.QuotaBytes != 8<<30 {
		t.Fatalf("embedded %+v", e)
	}
	if cfg.listen != "127.0.0.1:7070" || cfg.prefix != "/tx" {
		t.Errorf("defaults: %+v", cfg)
	}
	// Compaction off, whichever way zero is written.
	for _, off := range []string{"0", "0s", "0h"} {
		fs = serveFlags()
		fs.parse([]string{"--embedded-auto-compaction", off}, func(string) string { return "" })
		if cfg, err = parseServe(fs, func(string) string { return "" }); err != nil || cfg.embedded.AutoCompaction != "0" {
			t.Errorf("--embedded-auto-compaction %s: %+v %v, want compaction off", off, cfg.embedded, err)
		}
	}
}

func TestHelp(t *testing.T) {
	code, stdout, _ := runInProcess([]string{"--help"}, nil)
	for _, want := range []string{"serve ", "tx ", "version ", "CONCORD_SOME_FLAG"} {
		if code != 0 || !strings.Contains(stdout, want) {
			t.Errorf("coord --help: exit %d, no %q in\n%s", code, want, stdout)
		}
	}
	// Every flag of every command is described, with its variable.
	for _, args := range [][]string{{"serve", "--help"}, {"help", "serve"}, {"tx", "list", "-h"}, {"tx", "show", "--help"}, {"tx", "abort", "--help"}, {"version", "--help"}} {
		code, stdout, stderr := runInProcess(args, nil)
		if code != 0 || stderr != "" || !strings.HasPrefix(stdout, "Usage: coord ") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, stdout, stderr)
		}
	}
	_, stdout, _ = runInProcess([]string{"serve", "--help"}, nil)
	fs := serveFlags()
	for _, name := range []string{"listen", "etcd", "etcd-cacert", "etcd-cert", "etcd-key", "etcd-user", "data-dir", "embedded-client-url",
		"embedded-peer-url", "embedded-auto-compaction", "embedded-quota-bytes", "prefix", "lease-ttl", "retention", "timeout", "log-level", "log-format"} {
		fl := fs.Lookup(name)
		if fl == nil || !strings.Contains(stdout, "--"+name+" ") || !strings.Contains(stdout, "$"+envName(envPrefix, name)) || fl.Usage == "" {
			t.Errorf("serve --help does not describe --%s", name)
		}
	}
	if !strings.Contains(stdout, passwordEnv) {
		t.Errorf("serve --help does not say where the password comes from")
	}

	code, _, stderr := runInProcess(nil, nil)
	if code != 2 || !strings.Contains(stderr, "Usage: coord <command>") {
		t.Errorf("coord: exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = runInProcess([]string{"sevre"}, nil)
	if code != 2 || !strings.Contains(stderr, `coord: unknown command "sevre" (expected one of `+strings.Join(commandNames(), ", ")+")") || !strings.Contains(stderr, "serve, tx, version") {
		t.Errorf("coord sevre: exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = runInProcess([]string{"tx", "delete"}, nil)
	if code != 2 || !strings.Contains(stderr, `coord tx: unknown command "delete" (expected one of abort, list, show)`) {
		t.Errorf("coord tx delete: exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = runInProcess([]string{"tx", "show"}, nil)
	if code != 2 || !strings.Contains(stderr, "coord tx show: missing ID\nRun 'coord tx show --help' for usage.") {
		t.Errorf("coord tx show: exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = runInProcess([]string{"tx", "list", "--addr", "localhost:7070"}, nil)
	if code != 2 || !strings.Contains(stderr, `coord tx list: --addr: "localhost:7070" is not an http(s) URL (expected e.g. http://127.0.0.1:7070)`) {
		t.Errorf("coord tx list --addr localhost:7070: exit %d, stderr %q", code, stderr)
	}
}

func TestPositionalArguments(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"ID"}, "ID"},
		{[]string{"ID", "--json"}, "ID"},
		{[]string{"--json", "ID", "--reason", "r"}, "ID"},
		{[]string{"--json", "--", "-ID", "--x"}, "-ID --x"},
	} {
		fs := newFlagSet("t", "t", "t")
		fs.Bool("json", false, "")
		fs.String("reason", "", "")
		pos, err := fs.parse(c.args, func(string) string { return "" })
		if err != nil || strings.Join(pos, " ") != c.want {
			t.Errorf("%q: %q %v, want %q", c.args, pos, err, c.want)
		}
	}
}

func TestVersion(t *testing.T) {
	code, stdout, _ := runInProcess([]string{"version"}, nil)
	if code != 0 || !strings.HasPrefix(stdout, "coord dev go1.") {
		t.Fatalf("version: exit %d, %q", code, stdout)
	}
}

// coord bench reads its own variables, CONCORD_BENCH_*: a service's
// settings exported in the same shell are not taken for the benchmark's.
func TestBenchEnvironment(t *testing.T) {
	for _, tt := range []struct {
		args []string
		env  map[string]string
		says string
	}{
		{nil, map[string]string{"CONCORD_BENCH_RETENTION": "0s"}, `CONCORD_BENCH_RETENTION: "0s" is not positive (expected e.g. 1s)`},
		{nil, map[string]string{"CONCORD_BENCH_CONCURRENCY": "0"}, `CONCORD_BENCH_CONCURRENCY: "0", expected at least 1`},
		// Each would be refused as a bench setting; bench does not read
		// them, and stops at the bad flag instead.
		{[]string{"--payload", "-1"}, map[string]string{"CONCORD_RETENTION": "0s", "CONCORD_CONCURRENCY": "0", "CONCORD_PARTICIPANTS": "0"}, `--payload: "-1", expected 0 to 65536`},
	} {
		code, _, stderr := runInProcess(append([]string{"bench"}, tt.args...), tt.env)
		if code != 2 || !strings.Contains(stderr, tt.says) {
			t.Errorf("env %v: exit %d, stderr %q; want 2 and %q", tt.env, code, stderr, tt.says)
		}
	}
}

// A public address without credentials is accepted with the flag that
// names the risk, from the command line or the environment.
func TestServeInsecurePublicAddress(t *testing.T) {
	for _, c := range []struct {
		args []string
		env  map[string]string
	}{
		{[]string{"--listen", "0.0.0.0:7070", "--" + insecureFlag}, nil},
		{[]string{"--listen", ":7070"}, map[string]string{"CONCORD_INSECURE_NO_AUTH_ON_PUBLIC_ADDRESS": "true"}},
	} {
		fs := serveFlags()
		getenv := func(k string) string { return c.env[k] }
		if _, err := fs.parse(c.args, getenv); err != nil {
			t.Fatal(err)
		}
		if cfg, err := parseServe(fs, getenv); err != nil || cfg.credentials.Len() != 0 {
			t.Errorf("%q %v: %v, want accepted without credentials", c.args, c.env, err)
		}
	}
}

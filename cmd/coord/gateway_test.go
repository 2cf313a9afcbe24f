package main

import (
	"strings"
	"testing"
)

func TestGatewayRefusesBadFlags(t *testing.T) {
	ok := []string{"--participant", "bank-py", "--url", "http://127.0.0.1:8090"}
	cases := []struct {
		args []string
		env  map[string]string
		says string
	}{
		{nil, nil, "--participant is required"},
		{[]string{"--participant", "Bank"}, nil, `--participant: protocol: invalid participant name: "Bank"`},
		{[]string{"--participant", "bank-py"}, nil, "--prepare-url or --url is required"},
		{append(ok, "--lease-ttl", "500ms"), nil, `--lease-ttl: "500ms", expected a duration of at least 1s`},
		{ok, map[string]string{"CONCORD_LEASE_TTL": "x"}, `CONCORD_LEASE_TTL: "x", expected a duration`},
		{append(ok, "--health-failures", "0"), nil, `--health-failures: "0", expected a count of 1 or more`},
		{append(ok, "--secret-file", "/nonexistent/secret"), nil, "--secret-file: open /nonexistent/secret"},
		{append(ok, "--prefix", "tx"), nil, `--prefix: "tx" is not a prefix`},
		{append(ok, "--etcd", ""), nil, "--etcd is empty"},
		{append(ok, "--prepare-url", "ftp://x/prepare"), nil, `gateway: invalid configuration: prepare URL "ftp://x/prepare"`},
	}
	for _, c := range cases {
		code, stdout, stderr := runInProcess(append([]string{"gateway"}, c.args...), c.env)
		if code != 2 || stdout != "" || !strings.HasPrefix(stderr, "coord gateway: "+c.says) {
			t.Errorf("gateway %q env %v: exit %d, stderr %q\nwant exit 2 saying %q", c.args, c.env, code, stderr, c.says)
		}
	}
}

// TestGatewayFlagsFromEnvironment: the variables `coord conformance`
// gives a participant command set the gateway's flags, the lease TTL in
// whole seconds.
func TestGatewayFlagsFromEnvironment(t *testing.T) {
	fs := gatewayFlags()
	env := map[string]string{"CONCORD_PARTICIPANT": "conformance-p", "CONCORD_PREFIX": "/conformance", "CONCORD_LEASE_TTL": "3", "CONCORD_GATEWAY_SECRET": "s"}
	if _, err := fs.parse([]string{"--url", "http://127.0.0.1:8090/"}, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	cfg, _, _, err := parseGateway(fs, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	ttl, err := leaseTTL(fs)
	if err != nil || ttl.Seconds() != 3 {
		t.Fatalf("lease TTL %v, %v: expected 3s", ttl, err)
	}
	if cfg.Name != "conformance-p" || cfg.PrepareURL != "http://127.0.0.1:8090/prepare" || cfg.HealthURL != "http://127.0.0.1:8090/healthz" || string(cfg.Secret) != "s" {
		t.Fatalf("config %+v", cfg)
	}
}

func TestConformanceRefusesBadFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		says string
	}{
		{nil, "--participant-cmd is required"},
		{[]string{"--participant-cmd", "x", "--lease-ttl", "1500ms"}, "--lease-ttl: 1.5s, expected whole seconds, at least 2s"},
		{[]string{"--participant-cmd", "x", "--run", "("}, "--run: error parsing regexp"},
	} {
		code, _, stderr := runInProcess(append([]string{"conformance"}, c.args...), nil)
		if code != 2 || !strings.HasPrefix(stderr, "coord conformance: "+c.says) {
			t.Errorf("conformance %q: exit %d, stderr %q\nwant exit 2 saying %q", c.args, code, stderr, c.says)
		}
	}
}

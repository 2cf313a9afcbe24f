package main

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fuzzedServeFlags are the flags of `coord serve` whose values are parsed
// (files, which would be read, are left out).
var fuzzedServeFlags = []string{
	"listen", "etcd", "embedded-client-url", "embedded-peer-url", "embedded-auto-compaction", "prefix",
	"lease-ttl", "retention", "timeout", "request-timeout", "shutdown-timeout", "max-body-bytes", "log-level", "log-format", "embedded-quota-bytes",
}

// FuzzServeFlag sets one flag of `coord serve`, on the command line or in
// its environment variable, to any value: it is accepted, and durations
// and sizes mean what they say, or refused with a usage error that names
// where the value came from.
func FuzzServeFlag(f *testing.F) {
	for i, v := range []string{"127.0.0.1:0", "https://10.0.0.1:2379, 10.0.0.2:2379", "http://127.0.0.1:0/", "http://[::1]:2380", "0s", "/tx/a",
		"1h30m", "-1s", "500ms", "1e3s", "9223372036854775807ns", "2MB", "debug", "xml"} {
		f.Add(uint8(i), v, false)
		f.Add(uint8(i), v, true)
	}
	f.Add(uint8(6), "2562047h47m16.854775808s", true)
	f.Add(uint8(11), "-0", false)
	f.Add(uint8(1), "http://a:1,https://b", false)
	f.Fuzz(func(t *testing.T, i uint8, value string, fromEnv bool) {
		name := fuzzedServeFlags[int(i)%len(fuzzedServeFlags)]
		source, args, env := "--"+name, []string{"--" + name, value}, map[string]string{}
		if fromEnv {
			if value == "" {
				return // an empty variable is unset
			}
			source, args, env = envName(envPrefix, name), nil, map[string]string{envName(envPrefix, name): value}
		}
		getenv := func(k string) string { return env[k] }
		fs := serveFlags()
		if _, err := fs.parse(args, getenv); err != nil {
			t.Fatalf("%s=%q: %v", source, value, err)
		}
		cfg, err := parseServe(fs, getenv)
		if err != nil {
			var ue *usageError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), source) {
				t.Fatalf("%s=%q: %v, want a usage error naming %s", source, value, err, source)
			}
			return
		}
		want := map[string]time.Duration{"lease-ttl": cfg.leaseTTL, "retention": cfg.retention, "timeout": cfg.timeout,
			"request-timeout": cfg.requestTimeout, "shutdown-timeout": cfg.shutdownTimeout}
		if got, ok := want[name]; ok {
			if d, err := time.ParseDuration(value); err != nil || d != got || d <= 0 {
				t.Fatalf("%s=%q accepted as %v (parsed %v, %v)", source, value, got, d, err)
			}
		}
		if name == "embedded-quota-bytes" {
			if n, err := strconv.ParseInt(value, 10, 64); err != nil || cfg.embedded == nil || cfg.embedded.QuotaBytes != n || n <= 0 {
				t.Fatalf("%s=%q accepted as %+v", source, value, cfg.embedded)
			}
		}
		if name == "max-body-bytes" && cfg.maxBodyBytes <= 0 {
			t.Fatalf("%s=%q accepted as %d", source, value, cfg.maxBodyBytes)
		}
		if name == "etcd" {
			again, err := parseEndpoints(strings.Join(cfg.etcd.endpoints, ","))
			if err != nil || strings.Join(again, ",") != strings.Join(cfg.etcd.endpoints, ",") {
				t.Fatalf("%s=%q accepted as %q, which parses again as %q, %v", source, value, cfg.etcd.endpoints, again, err)
			}
		}
	})
}

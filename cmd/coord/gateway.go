package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/concord-tx/concord/cmd/coord/internal/gateway"
	"github.com/concord-tx/concord/participant"
	"github.com/concord-tx/concord/protocol"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// gatewaySecretEnv holds the signing secret when no --secret-file is
// given; like the etcd password it is never a flag, so it shows neither
// in `ps` nor in logged flags.
const gatewaySecretEnv = envPrefix + "GATEWAY_SECRET"

func gatewayFlags() *flagSet {
	fs := newFlagSet("gateway", "coord gateway --participant NAME --url BASE [flags]", strings.TrimSpace(`
Lets an HTTP service in any language take part in transactions as
participant NAME, with no etcd client: the gateway registers NAME, holds its
lease, and calls the service's POST BASE/prepare, BASE/commit and BASE/abort
(or the URLs given one by one) with the transaction as JSON
{id, revision, participant, phase, participants, deadline,
 payload | payload_base64, reason}, an Idempotency-Key header and, with a
secret, an HMAC-SHA256 signature (PROTOCOL.md §12).

Prepare: 2xx votes yes; 409 or 422 votes no with the body's "reason"; any
other answer, a timeout or no connection is asked again until the deadline,
never a no vote. Commit and abort are asked again until a 2xx.

The gateway takes part only while GET BASE/healthz (--health-url) answers
2xx; after --health-failures failed polls in a row it releases the name
(revokes its lease), so a standby gateway takes over and transactions the
service had not voted in abort. Run several gateways for one name: the
others wait as standbys.

The signing secret is read from --secret-file, or from $`+gatewaySecretEnv+`.
SIGINT or SIGTERM: stop, cancel calls in flight, revoke the lease.`))
	fs.String("participant", "", "participant `name` to register (required)")
	fs.String("url", "", "`base` URL of the service: BASE/prepare, BASE/commit, BASE/abort, BASE/healthz")
	fs.String("prepare-url", "", "`URL` of the service's prepare endpoint (default BASE/prepare)")
	fs.String("commit-url", "", "`URL` of the service's commit endpoint (default BASE/commit)")
	fs.String("abort-url", "", "`URL` of the service's abort endpoint (default BASE/abort)")
	fs.String("health-url", "", "`URL` polled for the service's health (default BASE/healthz)")
	fs.String("secret-file", "", "`file` holding the secret that signs every call (HMAC-SHA256); default $"+gatewaySecretEnv+", none: unsigned")
	fs.String("etcd", "127.0.0.1:2379", "comma-separated etcd `endpoints`")
	fs.String("etcd-cacert", "", "`file` with the PEM CA certificate that signed the etcd servers' certificates (enables TLS)")
	fs.String("etcd-cert", "", "`file` with the PEM client certificate for etcd (with --etcd-key)")
	fs.String("etcd-key", "", "`file` with the PEM private key of --etcd-cert")
	fs.String("etcd-user", "", "etcd `user` name, when etcd has auth enabled; the password comes from $"+passwordEnv)
	fs.String("prefix", protocol.DefaultPrefix, "etcd key `prefix`; must match the coordinator's")
	fs.String("lease-ttl", participant.DefaultLeaseTTL.String(), "lease TTL (`duration`, or whole seconds): how soon a dead gateway is replaced")
	fs.String("call-timeout", gateway.DefaultCallTimeout.String(), "`duration` one call to the service may take")
	fs.String("health-interval", gateway.DefaultHealthInterval.String(), "`duration` between health polls")
	fs.String("health-failures", strconv.Itoa(gateway.DefaultHealthFailures), "failed health polls in a row (`count`) that release the name")
	fs.String("log-level", "info", "`level`: debug, info, warn or error")
	fs.String("log-format", "console", "`format` of the logs: json (one object per line) or console")
	return fs
}

func runGateway(ctx context.Context, c console, args []string) error {
	fs := gatewayFlags()
	if _, err := parseCommand(fs, args, c); err != nil {
		return err
	}
	cfg, ec, lc, err := parseGateway(fs, c.getenv)
	if err != nil {
		return err
	}
	log := newLogger(c.stderr, lc)
	defer log.Sync()
	cfg.Logger = log
	tr, err := startTracing(ctx, c, "coord-gateway-"+cfg.Name, log)
	if err != nil {
		return err
	}
	defer tr.Flush()
	cfg.Participant = append(cfg.Participant, participant.WithTracerProvider(tr.Provider))
	cli, err := clientv3.New(ec.clientConfig(ec.endpoints, 5*time.Second, quieter(log.Named("etcd-client"), lc, zap.ErrorLevel)))
	if err != nil {
		return fmt.Errorf("etcd client: %w", err)
	}
	defer cli.Close()
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	g, err := gateway.New(cli, cfg)
	if err != nil {
		return usagef("%v", err)
	}
	log.Info("gateway running", zap.String("participant", cfg.Name), zap.String("prepare", cfg.PrepareURL), zap.Strings("etcd", ec.endpoints), zap.Bool("signed", len(cfg.Secret) > 0))
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case <-g.Done():
	}
	return g.Close()
}

// parseGateway validates the flags; every error names the flag (or the
// environment variable that set it) and what was expected.
func parseGateway(fs *flagSet, getenv func(string) string) (gateway.Config, etcdConfig, logConfig, error) {
	var (
		cfg = gateway.Config{Name: fs.value("participant")}
		ec  etcdConfig
		lc  logConfig
		err error
	)
	if cfg.Name == "" {
		return cfg, ec, lc, usagef("--participant is required (the name to take part as, e.g. bank-py)")
	}
	if err := protocol.ValidateName(cfg.Name); err != nil {
		return cfg, ec, lc, usagef("%s: %v", fs.source("participant"), err)
	}
	base := fs.value("url")
	var defaults [4]string
	if base != "" {
		defaults[0], defaults[1], defaults[2], defaults[3] = gateway.URLs(base)
	}
	for i, u := range []struct {
		flag string
		dst  *string
	}{{"prepare-url", &cfg.PrepareURL}, {"commit-url", &cfg.CommitURL}, {"abort-url", &cfg.AbortURL}, {"health-url", &cfg.HealthURL}} {
		if *u.dst = fs.value(u.flag); *u.dst == "" {
			*u.dst = defaults[i]
		}
		if *u.dst == "" {
			return cfg, ec, lc, usagef("--%s or --url is required (e.g. --url http://127.0.0.1:8090)", u.flag)
		}
	}
	if f := fs.value("secret-file"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return cfg, ec, lc, usagef("%s: %v", fs.source("secret-file"), err)
		}
		cfg.Secret = []byte(strings.TrimSpace(string(b)))
		if len(cfg.Secret) == 0 {
			return cfg, ec, lc, usagef("%s: %s is empty (expected the shared secret)", fs.source("secret-file"), f)
		}
	} else {
		cfg.Secret = []byte(getenv(gatewaySecretEnv))
	}
	ttl, err := leaseTTL(fs)
	if err != nil {
		return cfg, ec, lc, err
	}
	prefix := fs.value("prefix")
	if _, err := protocol.NewKeys(prefix); err != nil {
		return cfg, ec, lc, usagef("%s: %q is not a prefix (expected a path such as %s: starts with /, no trailing /, no ~)", fs.source("prefix"), prefix, protocol.DefaultPrefix)
	}
	cfg.Participant = []participant.Option{participant.WithPrefix(prefix), participant.WithLeaseTTL(ttl)}
	if cfg.CallTimeout, err = fs.duration("call-timeout"); err != nil {
		return cfg, ec, lc, err
	}
	if cfg.HealthInterval, err = fs.duration("health-interval"); err != nil {
		return cfg, ec, lc, err
	}
	if cfg.HealthFailures, err = strconv.Atoi(fs.value("health-failures")); err != nil || cfg.HealthFailures < 1 {
		return cfg, ec, lc, usagef("%s: %q, expected a count of 1 or more", fs.source("health-failures"), fs.value("health-failures"))
	}
	if lc.level, err = parseLogLevel(fs.value("log-level")); err != nil {
		return cfg, ec, lc, usagef("%s: %v", fs.source("log-level"), err)
	}
	if lc.format, err = parseLogFormat(fs.value("log-format")); err != nil {
		return cfg, ec, lc, usagef("%s: %v", fs.source("log-format"), err)
	}
	if ec.endpoints, err = parseEndpoints(fs.value("etcd")); err != nil {
		return cfg, ec, lc, usagef("%s: %v", fs.source("etcd"), err)
	}
	if len(ec.endpoints) == 0 {
		return cfg, ec, lc, usagef("%s is empty (expected endpoints such as 127.0.0.1:2379)", fs.source("etcd"))
	}
	return cfg, ec, lc, parseExternal(fs, &ec, getenv)
}

// leaseTTL reads --lease-ttl as a duration or as whole seconds (the form
// of CONCORD_LEASE_TTL that `coord conformance` gives).
func leaseTTL(fs *flagSet) (time.Duration, error) {
	s := fs.value("lease-ttl")
	if n, err := strconv.Atoi(s); err == nil {
		s = strconv.Itoa(n) + "s"
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < time.Second {
		return 0, usagef("%s: %q, expected a duration of at least 1s (e.g. 10s) or whole seconds", fs.source("lease-ttl"), fs.value("lease-ttl"))
	}
	return d, nil
}

package main

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/concord-tx/concord/cmd/coord/internal/embedded"
	"github.com/concord-tx/concord/coordinator"
	"github.com/concord-tx/concord/httpapi"
	"github.com/concord-tx/concord/protocol"
	"go.opentelemetry.io/otel/trace"
)

// serveConfig is everything `coord serve` was told, validated.
type serveConfig struct {
	etcd     etcdConfig
	embedded *embedded.Config // nil: an external cluster (etcd.endpoints)
	listen   string
	prefix   string

	leaseTTL        time.Duration
	retention       time.Duration
	timeout         time.Duration
	requestTimeout  time.Duration
	shutdownTimeout time.Duration
	maxBodyBytes    int64
	log             logConfig
	tracerProvider  trace.TracerProvider // from the OTEL_* variables; nil: the global one
}

func serveFlags() *flagSet {
	fs := newFlagSet("serve", "coord serve [flags]", strings.TrimSpace(`
Runs one coordinator replica and its HTTP API. Replicas elect a leader that
aborts transactions past their deadline or whose participant is gone, and
deletes finished ones after the retention window; any replica serves the API.

Without --etcd it starts an embedded, persistent single-node etcd in
--data-dir; participants and etcdctl connect to it at --embedded-client-url.
With --etcd it uses that cluster; turn on auto-compaction there
(--auto-compaction-mode=periodic --auto-compaction-retention=1h).

The etcd password is read from the environment variable `+passwordEnv+` only.

SIGINT or SIGTERM: stop accepting requests, finish those in flight (up to
--shutdown-timeout), release the replica's lease, stop the embedded etcd.

`+tracingHelp))
	fs.String("listen", "127.0.0.1:7070", "`address` of the HTTP API (host:port; port 0 picks a free one)")
	fs.String("etcd", "", "comma-separated `endpoints` of an existing etcd cluster (e.g. https://10.0.0.1:2379,https://10.0.0.2:2379);\nempty: start the embedded etcd")
	fs.String("etcd-cacert", "", "`file` with the PEM CA certificate that signed the etcd servers' certificates (enables TLS)")
	fs.String("etcd-cert", "", "`file` with the PEM client certificate for etcd (with --etcd-key)")
	fs.String("etcd-key", "", "`file` with the PEM private key of --etcd-cert")
	fs.String("etcd-user", "", "etcd `user` name, when etcd has auth enabled; the password comes from $"+passwordEnv)
	fs.String("data-dir", "./concord-data", "`directory` of the embedded etcd's data (kept across restarts)")
	fs.String("embedded-client-url", "http://127.0.0.1:2379", "`URL` where the embedded etcd serves clients (participants, etcdctl)")
	fs.String("embedded-peer-url", "http://127.0.0.1:2380", "raft peer `URL` of the embedded etcd (no peer joins, but etcd listens there)")
	fs.String("embedded-auto-compaction", "1h", "embedded etcd's periodic compaction: keep this much `history` (0 turns it off)")
	fs.String("prefix", protocol.DefaultPrefix, "etcd key `prefix` of every Concord key; participants must use the same")
	fs.String("lease-ttl", coordinator.DefaultLeaseTTL.String(), "`duration` of this replica's lease: a replica that dies is replaced within it (at least 1s)")
	fs.String("retention", "1h", "`duration` finished transactions are kept before they are deleted")
	fs.String("timeout", coordinator.DefaultTimeout.String(), "prepare timeout (`duration`) of transactions begun without one: not decided by then, they abort")
	fs.String("request-timeout", coordinator.DefaultRequestTimeout.String(), "`duration` one attempt of an etcd request may take before it is sent again, to the next member (a copy goes after a quarter of it); also the bound on connecting at startup")
	fs.String("shutdown-timeout", "30s", "`duration` requests in flight may still take after SIGINT/SIGTERM")
	fs.String("max-body-bytes", fmt.Sprint(httpapi.DefaultMaxBodyBytes), "largest request body accepted, in `bytes`; larger ones get 413")
	fs.String("log-level", "info", "`level`: debug, info, warn or error")
	fs.String("log-format", "console", "`format` of the logs: json (one object per line) or console")
	return fs
}

func runServe(ctx context.Context, c console, args []string) error {
	fs := serveFlags()
	if _, err := parseCommand(fs, args, c); err != nil {
		return err
	}
	cfg, err := parseServe(fs, c.getenv)
	if err != nil {
		return err
	}
	log := newLogger(c.stderr, cfg.log)
	defer log.Sync()
	tr, stopTracing, err := startTracing(ctx, c, "coord", log)
	if err != nil {
		return err
	}
	defer stopTracing()
	cfg.tracerProvider = tr.Provider
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return serve(ctx, stop, cfg, log)
}

// parseServe validates the flags; every error names the flag (or the
// environment variable that set it) and what was expected.
func parseServe(fs *flagSet, getenv func(string) string) (serveConfig, error) {
	cfg := serveConfig{listen: fs.value("listen"), prefix: fs.value("prefix")}
	var err error
	for _, d := range []struct {
		name string
		dst  *time.Duration
	}{
		{"lease-ttl", &cfg.leaseTTL}, {"retention", &cfg.retention}, {"timeout", &cfg.timeout},
		{"request-timeout", &cfg.requestTimeout}, {"shutdown-timeout", &cfg.shutdownTimeout},
	} {
		if *d.dst, err = fs.duration(d.name); err != nil {
			return cfg, err
		}
	}
	if cfg.leaseTTL < time.Second {
		return cfg, usagef("%s: %v is too short (expected at least 1s)", fs.source("lease-ttl"), cfg.leaseTTL)
	}
	if l := protocol.DefaultLimits(); l.ValidateTimeout(cfg.timeout) != nil {
		return cfg, usagef("%s: %v is out of bounds (expected between %v and %v)", fs.source("timeout"), cfg.timeout, l.MinTimeout, l.MaxTimeout)
	}
	if cfg.maxBodyBytes, err = fs.size("max-body-bytes"); err != nil {
		return cfg, err
	}
	if _, err := protocol.NewKeys(cfg.prefix); err != nil {
		return cfg, usagef("%s: %q is not a prefix (expected a path such as %s: starts with /, no trailing /, no ~)", fs.source("prefix"), cfg.prefix, protocol.DefaultPrefix)
	}
	if _, _, err := net.SplitHostPort(cfg.listen); err != nil {
		return cfg, usagef("%s: %q is not host:port (expected e.g. 127.0.0.1:7070 or :7070)", fs.source("listen"), cfg.listen)
	}
	if cfg.log.level, err = parseLogLevel(fs.value("log-level")); err != nil {
		return cfg, usagef("%s: %v", fs.source("log-level"), err)
	}
	if cfg.log.format, err = parseLogFormat(fs.value("log-format")); err != nil {
		return cfg, usagef("%s: %v", fs.source("log-format"), err)
	}
	if cfg.etcd.endpoints, err = parseEndpoints(fs.value("etcd")); err != nil {
		return cfg, usagef("%s: %v", fs.source("etcd"), err)
	}
	if len(cfg.etcd.endpoints) == 0 {
		for _, name := range []string{"etcd-cacert", "etcd-cert", "etcd-key", "etcd-user"} {
			if fs.value(name) != "" {
				return cfg, usagef("%s: only with --etcd (the embedded etcd serves plain HTTP without auth)", fs.source(name))
			}
		}
		cfg.embedded, err = parseEmbedded(fs)
		return cfg, err
	}
	return cfg, parseExternal(fs, &cfg.etcd, getenv)
}

// parseEmbedded validates the embedded etcd's flags.
func parseEmbedded(fs *flagSet) (*embedded.Config, error) {
	ec := &embedded.Config{Dir: fs.value("data-dir"), AutoCompaction: fs.value("embedded-auto-compaction")}
	if ec.Dir == "" {
		return nil, usagef("%s: empty (expected a directory)", fs.source("data-dir"))
	}
	for _, f := range []struct {
		name string
		dst  *url.URL
	}{{"embedded-client-url", &ec.ClientURL}, {"embedded-peer-url", &ec.PeerURL}} {
		name, dst := f.name, f.dst
		s := fs.value(name)
		u, err := url.Parse(s)
		if err != nil || u.Scheme != "http" || u.Port() == "" || (u.Path != "" && u.Path != "/") {
			return nil, usagef("%s: %q is not an http URL with a port (expected e.g. %s)", fs.source(name), s, fs.Lookup(name).DefValue)
		}
		u.Path = ""
		*dst = *u
	}
	if ec.ClientURL.Host == ec.PeerURL.Host {
		return nil, usagef("--embedded-client-url and --embedded-peer-url: both %s (expected two addresses)", ec.ClientURL.Host)
	}
	switch d, err := time.ParseDuration(ec.AutoCompaction); {
	case err != nil || d < 0:
		return nil, usagef("%s: %q is not a duration (expected e.g. 1h, or 0 to turn compaction off)", fs.source("embedded-auto-compaction"), ec.AutoCompaction)
	case d == 0:
		ec.AutoCompaction = "0" // off, however it was written
	}
	return ec, nil
}

// parseExternal validates the flags of an external etcd: TLS and auth.
func parseExternal(fs *flagSet, ec *etcdConfig, getenv func(string) string) error {
	ca, cert, key := fs.value("etcd-cacert"), fs.value("etcd-cert"), fs.value("etcd-key")
	if ca != "" || cert != "" || key != "" {
		tc, err := loadTLS(ca, cert, key)
		if err != nil {
			return usagef("%v", err)
		}
		ec.tls = tc
		for _, ep := range ec.endpoints {
			if strings.HasPrefix(ep, "http://") {
				return usagef("%s: %q is plain http but TLS flags are set (expected https:// endpoints)", fs.source("etcd"), ep)
			}
		}
	}
	ec.user = fs.value("etcd-user")
	ec.password = getenv(passwordEnv)
	switch {
	case strings.Contains(ec.user, ":"):
		return usagef("%s: contains \":\" (expected a user name; the password comes from $%s)", fs.source("etcd-user"), passwordEnv)
	case ec.user != "" && ec.password == "":
		return usagef("%s: set, but $%s is empty (expected the password there)", fs.source("etcd-user"), passwordEnv)
	case ec.user == "" && ec.password != "":
		return usagef("$%s: set, but --etcd-user is not (expected both or neither)", passwordEnv)
	}
	return nil
}

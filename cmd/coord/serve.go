package main

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strconv"
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

	// The API's edge: who may call it, over what, how much.
	credentials               *httpapi.Credentials // none: loopback only, everyone admin
	credentialsFile           string               // read again on SIGHUP
	credentialsFlag           string               // where credentialsFile came from, for errors
	credentialsText           string               // $CONCORD_CREDENTIALS
	insecure                  bool                 // --insecure-no-auth-on-public-address
	tlsCert, tlsKey           string               // empty: plain HTTP
	maxUndecided              int
	maxUndecidedPerCredential int
	storage                   coordinator.StorageLimits // what etcd may hold, over every replica
	console                   consoleConfig             // the web console (webconsole.go)
}

// credentialsEnv holds credentials in the format of --credentials-file
// (entries separated by newlines, spaces or commas). It is read from the
// environment only, so that tokens show neither in ps nor in logged flags.
const credentialsEnv = envPrefix + "CREDENTIALS"

// insecureFlag serves the API without credentials on an address other
// than loopback; its name says what it risks.
const insecureFlag = "insecure-no-auth-on-public-address"

// defaultEmbeddedQuota is the embedded etcd's space quota: etcd's largest
// advised, four times its own default, which the demo's own load would
// come close to at the default --retention (README, "Capacity").
const defaultEmbeddedQuota = 8 << 30

func serveFlags() *flagSet {
	fs := newFlagSet("serve", "coord serve [flags]", strings.TrimSpace(`
Runs one coordinator replica and its HTTP API. Replicas elect a leader that
aborts transactions past their deadline or whose participant is gone, and
deletes finished ones after the retention window; any replica serves the API.

Without --etcd it starts an embedded, persistent single-node etcd in
--data-dir; participants and etcdctl connect to it at --embedded-client-url.
With --etcd it uses that cluster; turn on auto-compaction there
(--auto-compaction-mode=periodic --auto-compaction-retention=5m), and size
its quota for the load (README, "Capacity").

The etcd password is read from the environment variable `+passwordEnv+` only.

Access: with --credentials-file (or $`+credentialsEnv+`) every request but
/healthz needs a bearer token of a credential whose role allows it: read
(list, show, /metrics), begin (and read), admin (abort, and all the rest).
The file has one credential per line, name:role:token (# comments). Without
credentials the API serves only a loopback --listen address, to everyone
there; any other address needs credentials or --`+insecureFlag+`.
--tls-cert and --tls-key serve HTTPS; the certificate is read again when its
files change. SIGHUP reads the certificate and the credentials file again.

SIGINT or SIGTERM: stop accepting requests, finish those in flight (up to
--shutdown-timeout), release the replica's lease, stop the embedded etcd.
In any state (starting, connecting to etcd, standby, serving) the process
ends at the latest 5s past --shutdown-timeout; a second signal ends it at
once. A --data-dir in use by another coord is an error at once.

`+tracingHelp))
	fs.String("listen", "127.0.0.1:7070", "`address` of the HTTP API (host:port; port 0 picks a free one); other than loopback only with credentials")
	fs.String("credentials-file", "", "`file` of the credentials that may call the API, one name:role:token a line (role read, begin or admin);\nmore can come from $"+credentialsEnv+"; none: loopback only, every caller is admin")
	fs.Bool(insecureFlag, false, "serve without credentials on an address other than loopback: anyone who reaches it can begin and abort transactions")
	fs.String("tls-cert", "", "`file` with the PEM certificate (chain) of the API, to serve HTTPS (with --tls-key)")
	fs.String("tls-key", "", "`file` with the PEM private key of --tls-cert")
	fs.Int("max-undecided", httpapi.DefaultMaxUndecided, "most `transactions` begun through this replica's API that may be undecided at once; more get 429")
	fs.Int("max-undecided-per-credential", httpapi.DefaultMaxUndecidedPerCredential, "most undecided `transactions` one credential may have begun through this replica's API; more get 429")
	fs.Int("max-pending-messages", coordinator.DefaultMaxPendingMessages, "most unacknowledged inbox `messages` one participant may have in etcd before a begin naming it gets 429 (-1: no limit)")
	fs.Int("max-pending-bytes", coordinator.DefaultMaxPendingBytes, "most `bytes` of unacknowledged inbox messages one participant may have in etcd before a begin naming it gets 429 (-1: no limit)")
	fs.Int("max-undecided-total", coordinator.DefaultMaxUndecided, "most undecided `transactions` in etcd, begun by any client, before a begin gets 429 (-1: no limit)")
	fs.String("etcd", "", "comma-separated `endpoints` of an existing etcd cluster (e.g. https://10.0.0.1:2379,https://10.0.0.2:2379);\nempty: start the embedded etcd")
	fs.String("etcd-cacert", "", "`file` with the PEM CA certificate that signed the etcd servers' certificates (enables TLS)")
	fs.String("etcd-cert", "", "`file` with the PEM client certificate for etcd (with --etcd-key)")
	fs.String("etcd-key", "", "`file` with the PEM private key of --etcd-cert")
	fs.String("etcd-user", "", "etcd `user` name, when etcd has auth enabled; the password comes from $"+passwordEnv)
	fs.String("data-dir", "./concord-data", "`directory` of the embedded etcd's data (kept across restarts)")
	fs.String("embedded-client-url", "http://127.0.0.1:2379", "`URL` where the embedded etcd serves clients (participants, etcdctl)")
	fs.String("embedded-peer-url", "http://127.0.0.1:2380", "raft peer `URL` of the embedded etcd (no peer joins, but etcd listens there)")
	fs.String("embedded-auto-compaction", "5m", "embedded etcd's periodic compaction: keep this much `history` (0 turns it off); etcd keeps\nbetween one and two times this, which with --retention sets the space etcd needs under load (README, \"Capacity\")")
	fs.String("embedded-quota-bytes", fmt.Sprint(defaultEmbeddedQuota), "embedded etcd's space quota in `bytes` (8 GiB, etcd's largest advised; its own default is 2 GiB): at it, etcd\ntakes no more writes and Concord refuses new transactions (README, \"Capacity\" and \"When etcd is full\")")
	fs.String("embedded-tls-cert", "", "`file` with the PEM certificate the embedded etcd serves its clients with (with --embedded-tls-key;\n--embedded-client-url must then be https://)")
	fs.String("embedded-tls-key", "", "`file` with the PEM private key of --embedded-tls-cert")
	fs.String("embedded-client-ca", "", "`file` with the PEM CA certificate clients of the embedded etcd must present a certificate of;\nthe coordinator's own is --etcd-cert and --etcd-key (--etcd-cacert defaults to this file)")
	fs.String("prefix", protocol.DefaultPrefix, "etcd key `prefix` of every Concord key; participants must use the same")
	fs.String("lease-ttl", coordinator.DefaultLeaseTTL.String(), "`duration` of this replica's lease: a replica that dies is replaced within it (at least 1s)")
	fs.String("retention", "1h", "`duration` finished transactions are kept before they are deleted")
	fs.String("timeout", coordinator.DefaultTimeout.String(), "prepare timeout (`duration`) of transactions begun without one: not decided by then, they abort")
	fs.String("request-timeout", coordinator.DefaultRequestTimeout.String(), "`duration` one attempt of an etcd request may take before it is sent again, to the next member (a copy goes after a quarter of it); also the bound on connecting at startup")
	fs.String("shutdown-timeout", "30s", "`duration` requests in flight may still take after SIGINT/SIGTERM")
	fs.String("max-body-bytes", fmt.Sprint(httpapi.DefaultMaxBodyBytes), "largest request body accepted, in `bytes`; larger ones get 413")
	fs.String("log-level", "info", "`level`: debug, info, warn or error")
	fs.String("log-format", "console", "`format` of the logs: json (one object per line) or console")
	consoleFlags(fs) // the web console's flags (webconsole.go)
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
	tr, err := startTracing(ctx, c, "coord", log)
	if err != nil {
		return err
	}
	defer tr.Flush()
	cfg.tracerProvider = tr.Provider
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	defer boundShutdown(ctx, stop, cfg.shutdownTimeout+shutdownGrace, log, os.Exit)()
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
	if err := parseAccess(fs, &cfg, getenv); err != nil {
		return cfg, err
	}
	if cfg.log.level, err = parseLogLevel(fs.value("log-level")); err != nil {
		return cfg, usagef("%s: %v", fs.source("log-level"), err)
	}
	if cfg.log.format, err = parseLogFormat(fs.value("log-format")); err != nil {
		return cfg, usagef("%s: %v", fs.source("log-format"), err)
	}
	if cfg.console, err = parseConsole(fs); err != nil { // the web console (webconsole.go)
		return cfg, err
	}
	if cfg.etcd.endpoints, err = parseEndpoints(fs.value("etcd")); err != nil {
		return cfg, usagef("%s: %v", fs.source("etcd"), err)
	}
	if len(cfg.etcd.endpoints) == 0 {
		if fs.value("etcd-user") != "" {
			return cfg, usagef("%s: only with --etcd (the embedded etcd has no auth; it can require client certificates: --embedded-client-ca)", fs.source("etcd-user"))
		}
		if cfg.embedded, err = parseEmbedded(fs); err != nil {
			return cfg, err
		}
		return cfg, parseEmbeddedTLS(fs, cfg.embedded, &cfg.etcd)
	}
	if _, set := fs.origin["embedded-quota-bytes"]; set {
		return cfg, usagef("%s: only without --etcd (it sets the embedded etcd's quota; an etcd of your own takes --quota-backend-bytes)", fs.source("embedded-quota-bytes"))
	}
	for _, name := range embeddedTLSFlags {
		if fs.value(name) != "" {
			return cfg, usagef("%s: only without --etcd (it configures the embedded etcd)", fs.source(name))
		}
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
		if err != nil || (u.Scheme != "http" && !(u.Scheme == "https" && name == "embedded-client-url")) || u.Port() == "" || (u.Path != "" && u.Path != "/") {
			return nil, usagef("%s: %q is not an http URL with a port (expected e.g. %s)", fs.source(name), s, fs.Lookup(name).DefValue)
		}
		u.Path = ""
		*dst = *u
	}
	if ec.ClientURL.Host == ec.PeerURL.Host {
		return nil, usagef("--embedded-client-url and --embedded-peer-url: both %s (expected two addresses)", ec.ClientURL.Host)
	}
	var err error
	if ec.QuotaBytes, err = fs.size("embedded-quota-bytes"); err != nil {
		return nil, err
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

// parseAccess validates the flags of the API's edge: credentials, TLS,
// limits, and the refusal to serve a public address without credentials.
func parseAccess(fs *flagSet, cfg *serveConfig, getenv func(string) string) error {
	var err error
	cfg.credentialsFile, cfg.credentialsText = fs.value("credentials-file"), getenv(credentialsEnv)
	cfg.credentialsFlag = fs.source("credentials-file")
	cfg.insecure = fs.value(insecureFlag) == "true"
	if cfg.credentials, err = cfg.loadCredentials(); err != nil {
		return usagef("%v", err)
	}
	if err := cfg.checkExposure(cfg.credentials); err != nil {
		return usagef("%s: %v", fs.source("listen"), err)
	}
	cfg.tlsCert, cfg.tlsKey = fs.value("tls-cert"), fs.value("tls-key")
	switch {
	case cfg.tlsCert != "" && cfg.tlsKey == "":
		return usagef("%s: needs --tls-key too", fs.source("tls-cert"))
	case cfg.tlsKey != "" && cfg.tlsCert == "":
		return usagef("%s: needs --tls-cert too", fs.source("tls-key"))
	}
	for _, l := range []struct {
		name string
		dst  *int
	}{{"max-undecided", &cfg.maxUndecided}, {"max-undecided-per-credential", &cfg.maxUndecidedPerCredential}} {
		s := fs.value(l.name)
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return usagef("%s: %q is not a positive number of transactions (expected e.g. %s)", fs.source(l.name), s, fs.Lookup(l.name).DefValue)
		}
		*l.dst = n
	}
	// The coordinator's storage limits: counted in etcd, over every client.
	for _, l := range []struct {
		name string
		set  func(int64)
	}{
		{"max-pending-messages", func(n int64) { cfg.storage.MaxPendingMessages = int(n) }},
		{"max-pending-bytes", func(n int64) { cfg.storage.MaxPendingBytes = n }},
		{"max-undecided-total", func(n int64) { cfg.storage.MaxUndecided = int(n) }},
	} {
		s := fs.value(l.name)
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1 && n != -1 {
			return usagef("%s: %q is not a positive number, or -1 for no limit (expected e.g. %s)", fs.source(l.name), s, fs.Lookup(l.name).DefValue)
		}
		l.set(n)
	}
	return nil
}

// loadCredentials reads --credentials-file and $CONCORD_CREDENTIALS
// (at start, and again on SIGHUP).
func (cfg *serveConfig) loadCredentials() (*httpapi.Credentials, error) {
	creds := &httpapi.Credentials{}
	if cfg.credentialsFile != "" {
		var err error
		if creds, err = httpapi.LoadCredentials(cfg.credentialsFile); err != nil {
			return nil, fmt.Errorf("%s: %w", cfg.credentialsFlag, err)
		}
	}
	if cfg.credentialsText == "" {
		return creds, nil
	}
	more, err := httpapi.ParseCredentials(cfg.credentialsText, "$"+credentialsEnv)
	if err != nil {
		return nil, err
	}
	if creds, err = creds.Merge(more); err != nil {
		return nil, fmt.Errorf("%s and $%s: %w", cfg.credentialsFlag, credentialsEnv, err)
	}
	return creds, nil
}

// checkExposure refuses to serve an address other than loopback without
// credentials, unless told to accept the risk.
func (cfg *serveConfig) checkExposure(creds *httpapi.Credentials) error {
	host, _, _ := net.SplitHostPort(cfg.listen)
	if creds.Len() > 0 || isLoopback(host) || cfg.insecure {
		return nil
	}
	return fmt.Errorf("%s is not a loopback address, and no credentials are configured: anyone who reaches it could begin and abort transactions.\n"+
		"Configure credentials with --credentials-file FILE (one name:role:token a line, role read, begin or admin) or $%s,\n"+
		"or accept the risk with --%s", cfg.listen, credentialsEnv, insecureFlag)
}

// isLoopback reports whether host (of --listen) names only this machine.
// An empty host (":7070") is every address.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

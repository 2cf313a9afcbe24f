package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/concord-tx/concord/cmd/demo-participant/internal/bank"
	"github.com/concord-tx/concord/cmd/internal/otelsetup"
	"github.com/concord-tx/concord/internal/flowcontrol"
	"github.com/concord-tx/concord/internal/tracing"
	"github.com/concord-tx/concord/participant"
	"github.com/concord-tx/concord/protocol"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

type serveConfig struct {
	name        string
	etcd        string
	db          string
	store       string
	spec        storeSpec
	listen      string
	accounts    string
	leaseTTL    time.Duration
	prefix      string
	logLevel    string
	commitGate  string
	prepareGate string
}

// runServe runs a bank until ctx ends (SIGINT or SIGTERM), then shuts down:
// the participant first (it waits for handlers in flight and revokes its
// lease), then the HTTP server, then the store.
func runServe(ctx context.Context, args []string, stderr io.Writer) int {
	var c serveConfig
	fs := flag.NewFlagSet("demo-participant serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.name, "name", "", "participant name of this bank, e.g. bank-a (required)")
	fs.StringVar(&c.etcd, "etcd", "127.0.0.1:2379", "etcd endpoints, comma-separated")
	fs.StringVar(&c.db, "db", "", "bbolt file holding the accounts (default <name>.db); see --store for the others")
	fs.StringVar(&c.store, "store", "", "where the accounts are: postgres://user@host:5432/database, sqlite:PATH or bbolt:PATH (default: the bbolt file of --db)")
	fs.StringVar(&c.listen, "listen", "127.0.0.1:8081", "HTTP address for GET /accounts, /applied and /healthz")
	fs.StringVar(&c.accounts, "accounts", "", "opening balances of a new store, e.g. alice=100,bob=50; an existing store keeps its own")
	fs.DurationVar(&c.leaseTTL, "lease-ttl", participant.DefaultLeaseTTL, "participant lease TTL: how soon a dead bank's unvoted transactions abort")
	fs.StringVar(&c.prefix, "prefix", protocol.DefaultPrefix, "etcd key prefix; must match the coordinator's")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&c.commitGate, "commit-gate", "", "testing only: Commit waits until this file exists")
	fs.StringVar(&c.prepareGate, "prepare-gate", "", "testing only: a Prepare that succeeded waits, before the vote is written, until this file exists")
	documentEnv(fs, serveEnvPrefix)
	if err := parseFlags(fs, serveEnvPrefix, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintf(stderr, "demo-participant serve: %v\n", err)
		return exitError
	}
	seed, err := c.validate()
	if err != nil {
		fmt.Fprintf(stderr, "demo-participant serve: %v\n", err)
		return exitError
	}
	log, err := newLogger(c.logLevel, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "demo-participant serve: %v\n", err)
		return exitError
	}
	defer log.Sync()
	// Spans go out over OTLP when the OTEL_* variables ask for it.
	tr, err := otelsetup.Setup(ctx, os.Getenv, c.name, log.Named("otel"), tracing.AttrParticipant.String(c.name))
	if err != nil {
		fmt.Fprintf(stderr, "demo-participant serve: %v\n", err)
		return exitError
	}
	defer tr.Flush()
	if err := runBank(ctx, c, seed, tr.Provider, log); err != nil {
		log.Error("bank stopped", zap.Error(err))
		return exitFailed
	}
	return exitOK
}

func (c *serveConfig) validate() (map[string]int64, error) {
	if c.name == "" {
		return nil, errors.New("--name is required (the bank's participant name, e.g. bank-a)")
	}
	if err := protocol.ValidateName(c.name); err != nil {
		return nil, fmt.Errorf("--name: %w", err)
	}
	if c.db != "" && c.store != "" {
		return nil, fmt.Errorf("--db %q and --store %q both given: --db is the bbolt file, --store any store; give one", c.db, c.store)
	}
	if c.db == "" {
		c.db = c.name + ".db"
	}
	spec, err := parseStore(c.store, c.db)
	if err != nil {
		return nil, err
	}
	c.spec = spec
	if c.leaseTTL < time.Second {
		return nil, fmt.Errorf("--lease-ttl %v, expected at least 1s", c.leaseTTL)
	}
	if _, err := protocol.NewKeys(c.prefix); err != nil {
		return nil, fmt.Errorf("--prefix: %w", err)
	}
	if strings.TrimSpace(c.etcd) == "" {
		return nil, errors.New("--etcd is empty, expected endpoints such as 127.0.0.1:2379")
	}
	if _, _, err := net.SplitHostPort(c.listen); err != nil {
		return nil, fmt.Errorf("--listen: %q is not host:port (expected e.g. 127.0.0.1:8081)", c.listen)
	}
	seed, err := bank.ParseSeed(c.accounts)
	if err != nil {
		return nil, fmt.Errorf("--accounts: %w", err)
	}
	return seed, nil
}

func runBank(ctx context.Context, c serveConfig, seed map[string]int64, tp trace.TracerProvider, base *zap.Logger) error {
	log := base.With(zap.String("participant", c.name)) // the SDK adds the field to its own logs
	// Listening first: a port in use must not leave a new store seeded
	// behind, which a corrected rerun would keep.
	ln, err := net.Listen("tcp", c.listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", c.listen, err)
	}
	store, err := openStore(ctx, c.spec, c.name, seed, log)
	if err != nil {
		ln.Close()
		return err
	}
	defer func() {
		if err := store.close(); err != nil {
			log.Warn("close store", zap.Error(err))
		}
	}()
	if accounts, err := store.ledger.Accounts(); err == nil {
		where := zap.Stringer("store", c.spec)
		if store.created {
			log.Info("new store seeded", where, zap.Any("accounts", accounts))
		} else {
			if len(seed) > 0 {
				log.Info("existing store keeps its balances; --accounts ignored", where)
			}
			log.Info("store opened", where, zap.Any("accounts", accounts))
		}
	}

	cli, err := clientv3.New(clientv3.Config{
		Endpoints:            strings.Split(c.etcd, ","),
		DialTimeout:          5 * time.Second,
		DialKeepAliveTime:    5 * time.Second,
		DialKeepAliveTimeout: 5 * time.Second,
		DialOptions:          flowcontrol.DialOptions(),
		Logger:               log.Named("etcd").WithOptions(zap.IncreaseLevel(zapcore.WarnLevel)),
	})
	if err != nil {
		ln.Close()
		return fmt.Errorf("etcd client: %w", err)
	}
	defer cli.Close()

	gates := bank.Gates{Prepared: c.prepareGate, Commit: c.commitGate}
	if gates != (bank.Gates{}) {
		log.Warn("test gates set: calls wait for the files", zap.String("prepare_gate", c.prepareGate), zap.String("commit_gate", c.commitGate))
	}
	p, err := participant.New(cli, c.name, gates.Wrap(store.handler, log),
		participant.WithPrefix(c.prefix),
		participant.WithLeaseTTL(c.leaseTTL),
		participant.WithLogger(base.Named("participant")),
		participant.WithTracerProvider(tp),
	)
	if err != nil {
		ln.Close()
		return err
	}

	srv := &http.Server{
		Handler:           bank.NewHTTPHandler(store.ledger, c.name, p.IsActive, log),
		ReadHeaderTimeout: 5 * time.Second,
	}
	httpErr := make(chan error, 1)
	go func() { httpErr <- srv.Serve(ln) }()
	log.Info("bank serving", zap.String("listen", ln.Addr().String()), zap.String("etcd", c.etcd), zap.String("prefix", c.prefix))

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-httpErr:
		runErr = fmt.Errorf("http server: %w", err)
	}
	p.Close()
	log.Info("participant closed")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("http shutdown", zap.Error(err))
	}
	return runErr
}

// newLogger returns a JSON logger writing to w.
func newLogger(level string, w io.Writer) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil || lvl < zapcore.DebugLevel || lvl > zapcore.ErrorLevel {
		return nil, fmt.Errorf("--log-level: %q, expected debug, info, warn or error", level)
	}
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	core := zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.Lock(zapcore.AddSync(w)), lvl)
	return zap.New(core), nil
}

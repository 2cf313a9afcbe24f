package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/concord-tx/concord/cmd/coord/internal/embedded"
	"github.com/concord-tx/concord/coordinator"
	"github.com/concord-tx/concord/coordinator/metrics"
	"github.com/concord-tx/concord/httpapi"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// serve runs one coordinator replica until ctx ends (SIGINT or SIGTERM),
// then shuts down in order: stop accepting and finish the requests in
// flight, close the client and the replica (which revokes its lease, so
// another replica takes over at once), close the etcd client, stop the
// embedded etcd. stopSignals restores the default signal handling, so a
// second Ctrl-C exits at once.
func serve(ctx context.Context, stopSignals func(), cfg serveConfig, log *zap.Logger) error {
	// The certificate and the API's port first: either failing fails
	// before etcd is touched.
	var cert *httpapi.Certificate
	if cfg.tlsCert != "" {
		var err error
		if cert, err = httpapi.LoadCertificate(cfg.tlsCert, cfg.tlsKey, log.Named("tls")); err != nil {
			return fmt.Errorf("--tls-cert, --tls-key: %w", err)
		}
	}
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", cfg.listen, err)
	}
	defer ln.Close()

	// A signal before serving ends the start with a word, not an error.
	startFailed := func(while string, err error) error {
		if ctx.Err() == nil {
			return err
		}
		log.Info("stopped by a signal before serving", zap.String("while", while))
		return nil
	}

	endpoints := cfg.etcd.endpoints
	var etcdFailed <-chan error // the embedded etcd's fatal errors
	if cfg.embedded != nil {
		ec := *cfg.embedded
		unlock, err := lockDataDir(ec.Dir)
		if err != nil {
			return err
		}
		defer unlock()
		ec.Logger = quieter(log.Named("etcd"), cfg.log, zap.WarnLevel)
		log.Info("starting embedded etcd", zap.String("data_dir", ec.Dir), zap.String("client_url", ec.ClientURL.String()), zap.String("peer_url", ec.PeerURL.String()), zap.String("auto_compaction", ec.AutoCompaction), zap.Int64("quota_bytes", ec.QuotaBytes))
		emb, err := embedded.Start(ctx, ec)
		if err != nil {
			return startFailed("starting the embedded etcd", err)
		}
		defer func() {
			log.Info("stopping embedded etcd")
			emb.Close()
			log.Info("embedded etcd stopped", zap.String("data_dir", ec.Dir))
		}()
		endpoints, etcdFailed = emb.Endpoints(), emb.Err()
	}

	cli, err := clientv3.New(cfg.etcd.clientConfig(endpoints, cfg.requestTimeout, quieter(log.Named("etcd-client"), cfg.log, zap.ErrorLevel)))
	if err != nil {
		return fmt.Errorf("etcd at %s: %w", strings.Join(endpoints, ","), err)
	}
	defer cli.Close()
	health := func(ctx context.Context) (int64, error) {
		resp, err := cli.Get(ctx, cfg.prefix, clientv3.WithCountOnly())
		if err != nil {
			return 0, err
		}
		return resp.Header.Revision, nil
	}
	log.Info("connecting to etcd", zap.Strings("endpoints", endpoints), zap.Duration("request_timeout", cfg.requestTimeout))
	sctx, cancel := context.WithTimeout(ctx, cfg.requestTimeout)
	rev, err := health(sctx)
	cancel()
	if err != nil {
		return startFailed("connecting to etcd", fmt.Errorf("etcd at %s did not answer within %v (--request-timeout): %w", strings.Join(endpoints, ","), cfg.requestTimeout, err))
	}
	log.Info("connected to etcd", zap.Strings("endpoints", endpoints), zap.String("user", cfg.etcd.user), zap.Bool("tls", cfg.etcd.tls != nil), zap.Int64("rev", rev))

	var replica *coordinator.Replica
	m := metrics.New(func() bool { return replica.IsLeader() })
	shared := []coordinator.Option{
		coordinator.WithPrefix(cfg.prefix),
		coordinator.WithLogger(log),
		coordinator.WithRequestTimeout(cfg.requestTimeout),
		coordinator.WithObserver(m),
		coordinator.WithTracerProvider(cfg.tracerProvider),
	}
	ropts := []coordinator.ReplicaOption{coordinator.WithLeaseTTL(cfg.leaseTTL), coordinator.WithRetention(cfg.retention)}
	copts := []coordinator.ClientOption{coordinator.WithDefaultTimeout(cfg.timeout), coordinator.WithStorageLimits(cfg.storage)}
	for _, o := range shared {
		ropts, copts = append(ropts, o), append(copts, o)
	}
	client, err := coordinator.NewClient(ctx, cli, copts...)
	if err != nil {
		return startFailed("starting the client", fmt.Errorf("client: %w", err))
	}
	defer client.Close()
	// The replica follows the client's watch: one watch for the process.
	if replica, err = coordinator.NewReplica(cli, append(ropts, coordinator.WithClient(client))...); err != nil {
		return fmt.Errorf("replica: %w", err)
	}
	defer func() {
		replica.Close()
		log.Info("replica stopped; its lease is revoked")
	}()

	// Requests get their own context, cancelled only if they outlive the
	// shutdown timeout.
	reqCtx, cancelRequests := context.WithCancel(context.Background())
	defer cancelRequests()
	api := httpapi.New(httpapi.Config{
		Client:                    client,
		Health:                    health,
		Leader:                    replica.IsLeader,
		Metrics:                   m.Handler(),
		Observe:                   m.Request,
		Logger:                    log.Named("http"),
		MaxBodyBytes:              cfg.maxBodyBytes,
		DefaultTimeout:            cfg.timeout,
		WaitGrace:                 cfg.leaseTTL + 2*cfg.requestTimeout,
		RequestTimeout:            2 * cfg.requestTimeout,
		Credentials:               cfg.credentials,
		MaxUndecided:              cfg.maxUndecided,
		MaxUndecidedPerCredential: cfg.maxUndecidedPerCredential,
		TracerProvider:            cfg.tracerProvider,
	})
	defer api.Close()
	if cert != nil || cfg.credentialsFile != "" {
		stopReload := onHangup(func() { reload(cfg, cert, api.Gate(), log) })
		defer stopReload()
	}
	srv := &http.Server{
		Handler:           api,
		BaseContext:       func(net.Listener) context.Context { return reqCtx },
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute, // the body; the answer may wait longer
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          zap.NewStdLog(quieter(log.Named("http"), cfg.log, zap.WarnLevel)),
	}
	scheme := "http://"
	if cert != nil {
		scheme = "https://"
		srv.TLSConfig = cert.TLSConfig()
	}
	// The web console at /, beside the API (webconsole.go).
	closeConsole, err := withConsole(srv, cfg, cli, client, api.Gate(), replica.IsLeader, log)
	if err != nil {
		return err
	}
	defer closeConsole()
	served := make(chan error, 1)
	go func() {
		if cert != nil {
			served <- srv.ServeTLS(ln, "", "")
			return
		}
		served <- srv.Serve(ln)
	}()
	if n := cfg.credentials.Len(); n > 0 {
		log.Info("access control on", zap.Int("credentials", n))
	} else if host, _, _ := net.SplitHostPort(cfg.listen); isLoopback(host) {
		log.Info("access control off: no credentials, every caller is admin", zap.String("listen", cfg.listen))
	} else {
		log.Warn("access control off on a public address (--"+insecureFlag+"): anyone who reaches it can begin and abort transactions", zap.String("listen", cfg.listen))
	}
	log.Info("serving", zap.String("addr", scheme+ln.Addr().String()), zap.String("prefix", cfg.prefix),
		zap.Duration("lease_ttl", cfg.leaseTTL), zap.Duration("retention", cfg.retention), zap.Duration("timeout", cfg.timeout))

	var runErr error
	select {
	case <-ctx.Done():
		stopSignals()
		log.Info("shutting down: finishing requests in flight (signal again to exit at once)", zap.Duration("shutdown_timeout", cfg.shutdownTimeout))
	case err := <-served:
		runErr = fmt.Errorf("http server: %w", err)
	case err := <-etcdFailed:
		runErr = fmt.Errorf("embedded etcd: %w", err)
	}
	if err := drain(srv, cfg.shutdownTimeout, cancelRequests); err != nil {
		log.Warn("requests cancelled at the shutdown timeout", zap.Error(err))
	}
	log.Info("http server stopped")
	return runErr
}

// drain stops srv from accepting and waits for the requests in flight up
// to timeout; then it cancels them, gives them a second to answer, and
// closes every connection.
func drain(srv *http.Server, timeout time.Duration, cancelRequests func()) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := srv.Shutdown(ctx)
	if err == nil || errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	cancelRequests()
	ctx2, cancel2 := context.WithTimeout(context.Background(), time.Second)
	defer cancel2()
	if srv.Shutdown(ctx2) != nil {
		srv.Close()
	}
	return err
}

// onHangup calls reload on every SIGHUP until the returned function is
// called.
func onHangup(reload func()) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			case <-hup:
				reload()
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		close(done)
		wg.Wait()
	}
}

// reload reads the certificate and the credentials again (SIGHUP). What
// does not load, or would leave a public address without credentials,
// is logged and the previous one stays in use.
func reload(cfg serveConfig, cert *httpapi.Certificate, gate *httpapi.Gate, log *zap.Logger) {
	if cert != nil {
		if err := cert.Reload(); err != nil {
			log.Warn("SIGHUP: the certificate does not load; the previous one stays in use", zap.Error(err))
		}
	}
	if cfg.credentialsFile == "" {
		return
	}
	creds, err := cfg.loadCredentials()
	if err == nil {
		err = cfg.checkExposure(creds)
	}
	if err != nil {
		log.Warn("SIGHUP: the credentials do not load; the previous ones stay in use", zap.Error(err))
		return
	}
	gate.SetCredentials(creds)
	log.Info("SIGHUP: credentials loaded", zap.Int("credentials", creds.Len()))
}

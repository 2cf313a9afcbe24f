package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/concord-tx/concord/internal/flowcontrol"
)

// passwordEnv holds the etcd password. It is read from the environment
// only, so that it shows neither in `ps` nor in logged flags.
const passwordEnv = envPrefix + "ETCD_PASSWORD"

// etcdConfig is how `coord serve` reaches an external etcd cluster.
type etcdConfig struct {
	endpoints []string
	tls       *tls.Config // nil: plain connections
	user      string
	password  string
}

// parseEndpoints splits a comma-separated endpoint list, accepting
// host:port, http://host:port and https://host:port.
func parseEndpoints(s string) ([]string, error) {
	var out []string
	for _, ep := range strings.Split(s, ",") {
		ep = strings.TrimSpace(ep)
		if ep == "" {
			continue
		}
		host := ep
		if strings.Contains(ep, "://") {
			u, err := url.Parse(ep)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
				return nil, fmt.Errorf("%q is not an endpoint (expected e.g. http://10.0.0.1:2379 or 10.0.0.1:2379)", ep)
			}
			host = u.Host
		}
		if _, _, err := net.SplitHostPort(host); err != nil {
			return nil, fmt.Errorf("%q has no port (expected e.g. http://10.0.0.1:2379 or 10.0.0.1:2379)", ep)
		}
		out = append(out, ep)
	}
	return out, nil
}

// loadTLS builds the client TLS configuration from PEM files: the CA that
// signed the servers' certificates (empty: the system roots) and an
// optional client certificate and key.
func loadTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("--etcd-cacert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--etcd-cacert: %s holds no PEM certificate", caFile)
		}
		cfg.RootCAs = pool
	}
	switch {
	case certFile != "" && keyFile != "":
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("--etcd-cert, --etcd-key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	case certFile != "":
		return nil, fmt.Errorf("--etcd-cert: needs --etcd-key too")
	case keyFile != "":
		return nil, fmt.Errorf("--etcd-key: needs --etcd-cert too")
	}
	return cfg, nil
}

// clientConfig is the etcd client configuration for endpoints.
func (e etcdConfig) clientConfig(endpoints []string, dialTimeout time.Duration, log *zap.Logger) clientv3.Config {
	return clientv3.Config{
		Endpoints:            endpoints,
		DialTimeout:          dialTimeout,
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: dialTimeout,
		DialOptions:          flowcontrol.DialOptions(),
		TLS:                  e.tls,
		Username:             e.user,
		Password:             e.password,
		Logger:               log,
	}
}

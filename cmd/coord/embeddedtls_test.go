package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/concord-tx/concord/internal/testkit/poll"
	"github.com/concord-tx/concord/protocol"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// TestEmbeddedTLS: with --embedded-tls-cert, --embedded-tls-key and
// --embedded-client-ca the embedded etcd serves its clients over TLS and
// refuses those without a certificate signed by the CA; the coordinator's
// own client connects with --etcd-cert and --etcd-key.
func TestEmbeddedTLS(t *testing.T) {
	t.Parallel()
	certs := newPKI(t)

	addrs := freeAddrs(t, 2)
	clientURL := "https://" + addrs[0]
	coord := startCoord(t, "coord", nil, "--data-dir", t.TempDir(), "--lease-ttl", "2s",
		"--embedded-client-url", clientURL, "--embedded-peer-url", "http://"+addrs[1],
		"--embedded-tls-cert", certs.server.CertFile, "--embedded-tls-key", certs.server.KeyFile,
		"--embedded-client-ca", certs.ca.CertFile,
		"--etcd-cert", certs.client.CertFile, "--etcd-key", certs.client.KeyFile)
	ctx := context.Background()
	poll.Until(t, 10*time.Second, "coord leads", func() (bool, string) { return coord.leader(ctx), "not leading" })
	if l, ok := coord.logs.find("connected to etcd"); !ok || l["tls"] != true {
		t.Errorf("connection log does not say TLS: %v", l)
	}

	roots := x509.NewCertPool()
	roots.AddCert(certs.ca.Cert)
	election := protocol.DefaultKeys().Election()
	count := func(tc *tls.Config) (int64, error) {
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{clientURL}, TLS: tc, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			return 0, err
		}
		defer cli.Close()
		ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		resp, err := cli.Get(ctx, election, clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			return 0, err
		}
		return resp.Count, nil
	}

	// Without a client certificate: refused.
	if n, err := count(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}); err == nil {
		t.Fatalf("a client without a certificate read %d keys, want refused", n)
	}
	// With one signed by the CA: it sees the coordinator's election key.
	cert, err := tls.LoadX509KeyPair(certs.client.CertFile, certs.client.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := count(&tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}); err != nil || n != 1 {
		t.Fatalf("a client with a certificate: %d election keys, %v; want 1", n, err)
	}
}

func TestEmbeddedTLSFlags(t *testing.T) {
	certs := newPKI(t)
	tlsArgs := []string{"--embedded-tls-cert", certs.server.CertFile, "--embedded-tls-key", certs.server.KeyFile}
	https := []string{"--embedded-client-url", "https://127.0.0.1:2379"}
	cases := []struct {
		args []string
		env  map[string]string
		says string
	}{
		{https, nil, `--embedded-client-url: "https://127.0.0.1:2379" is https but --embedded-tls-cert and --embedded-tls-key are not set (expected both, or an http:// URL)`},
		{tlsArgs, nil, `--embedded-client-url: "http://127.0.0.1:2379" is plain http but --embedded-tls-cert is set (expected https://127.0.0.1:2379)`},
		{append(https, "--embedded-tls-cert", certs.server.CertFile), nil, `--embedded-tls-cert and --embedded-tls-key: set both or neither`},
		{append(https, "--embedded-tls-cert", certs.server.CertFile, "--embedded-tls-key", certs.ca.KeyFile), nil, `--embedded-tls-cert, --embedded-tls-key: tls: private key does not match public key`},
		{append(https, tlsArgs...), map[string]string{"CONCORD_EMBEDDED_CLIENT_CA": certs.ca.CertFile}, `CONCORD_EMBEDDED_CLIENT_CA: set, but --etcd-cert and --etcd-key are not (expected the coordinator's own client certificate, signed by that CA)`},
		{append(https, append(tlsArgs, "--embedded-client-ca", certs.server.KeyFile)...), nil, "--embedded-client-ca: " + certs.server.KeyFile + " holds no PEM certificate"},
		{[]string{"--etcd", "10.0.0.1:2379", "--embedded-client-ca", certs.ca.CertFile}, nil, "--embedded-client-ca: only without --etcd (it configures the embedded etcd)"},
		{[]string{"--etcd-user", "root"}, nil, "--etcd-user: only with --etcd (the embedded etcd has no auth; it can require client certificates: --embedded-client-ca)"},
	}
	for _, c := range cases {
		code, stdout, stderr := runInProcess(append([]string{"serve"}, c.args...), c.env)
		if code != 2 || stdout != "" || !strings.HasPrefix(stderr, "coord serve: "+c.says) {
			t.Errorf("serve %q env %v: exit %d, stderr %q\nwant exit 2 saying %q", c.args, c.env, code, stderr, c.says)
		}
	}

	// Valid: the embedded etcd's TLS, and the coordinator's client trusts
	// the client CA when --etcd-cacert is not set.
	fs := serveFlags()
	args := append(append(https, tlsArgs...), "--embedded-client-ca", certs.ca.CertFile, "--etcd-cert", certs.server.CertFile, "--etcd-key", certs.server.KeyFile)
	if _, err := fs.parse(args, func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	cfg, err := parseServe(fs, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if e := cfg.embedded; e == nil || e.TLS == nil || e.TLS.ClientCAFile != certs.ca.CertFile || e.ClientURL.Scheme != "https" {
		t.Fatalf("embedded %+v", e)
	}
	if tc := cfg.etcd.tls; tc == nil || tc.RootCAs == nil || len(tc.Certificates) != 1 {
		t.Fatalf("coordinator's etcd TLS %+v: want the CA and one client certificate", tc)
	}
}

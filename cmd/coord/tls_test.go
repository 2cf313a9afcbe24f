package main

import (
	"context"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/concord-tx/concord/internal/testkit/certtest"
	"github.com/concord-tx/concord/internal/testkit/poll"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// TestEtcdTLS: `coord serve` reaches an etcd that requires client
// certificates with --etcd-cacert, --etcd-cert and --etcd-key; without a
// client certificate it stops at startup.
func TestEtcdTLS(t *testing.T) {
	t.Parallel()
	certs := newPKI(t)

	addrs := freeAddrs(t, 2)
	cfg := embed.NewConfig()
	cfg.Dir = t.TempDir()
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	clientURL := url.URL{Scheme: "https", Host: addrs[0]}
	peerURL := url.URL{Scheme: "http", Host: addrs[1]}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{clientURL}, []url.URL{clientURL}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peerURL}, []url.URL{peerURL}
	cfg.InitialCluster = cfg.Name + "=" + peerURL.String()
	cfg.ClientTLSInfo = transport.TLSInfo{
		CertFile:       certs.server.CertFile,
		KeyFile:        certs.server.KeyFile,
		TrustedCAFile:  certs.ca.CertFile,
		ClientCertAuth: true,
	}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.Close()
		<-e.Server.StopNotify()
	})
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(30 * time.Second):
		t.Fatal("etcd with TLS not ready")
	}

	args := []string{"--etcd", clientURL.String(), "--etcd-cacert", certs.ca.CertFile, "--lease-ttl", "2s", "--request-timeout", "2s"}
	coord := startCoord(t, "coord", nil, append(args, "--etcd-cert", certs.client.CertFile, "--etcd-key", certs.client.KeyFile)...)
	ctx := context.Background()
	poll.Until(t, 10*time.Second, "coord leads", func() (bool, string) { return coord.leader(ctx), "not leading" })
	if l, ok := coord.logs.find("connected to etcd"); !ok || l["tls"] != true {
		t.Errorf("connection log does not say TLS: %v", l)
	}

	cmd := exec.Command(coordBin, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)...)
	output, _ := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(output), "coord serve: etcd at "+clientURL.String()+" did not answer within 2s (--request-timeout)") {
		t.Fatalf("without a client certificate: exit %d\n%s", cmd.ProcessState.ExitCode(), output)
	}
}

// pki is a CA and a server and a client certificate it signed, in PEM
// files of a directory of the test's.
type pki struct{ ca, server, client *certtest.Pair }

func newPKI(t *testing.T) pki {
	t.Helper()
	dir := t.TempDir()
	ca := certtest.New(t, dir, "ca", nil)
	return pki{ca: ca, server: certtest.New(t, dir, "server", ca), client: certtest.New(t, dir, "client", ca)}
}

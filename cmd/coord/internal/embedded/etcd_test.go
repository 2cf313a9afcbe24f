package embedded

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/concord-tx/concord/internal/testkit/freeport"
)

// start runs an embedded etcd on free loopback ports until the test ends.
func start(t *testing.T) *Server {
	t.Helper()
	addrs, err := freeport.Addrs(2)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Start(ctx, Config{
		Dir:            t.TempDir(),
		ClientURL:      url.URL{Scheme: "http", Host: addrs[0]},
		PeerURL:        url.URL{Scheme: "http", Host: addrs[1]},
		AutoCompaction: "0",
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// TestNoCrossSiteWrite sends what any web page can send to the embedded
// etcd's client URL — a cross-origin POST /v3/kv/put with a text/plain
// body, which needs no CORS preflight — and checks that nothing was
// written, while gRPC clients read and write as before.
func TestNoCrossSiteWrite(t *testing.T) {
	s := start(t)
	base := s.Endpoints()[0]
	// {"key": "/tx/evil", "value": "pwned"}, base64 as the gateway wants.
	const forged = `{"key":"L3R4L2V2aWw=","value":"cHduZWQ="}`
	for _, path := range []string{"/v3/kv/put", "/v3beta/kv/put", "/v3alpha/kv/put"} {
		req, err := http.NewRequest(http.MethodPost, base+path, strings.NewReader(forged))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
		req.Header.Set("Origin", "http://evil.example")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("POST %s: %d %s, want 404 (no gateway)", path, resp.StatusCode, body)
		}
	}

	cli, err := clientv3.New(clientv3.Config{Endpoints: s.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	all, err := cli.Get(ctx, "", clientv3.WithFromKey(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	if all.Count != 0 {
		t.Fatalf("%d keys in etcd after the forged requests, want none", all.Count)
	}
	if _, err := cli.Put(ctx, "/tx/ok", "gRPC"); err != nil {
		t.Fatal(err)
	}
	if got, err := cli.Get(ctx, "/tx/ok"); err != nil || len(got.Kvs) != 1 || string(got.Kvs[0].Value) != "gRPC" {
		t.Fatalf("gRPC get after put: %v %v", got, err)
	}

	// The read-only health page stays.
	resp, err := http.Get(base + "/health")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"health":"true"`) {
		t.Fatalf("GET /health: %d %s", resp.StatusCode, body)
	}
}

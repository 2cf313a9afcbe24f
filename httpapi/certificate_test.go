package httpapi_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/concord-tx/concord/httpapi"
	"github.com/concord-tx/concord/internal/testkit/certtest"
	"github.com/concord-tx/concord/internal/testkit/poll"
)

// The API over HTTPS: the client trusts the CA it is given, and the server
// serves a renewed certificate once its files change, without a restart.
func TestHTTPS(t *testing.T) {
	dir := t.TempDir()
	ca := certtest.New(t, dir, "ca", nil)
	first := certtest.New(t, dir, "server", ca)
	cert, err := httpapi.LoadCertificate(first.CertFile, first.KeyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Not httptest's StartTLS: it adds a certificate of its own, which a
	// client without SNI (an IP address) would get.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"ok"}`))
	}), ErrorLog: log.New(io.Discard, "", 0)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(tls.NewListener(ln, cert.TLSConfig()))
	}()
	defer func() {
		srv.Close()
		<-done
	}()
	url := "https://" + ln.Addr().String()

	ctx := context.Background()
	if cl, err := httpapi.NewClient(url); err != nil {
		t.Fatal(err)
	} else if _, err := cl.Health(ctx); err == nil || errors.Is(err, httpapi.ErrUnavailable) {
		t.Errorf("without the CA: %v, want a certificate error", err)
	}
	pool, err := httpapi.LoadCAFile(ca.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	// A new connection per request, to see the certificate of each.
	served := func() (*tls.ConnectionState, error) {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}
		defer tr.CloseIdleConnections()
		cl, err := httpapi.NewClient(url, httpapi.WithHTTPClient(&http.Client{Transport: tr}))
		if err != nil {
			return nil, err
		}
		if _, err := cl.Health(ctx); err != nil {
			return nil, err
		}
		resp, err := (&http.Client{Transport: tr}).Get(url)
		if err != nil {
			return nil, err
		}
		resp.Body.Close()
		return resp.TLS, nil
	}
	if cl, err := httpapi.NewClient(url, httpapi.WithRootCAs(pool)); err != nil {
		t.Fatal(err)
	} else if h, err := cl.Health(ctx); err != nil || h.Status != "ok" {
		t.Fatalf("with the CA: %+v %v", h, err)
	}

	renewed := certtest.New(t, dir, "server", ca)
	poll.Until(t, 10*time.Second, "the renewed certificate served", func() (bool, string) {
		st, err := served()
		if err != nil {
			return false, err.Error()
		}
		return st.PeerCertificates[0].SerialNumber.Cmp(renewed.Cert.SerialNumber) == 0, "serial " + st.PeerCertificates[0].SerialNumber.String()
	})
	// Broken files keep the certificate in use.
	if err := cert.Reload(); err != nil {
		t.Fatal(err)
	}
	bad := certtest.New(t, t.TempDir(), "other", ca)
	if err := copyFile(bad.KeyFile, renewed.KeyFile); err != nil {
		t.Fatal(err)
	}
	if err := cert.Reload(); err == nil {
		t.Error("reload of a key that does not match: no error")
	}
	if st, err := served(); err != nil || st.PeerCertificates[0].SerialNumber.Cmp(renewed.Cert.SerialNumber) != 0 {
		t.Errorf("after a failed reload: %v, want the renewed certificate still served", err)
	}
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o600)
}

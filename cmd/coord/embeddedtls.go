package main

import (
	"crypto/tls"
	"crypto/x509"
	"os"

	"github.com/concord-tx/concord/cmd/coord/internal/embedded"
)

// embeddedTLSFlags are the flags of the embedded etcd's TLS for clients.
var embeddedTLSFlags = []string{"embedded-tls-cert", "embedded-tls-key", "embedded-client-ca"}

// parseEmbeddedTLS validates the embedded etcd's TLS flags into ec.TLS and
// the coordinator's own etcd client TLS (--etcd-cacert, --etcd-cert,
// --etcd-key) into etcd. Without them the embedded etcd serves plain
// http:// and no client TLS flag is accepted.
func parseEmbeddedTLS(fs *flagSet, ec *embedded.Config, etcd *etcdConfig) error {
	cert, key, clientCA := fs.value("embedded-tls-cert"), fs.value("embedded-tls-key"), fs.value("embedded-client-ca")
	if cert == "" && key == "" && clientCA == "" {
		if ec.ClientURL.Scheme == "https" {
			return usagef("%s: %q is https but --embedded-tls-cert and --embedded-tls-key are not set (expected both, or an http:// URL)", fs.source("embedded-client-url"), ec.ClientURL.String())
		}
		for _, name := range []string{"etcd-cacert", "etcd-cert", "etcd-key"} {
			if fs.value(name) != "" {
				return usagef("%s: only with --etcd, or with --embedded-tls-cert (the embedded etcd serves plain HTTP)", fs.source(name))
			}
		}
		return nil
	}
	switch {
	case cert == "" || key == "":
		return usagef("--embedded-tls-cert and --embedded-tls-key: set both or neither (got %s=%q, %s=%q)", fs.source("embedded-tls-cert"), cert, fs.source("embedded-tls-key"), key)
	case ec.ClientURL.Scheme != "https":
		return usagef("%s: %q is plain http but --embedded-tls-cert is set (expected https://%s)", fs.source("embedded-client-url"), ec.ClientURL.String(), ec.ClientURL.Host)
	}
	if _, err := tls.LoadX509KeyPair(cert, key); err != nil {
		return usagef("%s, %s: %v", fs.source("embedded-tls-cert"), fs.source("embedded-tls-key"), err)
	}
	if clientCA != "" {
		pem, err := os.ReadFile(clientCA)
		if err != nil {
			return usagef("%s: %v", fs.source("embedded-client-ca"), err)
		}
		if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			return usagef("%s: %s holds no PEM certificate", fs.source("embedded-client-ca"), clientCA)
		}
		if fs.value("etcd-cert") == "" {
			return usagef("%s: set, but --etcd-cert and --etcd-key are not (expected the coordinator's own client certificate, signed by that CA)", fs.source("embedded-client-ca"))
		}
	}
	ec.TLS = &embedded.TLS{CertFile: cert, KeyFile: key, ClientCAFile: clientCA}
	ca := fs.value("etcd-cacert")
	if ca == "" {
		ca = clientCA
	}
	tc, err := loadTLS(ca, fs.value("etcd-cert"), fs.value("etcd-key"))
	if err != nil {
		return usagef("%v", err)
	}
	etcd.tls = tc
	return nil
}

package httpapi

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"
)

// certCheckEvery is how often, at most, a handshake looks whether the
// certificate files changed.
const certCheckEvery = time.Second

// Certificate is the server's TLS certificate, read from a PEM
// certificate file and key file and read again when they change (looked
// at, at most once a second, by the next handshake) or when Reload is
// called (coord serve: on SIGHUP). A renewal that does not load (a key
// that does not match yet, half-written files) keeps the certificate in
// use, and is tried again a second later.
type Certificate struct {
	certFile, keyFile string
	log               *zap.Logger
	mu                struct {
		sync.Mutex
		cert    *tls.Certificate
		stamp   string // the files' sizes and times when cert was read
		checked time.Time
	}
}

// LoadCertificate reads certFile and keyFile. log receives reloads and
// their failures (nil: nothing is logged).
func LoadCertificate(certFile, keyFile string, log *zap.Logger) (*Certificate, error) {
	if log == nil {
		log = zap.NewNop()
	}
	c := &Certificate{certFile: certFile, keyFile: keyFile, log: log}
	if err := c.Reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// Reload reads the files again; on error the certificate in use stays.
func (c *Certificate) Reload() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reloadLocked(c.stampOf())
}

func (c *Certificate) reloadLocked(stamp string) error {
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("TLS certificate %s, key %s: %w", c.certFile, c.keyFile, err)
	}
	c.mu.cert, c.mu.stamp = &cert, stamp
	if cert.Leaf != nil {
		c.log.Info("TLS certificate loaded", zap.String("cert_file", c.certFile), zap.Strings("names", cert.Leaf.DNSNames), zap.String("not_after", cert.Leaf.NotAfter.UTC().Format(time.RFC3339)))
	}
	return nil
}

// stampOf describes the files as they are now; a change of either
// changes it.
func (c *Certificate) stampOf() string {
	var s string
	for _, f := range []string{c.certFile, c.keyFile} {
		if fi, err := os.Stat(f); err == nil {
			s += fmt.Sprintf("%d/%d;", fi.Size(), fi.ModTime().UnixNano())
		}
	}
	return s
}

// GetCertificate is for tls.Config.GetCertificate.
func (c *Certificate) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := time.Now(); now.Sub(c.mu.checked) >= certCheckEvery {
		c.mu.checked = now
		if stamp := c.stampOf(); stamp != c.mu.stamp {
			if err := c.reloadLocked(stamp); err != nil {
				c.log.Warn("TLS certificate files changed but do not load; the previous certificate stays in use", zap.Error(err))
			}
		}
	}
	return c.mu.cert, nil
}

// TLSConfig is a server configuration that serves this certificate.
func (c *Certificate) TLSConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: c.GetCertificate}
}

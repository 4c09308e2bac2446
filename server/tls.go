package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
)

// certStore holds the server certificate and reloads it on request (SIGHUP)
// without touching open connections: new handshakes get the new pair.
type certStore struct {
	certFile, keyFile string
	cert              atomic.Pointer[tls.Certificate]
}

// reload reads the key pair again; on error the old pair stays.
func (s *certStore) reload() error {
	c, err := tls.LoadX509KeyPair(s.certFile, s.keyFile)
	if err != nil {
		return fmt.Errorf("load TLS key pair: %w", err)
	}
	s.cert.Store(&c)
	return nil
}

func (s *certStore) get(*tls.ClientHelloInfo) (*tls.Certificate, error) { return s.cert.Load(), nil }

// newTLSConfig builds the TLS listener's configuration: TLS 1.2 at least,
// client certificates per TLSAuthClients, verified against the CA file.
func newTLSConfig(c Config) (*tls.Config, *certStore, error) {
	store := &certStore{certFile: c.TLSCertFile, keyFile: c.TLSKeyFile}
	if err := store.reload(); err != nil {
		return nil, nil, err
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: store.get}
	switch c.TLSAuthClients {
	case "no":
		tc.ClientAuth = tls.NoClientCert
	case "optional":
		tc.ClientAuth = tls.VerifyClientCertIfGiven
	case "yes":
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	if c.TLSCACertFile != "" {
		pem, err := os.ReadFile(c.TLSCACertFile)
		if err != nil {
			return nil, nil, fmt.Errorf("read TLS CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, errors.New("TLS CA file: no PEM certificates in " + c.TLSCACertFile)
		}
		tc.ClientCAs = pool
	}
	return tc, store, nil
}

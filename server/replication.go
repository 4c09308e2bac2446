package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// replicationTLS is the TLS configuration a replica dials its primary with
// (--tls-replication), nil without it: the primary's certificate is
// verified against --tls-ca-cert-file, and --tls-cert-file and
// --tls-key-file, when set, are presented as the replica's own (for a
// primary with --tls-auth-clients yes).
func replicationTLS(c Config) (*tls.Config, error) {
	if !c.TLSReplication {
		return nil, nil
	}
	if c.TLSCACertFile == "" {
		return nil, errors.New("--tls-replication needs --tls-ca-cert-file (to verify the primary)")
	}
	pem, err := os.ReadFile(c.TLSCACertFile)
	if err != nil {
		return nil, fmt.Errorf("--tls-replication: read CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--tls-replication: no PEM certificates in %s", c.TLSCACertFile)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	if c.TLSCertFile != "" && c.TLSKeyFile != "" {
		cert, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("--tls-replication: load key pair: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

package replication_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testPKI writes a throwaway CA and one certificate for 127.0.0.1, good for
// a server and a client, and returns the three files.
func testPKI(t *testing.T) (caFile, certFile, keyFile string) {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "replication test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	caFile, certFile, keyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600))
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600))
	return caFile, certFile, keyFile
}

// freePort finds a loopback port nobody listens on.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestReplicationOverTLS: a replica with --tls-replication follows a
// primary's TLS port that requires client certificates.
func TestReplicationOverTLS(t *testing.T) {
	caFile, certFile, keyFile := testPKI(t)
	tlsPort := freePort(t)
	primary := startNode(t, func(c *server.Config) {
		c.TLSPort, c.TLSCertFile, c.TLSKeyFile, c.TLSCACertFile, c.TLSAuthClients = tlsPort, certFile, keyFile, caFile, "yes"
	})
	replica := startNode(t, func(c *server.Config) {
		c.TLSReplication, c.TLSCACertFile, c.TLSCertFile, c.TLSKeyFile = true, caFile, certFile, keyFile
		c.ReplicaOf = "127.0.0.1 " + strconv.Itoa(tlsPort)
	})
	eventually(t, func() bool { return replica.info("replication")["master_link_status"] == "up" },
		"link over TLS:\n"+replica.logs.String())
	setClock(t, epoch, primary, replica)
	primary.must("THROTTLE", "k", 5, 1, 10)
	waitReplicas(t, primary, 1)
	assert.Equal(t, primary.must("DEBUG", "DIGEST"), replica.must("DEBUG", "DIGEST"))

	// Without --tls-replication the TLS port refuses the plaintext link.
	plain := startNode(t, func(c *server.Config) { c.ReplicaOf = "127.0.0.1 " + strconv.Itoa(tlsPort) })
	eventually(t, func() bool { return strings.Contains(plain.logs.String(), "link to primary down") }, "refused")
	assert.Equal(t, "down", plain.info("replication")["master_link_status"])
}

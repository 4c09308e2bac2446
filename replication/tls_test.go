package replication_test

import (
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/testpki"
	"github.com/sluicehq/sluice/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

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
	caFile, certFile, keyFile := testpki.Write(t)
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

package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pki is a throwaway CA with one server and one client certificate.
type pki struct {
	dir     string
	ca      *x509.Certificate
	caKey   *ecdsa.PrivateKey
	pool    *x509.CertPool
	client  tls.Certificate
	serial  int64
	t       *testing.T
	caFile  string
	crtFile string
	keyFile string
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	p := &pki{dir: t.TempDir(), t: t, serial: 1}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sluice test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	p.ca, err = x509.ParseCertificate(der)
	require.NoError(t, err)
	p.caKey = key
	p.pool = x509.NewCertPool()
	p.pool.AddCert(p.ca)
	p.caFile = filepath.Join(p.dir, "ca.pem")
	require.NoError(t, os.WriteFile(p.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	p.crtFile, p.keyFile = filepath.Join(p.dir, "server.pem"), filepath.Join(p.dir, "server.key")
	p.writeServer()
	certPEM, keyPEM := p.issue(x509.ExtKeyUsageClientAuth)
	p.client, err = tls.X509KeyPair(certPEM, keyPEM)
	require.NoError(t, err)
	return p
}

// issue signs a new leaf for 127.0.0.1 with the next serial number.
func (p *pki) issue(usage x509.ExtKeyUsage) (certPEM, keyPEM []byte) {
	p.serial++
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(p.t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(p.serial), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	require.NoError(p.t, err)
	kb, err := x509.MarshalECPrivateKey(key)
	require.NoError(p.t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

// writeServer issues a new server certificate into the files the server reads.
func (p *pki) writeServer() int64 {
	c, k := p.issue(x509.ExtKeyUsageServerAuth)
	require.NoError(p.t, os.WriteFile(p.crtFile, c, 0o600))
	require.NoError(p.t, os.WriteFile(p.keyFile, k, 0o600))
	return p.serial
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func TestTLS(t *testing.T) {
	p := newPKI(t)
	tlsPort := freePort(t)
	proc := startProc(t, nil, "--port", respPort(t), "--tls-port", fmt.Sprint(tlsPort), "--tls-cert-file", p.crtFile,
		"--tls-key-file", p.keyFile, "--tls-ca-cert-file", p.caFile, "--tls-auth-clients", "yes")
	addr := fmt.Sprintf("127.0.0.1:%d", tlsPort)
	ctx := context.Background()
	base := &tls.Config{RootCAs: p.pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}

	withCert := base.Clone()
	withCert.Certificates = []tls.Certificate{p.client}
	c := redis.NewClient(&redis.Options{Addr: addr, TLSConfig: withCert, MaxRetries: -1})
	defer c.Close()
	v, err := c.Do(ctx, "THROTTLE", "tls", 1, 1, 60).Int64Slice()
	require.NoError(t, err)
	assert.Equal(t, int64(2), v[1])

	noCert := redis.NewClient(&redis.Options{Addr: addr, TLSConfig: base.Clone(), MaxRetries: -1})
	defer noCert.Close()
	assert.Error(t, noCert.Ping(ctx).Err(), "a client certificate is required")

	old := withCert.Clone()
	old.MinVersion, old.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
	_, err = tls.Dial("tcp", addr, old)
	assert.Error(t, err, "TLS 1.1 must be refused")

	plain, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	require.NoError(t, plain.SetDeadline(time.Now().Add(5*time.Second)))
	_, _ = io.WriteString(plain, "PING\r\n")
	reply, _ := io.ReadAll(plain)
	plain.Close()
	assert.NotContains(t, string(reply), "PONG", "plaintext on the TLS port is not served")

	// SIGHUP reloads the certificate; an open connection keeps working.
	conn := c.Conn()
	defer conn.Close()
	require.NoError(t, conn.Ping(ctx).Err())
	newSerial := p.writeServer()
	require.NoError(t, proc.cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool { return strings.Contains(proc.Logs(), "TLS certificate reloaded") }, 10*time.Second, 10*time.Millisecond)
	tc, err := tls.Dial("tcp", addr, withCert)
	require.NoError(t, err)
	assert.Equal(t, newSerial, tc.ConnectionState().PeerCertificates[0].SerialNumber.Int64())
	tc.Close()
	assert.NoError(t, conn.Ping(ctx).Err(), "connections survive a reload")
	assert.NoError(t, redis.NewClient(&redis.Options{Addr: proc.Addr}).Ping(ctx).Err(), "the plain port still serves")
}

func TestRequirePassAndACLFile(t *testing.T) {
	dir := t.TempDir()
	passFile := filepath.Join(dir, "pass")
	require.NoError(t, os.WriteFile(passFile, []byte("hunter2\n"), 0o600))
	aclFile := filepath.Join(dir, "users.acl")
	require.NoError(t, os.WriteFile(aclFile, []byte("user app on >apppw ~app:* +@throttle +ping\n"), 0o600))
	proc := startProc(t, nil, "--port", respPort(t), "--requirepass-file", passFile, "--aclfile", aclFile)
	ctx := context.Background()
	anon := redis.NewClient(&redis.Options{Addr: proc.Addr, Protocol: 2, MaxRetries: -1, DisableIdentity: true})
	defer anon.Close()
	assert.EqualError(t, anon.Ping(ctx).Err(), "NOAUTH Authentication required.")
	admin := redis.NewClient(&redis.Options{Addr: proc.Addr, Password: "hunter2"})
	defer admin.Close()
	assert.NoError(t, admin.Ping(ctx).Err())
	app := redis.NewClient(&redis.Options{Addr: proc.Addr, Username: "app", Password: "apppw"})
	defer app.Close()
	assert.NoError(t, app.Do(ctx, "THROTTLE", "app:1", 1, 1, 1).Err())
	assert.Error(t, app.Do(ctx, "THROTTLE", "other:1", 1, 1, 1).Err())
	cfg, err := admin.ConfigGet(ctx, "requirepass").Result()
	require.NoError(t, err)
	assert.Equal(t, "<redacted>", cfg["requirepass"])
	assert.NotContains(t, proc.Logs(), "hunter2")
}

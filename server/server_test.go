package server

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testConfig is the default configuration on a free loopback port, with a
// small table.
func testConfig() Config {
	cfg := Default()
	cfg.ListenAddr = "127.0.0.1:0"
	cfg.Shards = 4
	return cfg
}

// start assembles a server from cfg, logging to logs, and shuts it down at
// the end of the test.
func start(t *testing.T, cfg Config, logs *bytes.Buffer) *Server {
	t.Helper()
	s, err := New(cfg, slog.New(slog.NewTextHandler(logs, nil)))
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, s.Shutdown(context.Background())) })
	return s
}

func TestPolicyFileReload(t *testing.T) {
	p := filepath.Join(t.TempDir(), "policies.toml")
	require.NoError(t, os.WriteFile(p, []byte("[policies.anon]\nlimit = \"50/hour\"\n"), 0o600))
	cfg := testConfig()
	cfg.PolicyFile = p
	var logs bytes.Buffer
	s := start(t, cfg, &logs)
	assert.Equal(t, []string{"anon"}, s.state.cmds.Policies().Names())

	require.NoError(t, os.WriteFile(p, []byte("[policies.anon]\nlimit = \"50/hour\"\n[policies.api]\nlimit = \"10/second\"\n"), 0o600))
	s.Reload()
	assert.Equal(t, []string{"anon", "api"}, s.state.cmds.Policies().Names())
	assert.Contains(t, logs.String(), "SIGHUP: policies reloaded")

	require.NoError(t, os.WriteFile(p, []byte("[policies.anon]\nlimit = \"50/fortnight\"\n"), 0o600))
	s.Reload()
	assert.Equal(t, []string{"anon", "api"}, s.state.cmds.Policies().Names(), "a bad file keeps the old policies")
	assert.Contains(t, logs.String(), "policy file rejected")
	assert.Contains(t, logs.String(), `fortnight`)

	_, err := New(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	assert.ErrorContains(t, err, "--policy-file", "a bad file at start stops the start-up")

	logs.Reset()
	start(t, testConfig(), &logs).Reload()
	assert.Contains(t, logs.String(), "SIGHUP: nothing to reload")
}

func readyz(t *testing.T, s *Server) int {
	t.Helper()
	resp, err := http.Get("http://" + s.metrics.ln.Addr().String() + "/readyz")
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// TestServeAndShutdown runs a durable server through its life: not ready
// before Serve, ready while serving, then Shutdown in its documented order,
// and a second server recovering what the first one wrote.
func TestServeAndShutdown(t *testing.T) {
	cfg := testConfig()
	cfg.DataDir = t.TempDir()
	cfg.Fsync = "always"
	cfg.MetricsAddr = "127.0.0.1:0"
	var logs bytes.Buffer
	s, err := New(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	require.NoError(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, readyz(t, s), "not ready before Serve")

	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	require.Eventually(t, func() bool { return readyz(t, s) == http.StatusOK }, 10*time.Second, 5*time.Millisecond)
	c := redis.NewClient(&redis.Options{Addr: s.Addr().String()})
	defer c.Close()
	ctx := context.Background()
	v, err := c.Do(ctx, "THROTTLE", "k", 4, 1, 3600).Int64Slice()
	require.NoError(t, err)
	assert.Equal(t, []int64{0, 5, 4, -1, 3600}, v)

	require.NoError(t, s.Shutdown(ctx))
	require.NoError(t, <-served, "Serve returns nil after Shutdown")
	require.NoError(t, s.Shutdown(ctx), "a second Shutdown returns the first one's result")
	_, err = net.Dial("tcp", s.Addr().String())
	assert.Error(t, err, "the listener is closed")
	_, err = http.Get("http://" + s.metrics.ln.Addr().String() + "/readyz")
	assert.Error(t, err, "the metrics listener is closed")
	out := logs.String()
	ready, closed, stopped := strings.Index(out, "sluice ready"), strings.Index(out, "persistence closed"), strings.Index(out, "sluice stopped")
	assert.True(t, 0 <= ready && ready < closed && closed < stopped, out)

	logs.Reset()
	s = start(t, cfg, &logs)
	assert.Equal(t, http.StatusServiceUnavailable, readyz(t, s), "not ready before Serve")
	go func() { _ = s.Serve() }()
	require.Eventually(t, func() bool { return readyz(t, s) == http.StatusOK }, 10*time.Second, 5*time.Millisecond)
	assert.Equal(t, 1, s.state.keyCount())
}

// TestNewClosesWhatItOpened: a New that fails (the port is taken) closes
// the listeners it opened and never touched the data directory, so the
// next server can open both.
func TestNewClosesWhatItOpened(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	cfg := testConfig()
	cfg.DataDir = t.TempDir()
	cfg.MetricsAddr = "127.0.0.1:0"
	cfg.ListenAddr = taken.Addr().String()
	var logs bytes.Buffer
	_, err = New(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	assert.ErrorContains(t, err, "address already in use")

	cfg.ListenAddr = "127.0.0.1:0"
	s := start(t, cfg, &logs)
	go func() { _ = s.Serve() }()
	require.Eventually(t, func() bool { return readyz(t, s) == http.StatusOK }, 10*time.Second, 5*time.Millisecond)
}

// TestShutdownBeforeServe closes the listeners New opened, and a later Serve
// returns at once.
func TestShutdownBeforeServe(t *testing.T) {
	var logs bytes.Buffer
	s, err := New(testConfig(), slog.New(slog.NewTextHandler(&logs, nil)))
	require.NoError(t, err)
	addr := s.Addr().String()
	require.NoError(t, s.Shutdown(context.Background()))
	_, err = net.Dial("tcp", addr)
	assert.Error(t, err, "nothing listens any more")
	assert.NoError(t, s.Serve())
	assert.NotContains(t, logs.String(), "sluice ready")
}

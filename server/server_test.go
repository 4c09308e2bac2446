package server

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testConfig is the default configuration on a free loopback port, with a
// small table.
func testConfig() Config {
	cfg := Default()
	cfg.Port = 0
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

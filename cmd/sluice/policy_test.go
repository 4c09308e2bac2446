package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/commands"
	"github.com/sluicehq/sluice/gcra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPolicyFileReload(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	srv := commands.NewServer(commands.Config{Table: gcra.NewTable(1, nil), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	p := filepath.Join(t.TempDir(), "policies.toml")
	require.NoError(t, os.WriteFile(p, []byte("[policies.anon]\nlimit = \"50/hour\"\n"), 0o600))

	pf, err := loadPolicyFile(p, srv, log)
	require.NoError(t, err)
	assert.Equal(t, []string{"anon"}, srv.Policies().Names())

	require.NoError(t, os.WriteFile(p, []byte("[policies.anon]\nlimit = \"50/hour\"\n[policies.api]\nlimit = \"10/second\"\n"), 0o600))
	assert.True(t, pf.reload())
	assert.Equal(t, []string{"anon", "api"}, srv.Policies().Names())

	require.NoError(t, os.WriteFile(p, []byte("[policies.anon]\nlimit = \"50/fortnight\"\n"), 0o600))
	assert.True(t, pf.reload())
	assert.Equal(t, []string{"anon", "api"}, srv.Policies().Names(), "a bad file keeps the old policies")
	assert.Contains(t, logs.String(), "policy file rejected")
	assert.Contains(t, logs.String(), `fortnight`)

	_, err = loadPolicyFile(p, srv, log)
	assert.Error(t, err, "a bad file at start stops the start-up")

	none, err := loadPolicyFile("", srv, log)
	require.NoError(t, err)
	assert.False(t, none.reload())
}

// TestPolicyFileProcess: the binary loads --policy-file at start, reloads it
// on SIGHUP, and keeps the old policies when the new file is bad.
func TestPolicyFileProcess(t *testing.T) {
	p := filepath.Join(t.TempDir(), "policies.toml")
	require.NoError(t, os.WriteFile(p, []byte("[policies.anon]\nlimit = \"50/hour\"\n"), 0o600))
	proc := startProc(t, nil, "--port", "0", "--enable-debug-command", "--policy-file", p)
	c := proc.Client(t)
	ctx := context.Background()
	require.NoError(t, c.Do(ctx, "DEBUG", "CLOCK", "SET", "1893456000000000000").Err())
	v, err := c.Do(ctx, "POLICY.THROTTLE", "anon", "ip:1", "HEADERS").Slice()
	require.NoError(t, err)
	assert.Equal(t, []any{int64(0), int64(50), int64(49), int64(-1), int64(72), `"anon";q=50;w=3600`, `"anon";r=49;t=72`}, v)

	require.NoError(t, os.WriteFile(p, []byte("[policies.anon]\nlimit = \"100/hour\"\n"), 0o600))
	require.NoError(t, proc.cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool { return strings.Contains(proc.Logs(), "policies reloaded") }, 10*time.Second, 10*time.Millisecond)
	rule, err := c.Do(ctx, "POLICY.GET", "anon").Result()
	require.NoError(t, err)
	assert.Contains(t, fmt.Sprint(rule), "100/hour")

	require.NoError(t, os.WriteFile(p, []byte("[policies.anon]\nlimit = \"100/fortnight\"\n"), 0o600))
	require.NoError(t, proc.cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool { return strings.Contains(proc.Logs(), "policy file rejected") }, 10*time.Second, 10*time.Millisecond)
	rule, err = c.Do(ctx, "POLICY.GET", "anon").Result()
	require.NoError(t, err)
	assert.Contains(t, fmt.Sprint(rule), "100/hour", "the old policies stay")
}

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPolicyFileProcess: the binary loads --policy-file at start, reloads it
// on SIGHUP, and keeps the old policies when the new file is bad.
func TestPolicyFileProcess(t *testing.T) {
	p := filepath.Join(t.TempDir(), "policies.toml")
	require.NoError(t, os.WriteFile(p, []byte("[policies.anon]\nlimit = \"50/hour\"\n"), 0o600))
	proc := startProc(t, nil, "--port", respPort(t), "--enable-debug-command", "--policy-file", p)
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

package server

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMemoryBounds: --maxmemory reaches the commands (a bound below what
// any server uses refuses THROTTLE with Redis's -OOM reply and serves the
// rest), and CONFIG GET, INFO and the metrics report the bounds as Redis
// spells them.
func TestMemoryBounds(t *testing.T) {
	cfg := testConfig()
	require.NoError(t, cfg.MaxMemory.Set("1b"))
	var logs bytes.Buffer
	s := start(t, cfg, &logs)
	go func() { _ = s.Serve() }()
	c := redis.NewClient(&redis.Options{Addr: s.Addr().String()})
	defer c.Close()
	ctx := context.Background()
	assert.EqualError(t, c.Do(ctx, "THROTTLE", "k", 1, 1, 60).Err(), "OOM command not allowed when used memory > 'maxmemory'.")
	assert.Equal(t, "PONG", c.Ping(ctx).Val())
	got, err := c.ConfigGet(ctx, "max*").Result()
	require.NoError(t, err)
	assert.Equal(t, map[string]string{
		"maxclients": "10000", "maxclients-per-ip": "0", "maxmemory": "1", "maxmemory-policy": "noeviction",
		"max-query-buffer-total": "268435456", "max-multi-limits": "64", "max-leases-per-key": "1024",
	}, got)
	info := c.Info(ctx, "memory", "clients", "stats").Val()
	for _, field := range []string{"maxmemory:1\r\n", "maxmemory_policy:noeviction\r\n", "used_memory_offheap:0\r\n",
		"query_buffer_bytes:0\r\n", "evicted_clients:0\r\n", "rejected_calls_oom:1\r\n"} {
		assert.Contains(t, info, field)
	}

	mfs, err := newRegistry(s.state, s.net).Gather()
	require.NoError(t, err)
	metrics := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			metrics[name] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	assert.Positive(t, metrics["sluice_used_memory_bytes"])
	assert.Equal(t, 1.0, metrics["sluice_maxmemory_bytes"])
	assert.Equal(t, 1.0, metrics["sluice_errors_total{kind=oom}"])
	assert.Contains(t, metrics, "sluice_query_buffer_bytes")
	assert.Contains(t, metrics, "sluice_evicted_clients_total")
}

// TestPolicyFileLimitBound: a policy with more limits than one
// THROTTLE.MULTI may check (--max-multi-limits) stops the start-up, and on
// SIGHUP is rejected with the old policies kept.
func TestPolicyFileLimitBound(t *testing.T) {
	p := filepath.Join(t.TempDir(), "policies.toml")
	wide := `[policies.wide]` + "\n" + `limit = "1/second; 2/minute; 3/hour"` + "\n"
	require.NoError(t, os.WriteFile(p, []byte(wide), 0o600))
	cfg := testConfig()
	cfg.PolicyFile, cfg.MaxMultiLimits = p, 2
	var logs bytes.Buffer
	_, err := New(cfg, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `policy "wide": 3 limits, at most 2 (--max-multi-limits)`)

	require.NoError(t, os.WriteFile(p, []byte(strings.Replace(wide, "; 3/hour", "", 1)), 0o600))
	s := start(t, cfg, &logs)
	require.NoError(t, os.WriteFile(p, []byte(wide), 0o600))
	s.Reload()
	assert.Contains(t, logs.String(), "policy file rejected")
	assert.Contains(t, logs.String(), "--max-multi-limits")
	assert.Equal(t, 2, len(s.state.cmds.Policies().Get([]byte("wide")).Default.Rates), "the old policy stays")
}

// TestValidateBounds: the bounds of this file are checked with the rest.
func TestValidateBounds(t *testing.T) {
	c := Default()
	c.MaxQueryBufferTotal = Bytes(c.MaxQueryBuffer - 1)
	c.MaxMemory = -1
	c.MaxMultiLimits = 0
	c.MaxLeasesPerKey = 1<<20 + 1
	err := c.Validate()
	require.Error(t, err)
	for _, w := range []string{
		"--max-query-buffer-total 33554431: must be at least --client-query-buffer-limit 33554432",
		"--maxmemory -1: must not be negative", "--max-multi-limits 0: must be 1..16384", "--max-leases-per-key 1048577: must be 1..1048576",
	} {
		assert.Contains(t, err.Error(), w)
	}
}

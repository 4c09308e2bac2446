package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func TestMetricsEndpoint(t *testing.T) {
	port := respPort(t)
	p := startProc(t, nil, "--port", respPort(t), "--metrics-addr", fmt.Sprintf("127.0.0.1:%s", port), "--enable-debug-command", "--pprof")
	base := fmt.Sprintf("http://127.0.0.1:%s", port)
	c := p.Client(t)
	ctx := context.Background()
	require.NoError(t, c.Do(ctx, "DEBUG", "CLOCK", "SET", "1893456000000000000").Err())
	for i := 0; i < 3; i++ {
		require.NoError(t, c.Do(ctx, "THROTTLE", "m", 1, 1, 60).Err()) // 2 allowed, 1 limited
	}
	require.NoError(t, c.Do(ctx, "CL.THROTTLE", "n", 1, 1, 60).Err())
	_ = c.Do(ctx, "NOSUCH").Err()

	code, body := get(t, base+"/metrics")
	require.Equal(t, http.StatusOK, code)
	for _, want := range []string{
		`sluice_throttle_decisions_total{algorithm="gcra",command="throttle",decision="allowed"} 2`,
		`sluice_throttle_decisions_total{algorithm="gcra",command="throttle",decision="limited"} 1`,
		`sluice_throttle_decisions_total{algorithm="gcra",command="cl.throttle",decision="allowed"} 1`,
		`sluice_commands_total{command="throttle"} 3`,
		`sluice_keys 2`,
		`sluice_connected_clients 1`,
		`sluice_command_duration_seconds_bucket{le="+Inf"}`,
		`go_goroutines`,
	} {
		assert.Contains(t, body, want)
	}
	assert.Regexp(t, `sluice_errors_total\{kind="unknown_command_or_arity"\} [1-9]`, body)
	code, body = get(t, base+"/healthz")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "ok", strings.TrimSpace(body))
	code, _ = get(t, base+"/readyz")
	assert.Equal(t, http.StatusOK, code)
	code, body = get(t, base+"/debug/pprof/goroutine?debug=1")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "goroutine profile")
}

func TestMetricsPersistence(t *testing.T) {
	port := respPort(t)
	p := startProc(t, nil, "--port", respPort(t), "--metrics-addr", fmt.Sprintf("127.0.0.1:%s", port),
		"--data-dir", t.TempDir(), "--fsync", "always")
	c := p.Client(t)
	require.NoError(t, c.Do(context.Background(), "THROTTLE", "m", 1, 1, 60).Err())
	code, body := get(t, fmt.Sprintf("http://127.0.0.1:%s/metrics", port))
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "sluice_persistence_unsynced_changes 0", "always: an acknowledged change is synced")
	assert.Regexp(t, `sluice_persistence_fsyncs_total [1-9]`, body)
	assert.Contains(t, body, `sluice_errors_total{kind="persistence_write"} 0`)
	assert.Contains(t, body, "sluice_persistence_last_sync_age_seconds")
}

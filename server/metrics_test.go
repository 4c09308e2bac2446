package server

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// decisionCounts reads INFO decisionstats as "kind/decision" → count, the
// kind being "command algorithm" or "policy name algorithm".
func infoDecisions(t *testing.T, c *redis.Client) map[string]uint64 {
	t.Helper()
	info, err := c.Info(context.Background(), "decisionstats").Result()
	require.NoError(t, err)
	out := map[string]uint64{}
	line := regexp.MustCompile(`^(decisions|policy)_(.+?)(?:_(gcra|fixed|sliding))?:(?:algorithm=(\w+),)?allowed=(\d+),limited=(\d+)$`)
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		m := line.FindStringSubmatch(l)
		require.NotNil(t, m, "INFO line %q", l)
		kind := m[2] + " " + m[3]
		if m[1] == "policy" {
			kind = "policy " + m[2] + " " + m[4]
		}
		for i, d := range []string{"allowed", "limited"} {
			n, err := strconv.ParseUint(m[5+i], 10, 64)
			require.NoError(t, err)
			out[kind+"/"+d] = n
		}
	}
	return out
}

// metricDecisions reads the decision counters of /metrics in the same shape.
func metricDecisions(t *testing.T, s *Server) map[string]uint64 {
	t.Helper()
	resp, err := http.Get("http://" + s.metrics.ln.Addr().String() + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	out := map[string]uint64{}
	cmd := regexp.MustCompile(`(?m)^sluice_throttle_decisions_total\{algorithm="(\w+)",command="([\w.]+)",decision="(\w+)"\} (\d+)$`)
	for _, m := range cmd.FindAllSubmatch(body, -1) {
		n, _ := strconv.ParseUint(string(m[4]), 10, 64)
		out[string(m[2])+" "+string(m[1])+"/"+string(m[3])] = n
	}
	pol := regexp.MustCompile(`(?m)^sluice_policy_decisions_total\{algorithm="(\w+)",decision="(\w+)",policy="([\w.-]+)"\} (\d+)$`)
	for _, m := range pol.FindAllSubmatch(body, -1) {
		n, _ := strconv.ParseUint(string(m[4]), 10, 64)
		out["policy "+string(m[3])+" "+string(m[1])+"/"+string(m[2])] = n
	}
	return out
}

// TestDecisionsInInfoAndMetricsAgree: every decision INFO counts has its
// metric, by command and algorithm and by policy, and both move together
// (window decisions, THROTTLE.MULTI and policies used to be missing from
// the metrics, window decisions from both).
func TestDecisionsInInfoAndMetricsAgree(t *testing.T) {
	p := filepath.Join(t.TempDir(), "policies.toml")
	require.NoError(t, os.WriteFile(p, []byte(`
[policies.api]
limit = "2/minute"
[policies.fixed]
limit = "2/minute"
algorithm = "fixed-window"
[policies.sliding]
limit = "2/minute"
algorithm = "sliding-window"
`), 0o600))
	cfg := testConfig()
	cfg.MetricsAddr = "127.0.0.1:0"
	cfg.PolicyFile = p
	cfg.EnableDebug = true
	var logs bytes.Buffer
	s := start(t, cfg, &logs)
	go func() { _ = s.Serve() }()
	c := redis.NewClient(&redis.Options{Addr: s.Addr().String()})
	defer c.Close()
	ctx := context.Background()
	require.NoError(t, c.Do(ctx, "DEBUG", "CLOCK", "SET", "1893456000000000000").Err())

	// Each kind of decision, three times: two admitted, one refused.
	calls := [][]any{
		{"THROTTLE", "t", 1, 2, 60},
		{"CL.THROTTLE", "c", 1, 2, 60},
		{"THROTTLE.MULTI", 1, "m", 1, 2, 60},
		{"THROTTLE.WINDOW", "wf", 2, 60, 1, "ALGO", "fixed"},
		{"THROTTLE.WINDOW", "ws", 2, 60},
		{"POLICY.THROTTLE", "api", "k"},
		{"POLICY.THROTTLE", "fixed", "k"},
		{"POLICY.THROTTLE", "sliding", "k"},
	}
	before := infoDecisions(t, c)
	assert.Equal(t, before, metricDecisions(t, s), "at rest")
	for _, args := range calls {
		for range 3 {
			require.NoError(t, c.Do(ctx, args...).Err(), "%v", args)
		}
	}
	info, metrics := infoDecisions(t, c), metricDecisions(t, s)
	assert.Equal(t, info, metrics, "INFO decisionstats and /metrics")
	for _, kind := range []string{
		"throttle gcra", "cl.throttle gcra", "throttle.multi gcra", "throttle.window fixed", "throttle.window sliding",
		"policy.throttle gcra", "policy.throttle fixed", "policy.throttle sliding",
		"policy api gcra", "policy fixed fixed", "policy sliding sliding",
	} {
		assert.Equal(t, uint64(2), info[kind+"/allowed"]-before[kind+"/allowed"], kind)
		assert.Equal(t, uint64(1), info[kind+"/limited"]-before[kind+"/limited"], kind)
	}
	stats, err := c.Info(ctx, "stats").Result()
	require.NoError(t, err)
	assert.Contains(t, stats, "throttle_allowed:16\r\n", "the total is every command's")
	assert.Contains(t, stats, "throttle_limited:8\r\n")
}

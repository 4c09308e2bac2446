package deploy

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sluicehq/sluice/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	rulesFile     = "prometheus/sluice-alerts.yml"
	rulesTestFile = "prometheus/sluice-alerts.test.yml"
	dashboardFile = "grafana/sluice.json"
)

// exposition is what a real server's /metrics holds: every series's name
// and labels.
type exposition map[string][]map[string]string

// startServer starts a server with a data directory, a memory bound and
// the metrics listener, and waits until it is ready.
func startServer(t *testing.T) *server.Server {
	t.Helper()
	cfg := server.Default()
	cfg.ListenAddr, cfg.Shards = "127.0.0.1:0", 4
	cfg.DataDir = t.TempDir()
	cfg.Fsync = "always" // a sync before the first reply: the sync age is served from then on
	cfg.MaxMemory = 1 << 30
	cfg.MetricsAddr = "127.0.0.1:0"
	s, err := server.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	go func() { _ = s.Serve() }()
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	// The data directory is recovered after the port opens: wait for /readyz.
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + s.MetricsAddr().String() + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 20*time.Second, 5*time.Millisecond, "the server becomes ready")
	return s
}

// scrape starts a server (startServer), makes decisions both ways, and
// reads /metrics: the series a server serves once it has run a little; and
// adds those of a replica of it (the replication series only a replica
// serves) and the primary's once it has the replica (the per-replica
// series).
func scrape(t *testing.T) exposition {
	t.Helper()
	s := startServer(t)
	c := redis.NewClient(&redis.Options{Addr: s.Addr().String()})
	t.Cleanup(func() { _ = c.Close() })
	for range 3 {
		require.NoError(t, c.Do(context.Background(), "THROTTLE", "k", 0, 1, 60).Err())
	}
	exp := readMetrics(t, s.MetricsAddr().String())

	rcfg := server.Default()
	rcfg.ListenAddr, rcfg.Shards, rcfg.MetricsAddr = "127.0.0.1:0", 4, "127.0.0.1:0"
	rcfg.ReplicaOf = s.Addr().String()
	r, err := server.New(rcfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	go func() { _ = r.Serve() }()
	t.Cleanup(func() { _ = r.Shutdown(context.Background()) })
	var rexp exposition
	require.Eventually(t, func() bool {
		rexp = readMetrics(t, r.MetricsAddr().String())
		return rexp["sluice_replication_lag_seconds"] != nil // after the first heartbeat
	}, 20*time.Second, 10*time.Millisecond, "the replica measures its lag")
	// The primary again, now that it has a replica: the per-replica series.
	var pexp exposition
	require.Eventually(t, func() bool {
		pexp = readMetrics(t, s.MetricsAddr().String())
		return pexp["sluice_replication_replica_lag_bytes"] != nil
	}, 20*time.Second, 10*time.Millisecond, "the primary lists its replica")
	for _, more := range []exposition{rexp, pexp} {
		for name, series := range more {
			exp[name] = append(exp[name], series...)
		}
	}
	return exp
}

// readMetrics reads the series of the /metrics served at addr.
func readMetrics(t *testing.T, addr string) exposition {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	exp := exposition{}
	series := regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? `)
	label := regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		m := series.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		labels := map[string]string{}
		for _, l := range label.FindAllStringSubmatch(m[2], -1) {
			labels[l[1]] = l[2]
		}
		exp[m[1]] = append(exp[m[1]], labels)
	}
	require.NoError(t, sc.Err())
	return exp
}

// prometheusSeries are the series Prometheus records itself for a target.
var prometheusSeries = map[string]bool{"up": true}

// The metric names and the selectors with their label matchers in PromQL.
var (
	metricName = regexp.MustCompile(`\b((?:sluice|go|process)_[a-z0-9_]+|up)\b`)
	selector   = regexp.MustCompile(`\b((?:sluice|go|process)_[a-z0-9_]+|up)\{([^}]*)\}`)
	matcher    = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)"`)
)

// checkExpr checks that every metric expr names exists in exp, and that
// each equality matcher on a label Sluice sets (not job or instance, which
// Prometheus adds) matches one of its series.
func checkExpr(t *testing.T, where, expr string, exp exposition) {
	t.Helper()
	for _, m := range metricName.FindAllString(expr, -1) {
		if _, ok := exp[m]; !ok && !prometheusSeries[m] {
			t.Errorf("%s: %s is not on /metrics", where, m)
		}
	}
	for _, sel := range selector.FindAllStringSubmatch(expr, -1) {
		for _, mm := range matcher.FindAllStringSubmatch(sel[2], -1) {
			name, op, value := mm[1], mm[2], mm[3]
			if op != "=" || name == "job" || name == "instance" || strings.Contains(value, "$") || prometheusSeries[sel[1]] {
				continue
			}
			found := false
			for _, labels := range exp[sel[1]] {
				found = found || labels[name] == value
			}
			assert.True(t, found, "%s: no %s series has %s=%q", where, sel[1], name, value)
		}
	}
}

// TestRulesUseServedMetrics: every metric and label value the alerting
// rules name is on a real server's /metrics.
func TestRulesUseServedMetrics(t *testing.T) {
	exp := scrape(t)
	b, err := os.ReadFile(rulesFile)
	require.NoError(t, err)
	exprs := 0
	for _, line := range strings.Split(string(b), "\n") {
		if i := strings.Index(line, "#"); i >= 0 && !strings.Contains(line[:i], `"`) {
			line = line[:i] // comments name metrics in prose only
		}
		if strings.Contains(line, "expr:") {
			exprs++
		}
		checkExpr(t, rulesFile, line, exp)
	}
	assert.Equal(t, 7, exprs, "the rules read")
}

// dashboard is the part of a Grafana dashboard the test reads.
type dashboard struct {
	UID    string `json:"uid"`
	Panels []struct {
		ID         int    `json:"id"`
		Type       string `json:"type"`
		Title      string `json:"title"`
		Datasource *struct {
			UID string `json:"uid"`
		} `json:"datasource"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	require.NoError(t, err)
	var d dashboard
	require.NoError(t, json.Unmarshal(b, &d))
	return d
}

// TestDashboardUsesServedMetrics: the dashboard is valid JSON, every panel
// queries the dashboard's data source variable, ids are unique, and every
// metric and label value its queries name is on a real server's /metrics.
func TestDashboardUsesServedMetrics(t *testing.T) {
	exp := scrape(t)
	d := readDashboard(t)
	assert.Equal(t, "sluice-overview", d.UID)
	ids := map[int]bool{}
	queries := 0
	for _, p := range d.Panels {
		assert.False(t, ids[p.ID], "panel id %d twice", p.ID)
		ids[p.ID] = true
		if p.Type == "row" || p.Type == "text" {
			continue
		}
		require.NotNil(t, p.Datasource, p.Title)
		assert.Equal(t, "${datasource}", p.Datasource.UID, p.Title)
		require.NotEmpty(t, p.Targets, p.Title)
		for _, tg := range p.Targets {
			queries++
			checkExpr(t, dashboardFile+": "+p.Title, tg.Expr, exp)
		}
	}
	for _, v := range d.Templating.List {
		checkExpr(t, dashboardFile+": variable "+v.Name, v.Definition, exp)
	}
	assert.Greater(t, queries, 15)
}

// promtool finds Debian's promtool (package prometheus; compat/ci-deps.sh
// installs it); the tests skip without it unless SLUICE_COMPAT_STRICT=1.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err == nil {
		return p
	}
	if os.Getenv("SLUICE_COMPAT_STRICT") == "1" {
		t.Fatal("promtool is not installed (apt-get install prometheus, or compat/ci-deps.sh)")
	}
	t.Skip("promtool is not installed (apt-get install prometheus, or compat/ci-deps.sh); SLUICE_COMPAT_STRICT=1 makes this a failure")
	return ""
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	require.NoError(t, err, "%s %s:\n%s", name, strings.Join(args, " "), out)
}

// TestRulesPromtool: promtool accepts the rules, and their unit tests (each
// alert firing on the series it is meant for, and not on its look-alikes)
// pass.
func TestRulesPromtool(t *testing.T) {
	bin := promtool(t)
	run(t, bin, "check", "rules", rulesFile)
	run(t, bin, "test", "rules", rulesTestFile)
}

// TestDashboardQueriesParse: every dashboard query, its Grafana variables
// replaced, parses as PromQL (promtool checks it as a recording rule).
func TestDashboardQueriesParse(t *testing.T) {
	bin := promtool(t)
	d := readDashboard(t)
	vars := strings.NewReplacer("$__rate_interval", "5m", "$job", ".*", "$instance", ".*")
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	n := 0
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			n++
			q, err := json.Marshal(vars.Replace(tg.Expr)) // a JSON string is a YAML string
			require.NoError(t, err)
			fmt.Fprintf(&b, "      - record: dashboard:query%d\n        expr: %s\n", n, q)
		}
	}
	f := filepath.Join(t.TempDir(), "dashboard-queries.yml")
	require.NoError(t, os.WriteFile(f, []byte(b.String()), 0o600))
	run(t, bin, "check", "rules", f)
}

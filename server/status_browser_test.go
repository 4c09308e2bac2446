package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// chromium finds Debian's chromium (compat/ci-deps.sh installs it); the
// test skips without it unless SLUICE_COMPAT_STRICT=1.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("SLUICE_COMPAT_STRICT") == "1" {
		t.Fatal("chromium is not installed (apt-get install chromium, or compat/ci-deps.sh)")
	}
	t.Skip("chromium is not installed (apt-get install chromium, or compat/ci-deps.sh); SLUICE_COMPAT_STRICT=1 makes this a failure")
	return ""
}

// runChromium runs headless chromium on url with a fresh profile and the
// extra flags, logging its network activity; it returns what it printed
// and the URLs it requested.
func runChromium(t *testing.T, bin, url string, extra ...string) (string, []string) {
	t.Helper()
	dir := t.TempDir()
	netlog := filepath.Join(dir, "netlog.json")
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
		"--user-data-dir=" + filepath.Join(dir, "profile"), "--log-net-log=" + netlog, "--net-log-capture-mode=Default",
		// Nothing may resolve but this host, so a request meant for the
		// outside fails instead of leaving (and shows in the net log).
		"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"},
		extra...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errs bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, append(args, url)...)
	cmd.Stdout = &out
	cmd.Stderr = &errs // chromium complains of the missing D-Bus and the like
	require.NoError(t, cmd.Run(), "chromium: %s", errs.String())
	return out.String(), pageRequests(t, netlog)
}

// pageRequests reads a chromium net log and returns the URLs of the
// requests made for a page on 127.0.0.1: those whose network isolation key
// names that site (the page and all it loads, from wherever). The
// browser's own traffic (its updater, its time and account services) has
// another key; the resolver rules above stop it at this host.
func pageRequests(t *testing.T, netlog string) []string {
	t.Helper()
	b, err := os.ReadFile(netlog)
	require.NoError(t, err)
	var log struct {
		Constants struct {
			LogEventTypes map[string]int `json:"logEventTypes"`
		} `json:"constants"`
		Events []struct {
			Type   int `json:"type"`
			Params struct {
				URL string `json:"url"`
				NIK string `json:"network_isolation_key"`
			} `json:"params"`
		} `json:"events"`
	}
	require.NoError(t, json.Unmarshal(b, &log), "the net log")
	start, ok := log.Constants.LogEventTypes["URL_REQUEST_START_JOB"]
	require.True(t, ok, "the net log names URL_REQUEST_START_JOB")
	var urls []string
	for _, e := range log.Events {
		if e.Type == start && strings.HasPrefix(e.Params.NIK, "http://127.0.0.1") {
			urls = append(urls, e.Params.URL)
		}
	}
	return urls
}

// TestStatusPageInBrowser loads the page in headless chromium against a
// real server under load spread over two minutes of (frozen, stepped)
// server clock, with policies: the browser's DOM shows the top limited key
// in its table and a chart per command and policy, every request the
// browser made went to this host, and the screenshot is written to the
// test's output directory (and to SLUICE_STATUS_SCREENSHOT when set: the
// README's picture is made so).
func TestStatusPageInBrowser(t *testing.T) {
	bin := chromium(t)
	policies := filepath.Join(t.TempDir(), "policies.toml")
	require.NoError(t, os.WriteFile(policies, []byte("[policies.api]\nlimit = \"20/second\"\n[policies.login]\nlimit = \"5/minute\"\n"), 0o600))
	cfg := testConfig()
	cfg.EnableDebug = true
	cfg.PolicyFile = policies
	cfg.MaxMemory = 256 << 20
	cfg.DataDir = t.TempDir()
	s, base := serveWithMetrics(t, cfg)
	c := redis.NewClient(&redis.Options{Addr: s.Addr().String(), PoolSize: 4})
	t.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(22, 1))
	const abuser = "ip:203.0.113.7"
	for step := range 14 { // 14 buckets of 10 s: a curve rising and falling
		now := statusEpoch + int64(step)*int64(10*time.Second)
		require.NoError(t, c.Do(ctx, "DEBUG", "CLOCK", "SET", now).Err())
		p := c.Pipeline()
		attack := 40 * min(step, 12-step) // the abuser's burst, peaking mid-way
		for range attack {
			p.Do(ctx, "THROTTLE", abuser, 10, 1, 1)
		}
		for i := range 150 {
			p.Do(ctx, "POLICY.THROTTLE", "api", fmt.Sprintf("tenant:%d", rng.IntN(30)))
			if i%5 == 0 {
				p.Do(ctx, "POLICY.THROTTLE", "login", fmt.Sprintf("user:%d", rng.IntN(8)))
			}
			if i%3 == 0 {
				p.Do(ctx, "THROTTLE.WINDOW", fmt.Sprintf("upload:%d", rng.IntN(5)), 10, 60)
			}
		}
		_, err := p.Exec(ctx)
		require.NoError(t, err)
	}
	dom, urls := runChromium(t, bin, base+"/?refresh=0", "--dump-dom")
	assert.Regexp(t, `(?s)<table id="top-limited">.*?<td class="key">`+regexp.QuoteMeta(abuser)+`</td>`, dom)
	for _, title := range []string{"all commands and policies", "command throttle", "command throttle.window", "policy api", "policy login"} {
		assert.Contains(t, dom, "<figcaption>"+title+" ", "a chart for %s", title)
	}
	assert.Contains(t, urls, base+"/?refresh=0", "the net log recorded the page's request")
	for _, u := range urls {
		assert.True(t, strings.HasPrefix(u, base+"/"), "the browser requested %s", u)
	}

	shot := filepath.Join(t.TempDir(), "status-page.png")
	_, _ = runChromium(t, bin, base+"/?refresh=0", "--screenshot="+shot, "--window-size=1200,1400", "--hide-scrollbars")
	png, err := os.ReadFile(shot)
	require.NoError(t, err)
	assert.True(t, bytes.HasPrefix(png, []byte("\x89PNG")), "a PNG")
	assert.Greater(t, len(png), 20<<10, "a page, not a blank")
	t.Logf("screenshot: %s (%d bytes)", shot, len(png))
	if dst := os.Getenv("SLUICE_STATUS_SCREENSHOT"); dst != "" {
		require.NoError(t, os.WriteFile(dst, png, 0o644))
		t.Logf("screenshot copied to %s", dst)
	}
}

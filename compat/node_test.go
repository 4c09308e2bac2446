package compat

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	npmOnce sync.Once
	npmErr  string // why the Node clients are unavailable, if they are
)

// requireNodeClients installs compat/node's locked dependencies with npm ci
// when node_modules is missing, and skips the test when node, npm or the
// registry is unavailable.
func requireNodeClients(t *testing.T) string {
	t.Helper()
	node := lookPath(t, "node", "Node.js 20 or later")
	npmOnce.Do(func() {
		out, err := exec.Command(node, "-p", "Number(process.versions.node.split('.')[0]) >= 20").Output()
		if err != nil || strings.TrimSpace(string(out)) != "true" {
			npmErr = "node 20 or later is required"
			return
		}
		if _, err := os.Stat(filepath.Join("node", "node_modules", ".package-lock.json")); err == nil {
			return
		}
		npm, err := exec.LookPath("npm")
		if err != nil {
			npmErr = "node_modules is missing and npm is not installed"
			return
		}
		out2, err := run(t, 3*time.Minute, nil, "node", npm, "ci", "--no-audit", "--no-fund")
		if err != nil {
			npmErr = "npm ci in compat/node failed (no network or registry?): " + err.Error() + "\n" + lastLines(out2, 15)
		}
	})
	if npmErr != "" {
		missing(t, "%s; run compat/ci-deps.sh", npmErr)
	}
	return node
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// runNodeTests runs one node:test file against a fresh server.
func runNodeTests(t *testing.T, file string) {
	node := requireNodeClients(t)
	t.Parallel()
	s := startSluice(t)
	out, err := run(t, 60*time.Second, []string{"SLUICE_ADDR=" + s.Addr}, "node", node, "--test", "--test-reporter=spec", file)
	if err != nil {
		t.Fatalf("node --test %s: %v\n%s", file, err, out)
	}
	t.Logf("node --test %s:\n%s", file, out)
}

// TestIORedis: ioredis with .call('THROTTLE', ...), RESP2 and RESP3, pipelines.
func TestIORedis(t *testing.T) { runNodeTests(t, "ioredis.test.mjs") }

// TestNodeRedis: node-redis with sendCommand, RESP2 and RESP3, pipelining.
func TestNodeRedis(t *testing.T) { runNodeTests(t, "node-redis.test.mjs") }

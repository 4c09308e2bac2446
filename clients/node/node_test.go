// Package node runs the Node.js package's tests (test/, node --test) against
// an in-process Sluice started by client/sluicetest, after installing its
// locked dependencies (express, express-rate-limit, ioredis, typescript)
// with npm ci when node_modules is missing.
package node

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/client/sluicetest"
)

// missing skips the test, or fails it when SLUICE_COMPAT_STRICT is set (CI,
// after compat/ci-deps.sh installed everything).
func missing(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("SLUICE_COMPAT_STRICT") != "" {
		t.Fatalf("SLUICE_COMPAT_STRICT: "+format, args...)
	}
	t.Skipf(format, args...)
}

var (
	installOnce sync.Once
	installErr  string
)

// requireNode returns the node binary once node_modules holds the locked
// dependencies, installing them with npm ci if needed.
func requireNode(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		missing(t, "node not found: install Node.js 20 or later (see compat/ci-deps.sh)")
	}
	installOnce.Do(func() {
		out, err := exec.Command(node, "-p", "Number(process.versions.node.split('.')[0]) >= 20").Output()
		if err != nil || strings.TrimSpace(string(out)) != "true" {
			installErr = "node 20 or later is required"
			return
		}
		if _, err := os.Stat(filepath.Join("node_modules", ".package-lock.json")); err == nil {
			return
		}
		npm, err := exec.LookPath("npm")
		if err != nil {
			installErr = "node_modules is missing and npm is not installed"
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if out, err := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund").CombinedOutput(); err != nil {
			installErr = "npm ci in clients/node failed (no network or registry?): " + err.Error() + "\n" + string(out)
		}
	})
	if installErr != "" {
		missing(t, "%s; run compat/ci-deps.sh", installErr)
	}
	return node
}

// nodeTest runs node --test on files against srv.
func nodeTest(t *testing.T, srv *sluicetest.Server, files ...string) {
	t.Helper()
	watchSources(t, ".")
	node := requireNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{"--test", "--test-reporter=spec"}, files...)...)
	cmd.Env = append(os.Environ(), "SLUICE_ADDR="+srv.Addr)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test %s: %v\n%s", strings.Join(files, " "), err, out)
	}
	if strings.Contains(string(out), "# skipped") && !strings.Contains(string(out), "# skipped 0") {
		t.Fatalf("node tests skipped:\n%s", out)
	}
	t.Logf("%s", out)
}

// TestClient: every command through the client.
func TestClient(t *testing.T) { nodeTest(t, sluicetest.Start(t), "test/client.test.mjs") }

// TestMiddleware: the Express middleware answers as express-rate-limit
// does, request for request, and does what only Sluice can.
func TestMiddleware(t *testing.T) {
	nodeTest(t, sluicetest.Start(t, sluicetest.PolicyFile("test/fixtures/policies.toml")), "test/middleware.test.mjs")
}

// TestCluster: four Node processes share one budget, headers exact.
func TestCluster(t *testing.T) { nodeTest(t, sluicetest.Start(t), "test/cluster.test.mjs") }

// TestTypes: index.d.ts compiles with the package's uses in test/types.ts
// (TypeScript's strict mode, the locked typescript and @types).
func TestTypes(t *testing.T) {
	node := requireNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, filepath.Join("node_modules", "typescript", "bin", "tsc"), "-p", "test/tsconfig.json").CombinedOutput()
	if err != nil {
		t.Fatalf("tsc: %v\n%s", err, out)
	}
}

// TestTestingFixture: sluice-ratelimit/testing starts the real binary.
func TestTestingFixture(t *testing.T) {
	requireNode(t)
	bin := filepath.Join(t.TempDir(), "sluice")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/sluicehq/sluice/cmd/sluice").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Setenv("SLUICE_BIN", bin)
	nodeTest(t, sluicetest.Start(t), "test/testing.test.mjs")
}

// watchSources stats every source file under roots so that go test's
// result cache, which records the files a test consults, reruns the test
// when a Python or JavaScript file it drives changes.
func watchSources(t *testing.T, roots ...string) {
	t.Helper()
	for _, root := range roots {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && (d.Name() == "node_modules" || d.Name() == "__pycache__" || strings.HasPrefix(d.Name(), ".")) && p != root {
				return filepath.SkipDir
			}
			if !d.IsDir() {
				_, err = os.Stat(p)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

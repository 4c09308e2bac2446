// Package express holds the test that runs the Express example's tests
// (app.test.mjs, node --test) against an in-process Sluice. The example
// itself is app.mjs; see README.md.
package express

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// npmCI installs dir's locked dependencies unless they are there.
func npmCI(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, "node_modules", ".package-lock.json")); err == nil {
		return
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		missing(t, "%s/node_modules is missing and npm is not installed (see compat/ci-deps.sh)", dir)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		missing(t, "npm ci in %s failed (no network or registry?): %v\n%s", dir, err, out)
	}
}

func TestExpressExample(t *testing.T) {
	watchSources(t, ".", "../../clients/node")
	node, err := exec.LookPath("node")
	if err != nil {
		missing(t, "node not found: install Node.js 20 or later (see compat/ci-deps.sh)")
	}
	npmCI(t, "../../clients/node") // the linked package's own dependencies (ioredis)
	npmCI(t, ".")
	srv := sluicetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--test", "--test-reporter=spec", "app.test.mjs")
	cmd.Env = append(os.Environ(), "SLUICE_ADDR="+srv.Addr)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test app.test.mjs: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "ℹ fail 0") || strings.Contains(string(out), "ℹ pass 0") {
		t.Fatalf("the example's tests did not all pass:\n%s", out)
	}
	t.Logf("%s", out)
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

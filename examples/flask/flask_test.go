// Package flask holds the test that runs the Flask example's Python tests
// (test_app.py, with /usr/bin/python3 and PYTHONPATH=clients/python) against
// an in-process Sluice. The example itself is app.py; see README.md.
package flask

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

// python is Debian's interpreter, where python3-flask-limiter, python3-redis
// and gunicorn are installed (the first python3 on PATH may be another one).
const python = "/usr/bin/python3"

// missing skips the test, or fails it when SLUICE_COMPAT_STRICT is set (CI,
// after compat/ci-deps.sh installed everything).
func missing(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("SLUICE_COMPAT_STRICT") != "" {
		t.Fatalf("SLUICE_COMPAT_STRICT: "+format, args...)
	}
	t.Skipf(format, args...)
}

func TestFlaskExample(t *testing.T) {
	watchSources(t, ".", "../../clients/python/sluice_ratelimit")
	if _, err := os.Stat(python); err != nil {
		missing(t, "%s not found: apt-get install python3 python3-flask-limiter python3-redis gunicorn (see compat/ci-deps.sh)", python)
	}
	if out, err := exec.Command(python, "-c", "import flask, flask_limiter, redis, gunicorn").CombinedOutput(); err != nil {
		missing(t, "%s cannot import flask, flask_limiter, redis and gunicorn: apt-get install python3-flask-limiter python3-redis gunicorn (see compat/ci-deps.sh): %s", python, strings.TrimSpace(string(out)))
	}
	pkg, err := filepath.Abs("../../clients/python")
	if err != nil {
		t.Fatal(err)
	}
	srv := sluicetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "-m", "unittest", "-v", "test_app")
	cmd.Env = append(os.Environ(), "SLUICE_ADDR="+srv.Addr, "PYTHONDONTWRITEBYTECODE=1", "PYTHONPATH="+pkg)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python tests failed: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "\nOK") || strings.Contains(string(out), "skipped") {
		t.Fatalf("python tests did not all run:\n%s", out)
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

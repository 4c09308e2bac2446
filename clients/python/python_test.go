// Package python runs the Python package's tests (tests/, with Debian's
// /usr/bin/python3 and PYTHONPATH=clients/python) against an in-process
// Sluice started by client/sluicetest.
package python

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/client/sluicetest"
)

// python is Debian's interpreter, where python3-redis, python3-limits,
// python3-flask-limiter and gunicorn are installed (the first python3 on
// PATH may be another one).
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

// requireModules skips (or fails) unless python can import every module.
func requireModules(t *testing.T, modules ...string) {
	t.Helper()
	const debs = "python3-redis python3-limits python3-flask-limiter gunicorn"
	if _, err := os.Stat(python); err != nil {
		missing(t, "%s not found: apt-get install python3 %s (see compat/ci-deps.sh)", python, debs)
	}
	out, err := exec.Command(python, "-c", "import "+strings.Join(modules, ", ")).CombinedOutput()
	if err != nil {
		missing(t, "%s cannot import %s: apt-get install %s (see compat/ci-deps.sh): %s",
			python, strings.Join(modules, ", "), debs, strings.TrimSpace(string(out)))
	}
}

var ranTests = regexp.MustCompile(`(?m)^Ran (\d+) tests? in`)

// unittest runs python -m unittest with args in dir against srv and fails
// the test unless every Python test ran and passed.
func unittest(t *testing.T, srv *sluicetest.Server, dir string, env []string, args ...string) string {
	t.Helper()
	watchSources(t, ".")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	root, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, python, append([]string{"-m", "unittest", "-v"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), append([]string{"SLUICE_ADDR=" + srv.Addr, "PYTHONDONTWRITEBYTECODE=1",
		"PYTHONPATH=" + root + string(os.PathListSeparator) + filepath.Join(root, "tests")}, env...)...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python tests failed: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "\nOK") || strings.Contains(string(out), "skipped") || !ranTests.Match(out) {
		t.Fatalf("python tests did not all run:\n%s", out)
	}
	return string(out)
}

// TestClient: every command through the sync and the asyncio client.
func TestClient(t *testing.T) {
	requireModules(t, "redis", "redis.asyncio", "limits")
	out := unittest(t, sluicetest.Start(t), "tests", nil, "test_client")
	t.Logf("%s", out)
}

// TestLimitsStorage: the sluice:// storage gives the answers of the limits
// library's own in-memory storage, strategy by strategy; the gcra strategy;
// limits' asyncio API.
func TestLimitsStorage(t *testing.T) {
	requireModules(t, "redis", "limits")
	out := unittest(t, sluicetest.Start(t), "tests", nil, "test_limits")
	t.Logf("%s", out)
}

// TestFlaskLimiter: a Flask-Limiter app on sluice:// answers as it does on
// memory://, request for request, and four worker processes share one
// budget.
func TestFlaskLimiter(t *testing.T) {
	requireModules(t, "redis", "limits", "flask", "flask_limiter")
	out := unittest(t, sluicetest.Start(t), "tests", nil, "test_flask_limiter")
	t.Logf("%s", out)
}

// TestPackaging: `pip install ./clients/python` works (offline, into a
// fresh venv that sees Debian's packages) and registers sluice:// there;
// the testing fixture starts a real sluice binary.
func TestPackaging(t *testing.T) {
	requireModules(t, "redis", "limits", "venv", "pip")
	dir := t.TempDir()
	bin := filepath.Join(dir, "sluice")
	build := exec.Command("go", "build", "-o", bin, "github.com/sluicehq/sluice/cmd/sluice")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// Install a copy, so that the build leaves nothing in the source tree.
	src := filepath.Join(dir, "src")
	if err := os.CopyFS(src, os.DirFS(".")); err != nil {
		t.Fatal(err)
	}
	venv := filepath.Join(dir, "venv")
	for _, args := range [][]string{
		{python, "-m", "venv", "--system-site-packages", venv},
		{filepath.Join(venv, "bin", "pip"), "install", "--quiet", "--no-build-isolation", "--no-index", src},
	} {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = append(os.Environ(), "PIP_DISABLE_PIP_VERSION_CHECK=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	out := unittest(t, sluicetest.Start(t), "tests",
		[]string{"SLUICE_BIN=" + bin, "SLUICE_VENV_PYTHON=" + filepath.Join(venv, "bin", "python")}, "test_packaging")
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

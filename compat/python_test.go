package compat

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// systemPython is Debian's interpreter, where python3-redis and
// python3-flask are installed (the first python3 on PATH may be another).
const systemPython = "/usr/bin/python3"

// requirePython skips the test unless /usr/bin/python3 can import modules.
func requirePython(t *testing.T, modules, debs string) {
	t.Helper()
	if _, err := os.Stat(systemPython); err != nil {
		missing(t, "%s not found; install python3 and %s (see compat/ci-deps.sh)", systemPython, debs)
	}
	if out, err := exec.Command(systemPython, "-c", "import "+modules).CombinedOutput(); err != nil {
		missing(t, "%s cannot import %s (apt-get install %s; see compat/ci-deps.sh): %s", systemPython, modules, debs, strings.TrimSpace(string(out)))
	}
}

var unittestSkip = regexp.MustCompile(`(?m)^(\S+ \(.*\)).*\.\.\. skipped (.*)$`)

// TestRedisPy runs python/test_redis_py.py (unittest) against a fresh server.
func TestRedisPy(t *testing.T) {
	requirePython(t, "redis", "python3-redis")
	s := startSluice(t)
	out, err := run(t, 60*time.Second, []string{"SLUICE_ADDR=" + s.Addr, "PYTHONDONTWRITEBYTECODE=1"}, "python",
		systemPython, "-m", "unittest", "-v", "test_redis_py")
	if err != nil {
		t.Fatalf("redis-py tests failed: %v\n%s", err, out)
	}
	for _, m := range unittestSkip.FindAllStringSubmatch(out, -1) {
		t.Logf("redis-py: %s skipped: %s", m[1], m[2])
	}
	if !strings.Contains(out, "\nOK") {
		t.Fatalf("unexpected unittest output:\n%s", out)
	}
}

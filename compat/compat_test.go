// Package compat tests Sluice against the clients people will point at it:
// redis-cli and redis-benchmark, go-redis, redis-py, ioredis and node-redis,
// plus the container build described by the top-level Dockerfile.
//
// The tests build the sluice binary once, exactly as the Dockerfile does
// (its `go build` line is parsed, so the two cannot drift), start it on
// 127.0.0.1 with a free port and --enable-debug-command for each test, and
// replay testdata/sequence.json (the README example and a burst-exhaustion
// sequence under a clock frozen with DEBUG CLOCK SET) through every client,
// checking exact replies. A test whose client is not installed is skipped
// with a message saying what to install; compat/ci-deps.sh installs them all.
//
// This is a test-only package.
package compat

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binDir holds the binary built for this run; set by TestMain.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sluice-compat-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "compat:", err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	buildOnce sync.Once
	buildBin  string
	buildErr  error
)

// sluiceBinary builds ./cmd/sluice once per test run, with the Dockerfile's
// build command.
func sluiceBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		var df *dockerfile
		if df, buildErr = parseDockerfile(filepath.Join(moduleRoot(t), "Dockerfile")); buildErr != nil {
			return
		}
		buildBin = filepath.Join(binDir, "sluice")
		buildErr = df.build(moduleRoot(t), buildBin)
	})
	if buildErr != nil {
		t.Fatalf("building sluice as the Dockerfile does: %v", buildErr)
	}
	return buildBin
}

func moduleRoot(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(wd) // compat/ sits at the module root
}

// sluice is one running server process.
type sluice struct {
	Addr, Host string
	Port       int
	cmd        *exec.Cmd
	log        *tailBuffer
	exited     chan struct{}
	waitErr    error
	killed     bool // by kill9: stop has nothing left to do
}

var readyAddr = regexp.MustCompile(`msg="sluice ready".* addr=(\S+)`)

// startSluice runs the binary on 127.0.0.1 with a free port and DEBUG
// enabled; it is stopped with SIGTERM (and must exit 0) when the test ends.
func startSluice(t testing.TB, extra ...string) *sluice {
	t.Helper()
	args := append([]string{"--bind", "127.0.0.1", "--port", freePort(t), "--enable-debug-command"}, extra...)
	return startBinary(t, sluiceBinary(t), args...)
}

// freePort is a free port on 127.0.0.1 for --port (--port 0 turns the
// plaintext listener off, as in Redis).
func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

func startBinary(t testing.TB, bin string, args ...string) *sluice {
	t.Helper()
	return startBinaryEnv(t, nil, bin, args...)
}

// startBinaryEnv is startBinary with extra environment variables.
func startBinaryEnv(t testing.TB, env []string, bin string, args ...string) *sluice {
	t.Helper()
	s := &sluice{cmd: exec.Command(bin, args...), log: &tailBuffer{max: 64 << 10}, exited: make(chan struct{})}
	if env != nil {
		s.cmd.Env = append(os.Environ(), env...)
	}
	// Everything the server writes goes to the log tail; stderr is also
	// scanned for the ready line, and drained to the end so logging never
	// blocks the server.
	pr, pw := io.Pipe()
	s.cmd.Stdout = s.log
	s.cmd.Stderr = io.MultiWriter(s.log, pw)
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := readyAddr.FindStringSubmatch(sc.Text()); m != nil {
				addrc <- m[1]
				break
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	go func() {
		s.waitErr = s.cmd.Wait()
		_ = pw.Close()
		close(s.exited)
	}()
	t.Cleanup(func() { s.stop(t) })

	select {
	case addr := <-addrc:
		s.Addr = addr
	case <-s.exited:
		t.Fatalf("sluice exited before it was ready: %v\n%s", s.waitErr, s.log)
	case <-time.After(15 * time.Second):
		t.Fatalf("sluice not ready after 15 s\n%s", s.log)
	}
	host, port, ok := strings.Cut(s.Addr, ":")
	if !ok || host != "127.0.0.1" {
		t.Fatalf("sluice listens on %q, want 127.0.0.1:port", s.Addr)
	}
	s.Host = host
	s.Port, _ = strconv.Atoi(port)
	return s
}

func (s *sluice) stop(t testing.TB) {
	t.Helper()
	if s.killed {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		if s.waitErr != nil {
			t.Errorf("sluice did not exit cleanly on SIGTERM: %v\n%s", s.waitErr, s.log)
		}
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
		t.Errorf("sluice did not stop within 15 s of SIGTERM\n%s", s.log)
	}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// sequence is testdata/sequence.json.
type sequence struct {
	EpochNs int64 `json:"epoch_ns,string"`
	Steps   []step
}

type step struct {
	Name  string
	AtS   int64 `json:"at_s"`
	Args  []string
	Reply []int64
	Error string
}

// clock is the frozen server time for the step, in Unix nanoseconds.
func (s *sequence) clock(st step) int64 { return s.EpochNs + st.AtS*int64(time.Second) }

func loadSequence(t *testing.T) *sequence {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "sequence.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s sequence
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	if len(s.Steps) == 0 {
		t.Fatal("sequence.json has no steps")
	}
	return &s
}

// run runs a command in dir with extra environment variables and a
// deadline, and returns its combined output.
func run(t *testing.T, timeout time.Duration, env []string, dir, name string, args ...string) (string, error) {
	t.Helper()
	return runCmd(t, timeout, env, dir, "", name, args...)
}

// runStdin runs a command with stdin and a deadline, and returns its combined output.
func runStdin(t *testing.T, timeout time.Duration, stdin, name string, args ...string) (string, error) {
	t.Helper()
	return runCmd(t, timeout, nil, "", stdin, name, args...)
}

func runCmd(t *testing.T, timeout time.Duration, env []string, dir, stdin, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s timed out after %s: %w", name, timeout, ctx.Err())
	}
	return string(out), err
}

// missing skips the test because a client is not installed, or fails it
// when SLUICE_COMPAT_STRICT is set (CI, after compat/ci-deps.sh).
func missing(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("SLUICE_COMPAT_STRICT") != "" {
		t.Fatalf("SLUICE_COMPAT_STRICT: "+format, args...)
	}
	t.Skipf(format, args...)
}

// lookPath finds a tool, or skips the test (see missing).
func lookPath(t *testing.T, name, install string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		missing(t, "%s not installed (%s); see compat/ci-deps.sh", name, install)
	}
	return p
}

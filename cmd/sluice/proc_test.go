package main

import (
	"bufio"
	"context"
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

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// binary builds the sluice binary once per test run.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sluice-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "sluice")
		out, err := exec.Command("go", "build", "-o", buildPath, ".").CombinedOutput()
		if err != nil {
			buildErr = &buildError{err: err, out: string(out)}
		}
	})
	require.NoError(t, buildErr)
	return buildPath
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + ": " + e.out }

// proc is a sluice process a test started.
type proc struct {
	cmd  *exec.Cmd
	Addr string
	mu   sync.Mutex
	logs strings.Builder
	done chan struct{}
	err  error
}

// addrRe finds the ready line and its address (empty for a TLS-only
// server), in text or JSON logs.
var addrRe = regexp.MustCompile(`sluice ready.*?\baddr(?:=|":")"?([^\s"]*)`)

// startProc runs the binary with args (and env added to the environment),
// waits for its ready line and stops it with SIGKILL at the end of the test
// if it is still running.
func startProc(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(binary(t), args...), done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	stderr, err := p.cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, p.cmd.Start())
	ready := make(chan string, 1)
	read := make(chan struct{}) // stderr reached EOF: every log line is in p.logs
	go func() {
		defer close(read)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.logs.WriteString(line + "\n")
			p.mu.Unlock()
			if m := addrRe.FindStringSubmatch(line); m != nil {
				select {
				case ready <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	// Wait closes the pipe, so it must only be called once everything was
	// read: otherwise the last lines before exit can be lost.
	go func() { <-read; p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { _ = p.cmd.Process.Kill(); <-p.done })
	select {
	case p.Addr = <-ready:
	case <-p.done:
		t.Fatalf("sluice exited before it was ready: %v\n%s", p.err, p.Logs())
	case <-time.After(20 * time.Second):
		t.Fatalf("sluice not ready after 20s:\n%s", p.Logs())
	}
	return p
}

// Logs is what the process has written to stderr so far.
func (p *proc) Logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// Signal sends sig and waits for the process to exit, returning its exit code.
func (p *proc) Signal(t *testing.T, sig syscall.Signal) int {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(sig))
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("sluice did not exit after %v:\n%s", sig, p.Logs())
	}
	return p.cmd.ProcessState.ExitCode()
}

// Client returns a go-redis client for the process.
func (p *proc) Client(t *testing.T) *redis.Client {
	t.Helper()
	// Retries cover a connection the server closed after a failed durability
	// barrier (its replies are replaced by an error, then it closes).
	c := redis.NewClient(&redis.Options{Addr: p.Addr, MaxRetries: 2})
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.Ping(context.Background()).Err())
	return c
}

var (
	portsMu sync.Mutex
	ports   = map[int]bool{} // handed out by respPort in this test binary
)

// respPort is a free TCP port on 127.0.0.1 for --port, never the same twice in
// one test binary (--port 0 turns the plaintext listener off, as in Redis,
// so a test picks the port). Another process may take it before sluice
// binds it; the kernel's random choice among tens of thousands of ports
// makes that rare.
func respPort(t *testing.T) string {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		p := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if !ports[p] {
			ports[p] = true
			return strconv.Itoa(p)
		}
	}
}

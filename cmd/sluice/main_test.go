package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStartAndGracefulStop(t *testing.T) {
	p := startProc(t, nil, "--port", respPort(t), "--enable-debug-command")
	assert.Contains(t, p.Addr, "127.0.0.1:")
	c := p.Client(t)
	ctx := context.Background()
	require.NoError(t, c.Do(ctx, "DEBUG", "CLOCK", "SET", "1893456000000000000").Err())
	v, err := c.Do(ctx, "THROTTLE", "user123", 15, 30, 60, 1).Int64Slice()
	require.NoError(t, err)
	assert.Equal(t, []int64{0, 16, 15, -1, 2}, v)

	// A pipeline already written when SIGTERM arrives is answered in full.
	conn, err := net.Dial("tcp", p.Addr)
	require.NoError(t, err)
	defer conn.Close()
	const n = 2000
	var req bytes.Buffer
	for i := 0; i < n; i++ {
		fmt.Fprintf(&req, "*5\r\n$8\r\nTHROTTLE\r\n$4\r\nk%03d\r\n$1\r\n5\r\n$1\r\n1\r\n$2\r\n60\r\n", i%100)
	}
	_, err = conn.Write(req.Bytes())
	require.NoError(t, err)
	r := bufio.NewReader(conn)
	first, err := r.ReadString('\n') // the server has started on the pipeline
	require.NoError(t, err)
	require.Equal(t, "*5\r\n", first)
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	rest, err := io.ReadAll(r)
	require.NoError(t, err)
	assert.Equal(t, n*5-1, strings.Count(string(rest), "\r\n:"), "every reply of the pipeline arrived")
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	assert.Equal(t, 0, p.cmd.ProcessState.ExitCode(), p.Logs())
	assert.Contains(t, p.Logs(), "sluice stopped")
}

func TestEnvironmentAndConfigFile(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "sluice.conf")
	require.NoError(t, os.WriteFile(cfgFile, []byte(fmt.Sprintf("port %s\nshards 4\nlog-format json\n", respPort(t))), 0o600))
	p := startProc(t, []string{"SLUICE_ENABLE_DEBUG_COMMAND=true", "SLUICE_SHARDS=8"}, "--config", cfgFile)
	c := p.Client(t)
	ctx := context.Background()
	assert.NoError(t, c.Do(ctx, "DEBUG", "CLOCK", "GET").Err(), "debug enabled from the environment")
	cfg, err := c.ConfigGet(ctx, "shards").Result()
	require.NoError(t, err)
	assert.Equal(t, "8", cfg["shards"], "the environment beats the file")
	assert.Contains(t, p.Logs(), `"msg":"sluice ready"`, "log format from the file")
}

func TestInvalidConfigFails(t *testing.T) {
	out, err := exec.Command(binary(t), "--port", "70000", "--shards", "0", "--log-format", "xml").CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	assert.Equal(t, 1, exit.ExitCode())
	for _, want := range []string{"--port 70000", "--shards 0", "--log-format \"xml\""} {
		assert.Contains(t, string(out), want)
	}
}

func TestPortInUseFails(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	port := fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
	out, err := exec.Command(binary(t), "--port", port).CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(out), "address already in use")
}

func TestVersionAndHelp(t *testing.T) {
	out, err := exec.Command(binary(t), "--version").CombinedOutput()
	require.NoError(t, err)
	assert.Regexp(t, `^sluice \d+\.\d+\.\d+`, string(out))
	out, err = exec.Command(binary(t), "--help").CombinedOutput()
	require.NoError(t, err, string(out))
	for _, flag := range []string{"--bind", "--port", "--enable-debug-command", "--shards", "--log-level", "--log-format", "--maxclients"} {
		assert.Contains(t, string(out), flag)
	}
}

func TestHealthCheck(t *testing.T) {
	p := startProc(t, nil, "--port", respPort(t))
	_, port, err := net.SplitHostPort(p.Addr)
	require.NoError(t, err)
	out, err := exec.Command(binary(t), "--healthcheck", "--port", port).CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Contains(t, string(out), "is up")
	p.Signal(t, syscall.SIGTERM)
	out, err = exec.Command(binary(t), "--healthcheck", "--port", port).CombinedOutput()
	assert.Error(t, err, "a stopped server fails the check: %s", out)
}

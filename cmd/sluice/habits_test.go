package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Redis habits: what an operator used to redis-server types must work, or
// fail saying why.

// fails runs the binary with args and env added to the environment,
// expecting exit status 1 before serving, and returns its output.
func fails(t *testing.T, env []string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "%v should fail: %s", args, out)
	assert.Equal(t, 1, exit.ExitCode(), string(out))
	assert.NotContains(t, string(out), "sluice ready")
	return string(out)
}

func configGet(t *testing.T, c *redis.Client, name string) string {
	t.Helper()
	m, err := c.ConfigGet(context.Background(), name).Result()
	require.NoError(t, err)
	return m[name]
}

// TestRedisBooleans: `sluice --protected-mode no` turns protected mode off
// (it used to leave it on, "no" becoming an ignored argument), and so do
// SLUICE_PROTECTED_MODE=no and a config line.
func TestRedisBooleans(t *testing.T) {
	p := startProc(t, nil, "--protected-mode", "no", "--port", respPort(t), "--enable-debug-command", "yes")
	c := p.Client(t)
	assert.Equal(t, "no", configGet(t, c, "protected-mode"))
	assert.Equal(t, "yes", configGet(t, c, "enable-debug-command"))
	assert.Contains(t, p.Logs(), "protected_mode=false")

	p = startProc(t, []string{"SLUICE_PROTECTED_MODE=no"}, "--port", respPort(t))
	assert.Equal(t, "no", configGet(t, p.Client(t), "protected-mode"))

	conf := filepath.Join(t.TempDir(), "sluice.conf")
	require.NoError(t, os.WriteFile(conf, []byte("protected-mode no\nport "+respPort(t)+"\n"), 0o600))
	p = startProc(t, nil, conf)
	assert.Equal(t, "no", configGet(t, p.Client(t), "protected-mode"))
}

// TestStrayArgumentsRefused: an argument that is neither a flag, nor a
// flag's value, nor a config file path in first place stops the start.
func TestStrayArgumentsRefused(t *testing.T) {
	out := fails(t, nil, "--port", respPort(t), "extra")
	assert.Contains(t, out, `unexpected argument "extra"`)
	out = fails(t, nil, "--protected-mode", "maybe", "--port", respPort(t))
	assert.Contains(t, out, `unexpected argument "maybe"`)
	out = fails(t, nil, "--bogus", "1")
	assert.Contains(t, out, "unknown flag --bogus")
}

// TestConfigFileFirst: `sluice sluice.conf` reads the file, redis.conf
// style (quotes, comments, several words), and flags after it win.
func TestConfigFileFirst(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "sluice.conf")
	require.NoError(t, os.WriteFile(conf, []byte(strings.Join([]string{
		"# Sluice, as redis.conf",
		"port " + respPort(t),
		"bind 127.0.0.1 ::1   # two addresses",
		`requirepass "s3cret with spaces"`,
		"timeout 300",
		"enable-debug-command",
		"maxclients 100",
		"",
	}, "\n")), 0o600))
	p := startProc(t, []string{"SLUICE_MAXCLIENTS=200"}, conf, "--shards", "4", "--bind", "127.0.0.1")
	c := redis.NewClient(&redis.Options{Addr: p.Addr, Password: "s3cret with spaces"})
	defer c.Close()
	assert.Equal(t, "300", configGet(t, c, "timeout"), "a bare timeout counts seconds, as Redis's")
	assert.Equal(t, "4", configGet(t, c, "shards"))
	assert.Equal(t, "200", configGet(t, c, "maxclients"), "the environment beats the file")
	assert.Equal(t, "127.0.0.1", configGet(t, c, "bind"), "a flag beats the file")
	require.NoError(t, c.Do(context.Background(), "DEBUG", "CLOCK", "GET").Err())
	assert.Contains(t, p.Logs(), "config file read")
}

// TestConfigFileErrorsNameTheLine: every error of a config file names the
// file and the line.
func TestConfigFileErrorsNameTheLine(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ body, want string }{
		{"port 6380\n\ndaemonize yes\n", `:3: unknown setting "daemonize"`},
		{"# port\nport abc\n", `:2: port "abc": not an integer (e.g. port 6379)`},
		{"protected-mode maybe\n", `:1: protected-mode "maybe": must be yes or no`},
		{"timeout 5 fortnights\n", `:1: timeout "5 fortnights": must be seconds or a duration`},
		{"requirepass \"open\n", `:1: unbalanced double quotes`},
		{"data-dir\n", `:1: data-dir needs a value (e.g. data-dir /var/lib/sluice)`},
	} {
		conf := filepath.Join(dir, "bad.conf")
		require.NoError(t, os.WriteFile(conf, []byte(tc.body), 0o600))
		out := fails(t, nil, conf)
		assert.Contains(t, out, conf+tc.want)
	}
	out := fails(t, nil, filepath.Join(dir, "missing.conf"))
	assert.Contains(t, out, "missing.conf: no such file")
	conf := filepath.Join(dir, "a.conf")
	require.NoError(t, os.WriteFile(conf, nil, 0o600))
	out = fails(t, nil, conf, "--config", conf+".other")
	assert.Contains(t, out, "config file given twice")
}

// TestValueErrorsNameTheFlag: a value that does not parse names the flag
// (or variable) and shows a valid one; no Go parser's message leaks out.
func TestValueErrorsNameTheFlag(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		args []string
		want string
	}{
		{nil, []string{"--port", "abc"}, `--port "abc": not an integer (e.g. --port 6379)`},
		{nil, []string{"--port", "99999999999999999999"}, `--port "99999999999999999999": out of range (e.g. --port 6379)`},
		{nil, []string{"--sweep-interval", "100"}, `--sweep-interval "100": needs a unit: ms, s, m or h (e.g. --sweep-interval 100ms)`},
		{nil, []string{"--timeout", "soon"}, `--timeout "soon": must be seconds or a duration with a unit (300, 5m) (e.g. --timeout 300)`},
		{nil, []string{"--protected-mode=maybe"}, `--protected-mode "maybe": must be yes or no`},
		{nil, []string{"--tls-port", "x"}, `(e.g. --tls-port 6380)`},
		{nil, []string{"--port"}, `--port needs a value (e.g. --port 6379)`},
		{[]string{"SLUICE_PORT=abc"}, nil, `SLUICE_PORT="abc": not an integer (e.g. SLUICE_PORT=6379)`},
		{[]string{"SLUICE_PROTECTED_MODE=nope"}, nil, `SLUICE_PROTECTED_MODE="nope": must be yes or no`},
	} {
		out := fails(t, tc.env, tc.args...)
		assert.Contains(t, out, tc.want)
		assert.NotContains(t, out, "strconv")
		assert.NotContains(t, out, "time: ")
	}
	p := startProc(t, nil, "--port", respPort(t), "--timeout", "300")
	assert.Equal(t, "300", configGet(t, p.Client(t), "timeout"))
}

// TestPortZeroIsNoListener: --port 0 is Redis's "no plaintext listener";
// alone it leaves nothing to listen on, which is refused.
func TestPortZeroIsNoListener(t *testing.T) {
	out := fails(t, nil, "--port", "0")
	assert.Contains(t, out, "--port 0 turns the plaintext listener off and no --tls-port is set")

	pk := newPKI(t)
	tlsPort := respPort(t)
	p := startProc(t, nil, "--port", "0", "--tls-port", tlsPort, "--tls-cert-file", pk.crtFile,
		"--tls-key-file", pk.keyFile, "--tls-auth-clients", "no")
	assert.Empty(t, p.Addr, "no plaintext address in the ready line")
	assert.Contains(t, p.Logs(), "tls_addr=127.0.0.1:"+tlsPort)
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + tlsPort,
		TLSConfig: &tls.Config{RootCAs: pk.pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}})
	defer c.Close()
	assert.Equal(t, "0", configGet(t, c, "port"))
}

// TestPersistenceFlagsNeedDataDir: asking for fsync without a data
// directory used to run in memory without a word.
func TestPersistenceFlagsNeedDataDir(t *testing.T) {
	out := fails(t, nil, "--fsync", "always", "--port", respPort(t))
	assert.Contains(t, out, "--fsync needs --data-dir")
	out = fails(t, []string{"SLUICE_FOLD_BYTES=1048576"}, "--port", respPort(t))
	assert.Contains(t, out, "--fold-bytes needs --data-dir")
	conf := filepath.Join(t.TempDir(), "sluice.conf")
	require.NoError(t, os.WriteFile(conf, []byte("fsync everysec\n"), 0o600))
	out = fails(t, nil, conf, "--port", respPort(t))
	assert.Contains(t, out, "--fsync needs --data-dir")
}

// TestFatalErrorsFollowLogFormat: with --log-format json (or
// SLUICE_LOG_FORMAT=json), a start-up error is one JSON log line, whether
// the configuration or the start failed.
func TestFatalErrorsFollowLogFormat(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	inUse := fmt.Sprint(taken.Addr().(*net.TCPAddr).Port)
	for _, tc := range []struct {
		env  []string
		args []string
		want string
	}{
		{nil, []string{"--log-format", "json", "--port", "abc"}, `--port \"abc\"`},
		{nil, []string{"--port", "abc", "--log-format=json"}, `--port \"abc\"`},
		{[]string{"SLUICE_LOG_FORMAT=json"}, []string{"--bogus"}, "unknown flag --bogus"},
		{nil, []string{"--log-format", "json", "--port", inUse}, "address already in use"},
	} {
		out := fails(t, tc.env, tc.args...)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		last := lines[len(lines)-1]
		var entry map[string]any
		require.NoError(t, json.Unmarshal([]byte(last), &entry), "not JSON: %s", out)
		assert.Equal(t, "ERROR", entry["level"])
		assert.Contains(t, last, tc.want)
	}
	out := fails(t, nil, "--port", "abc")
	assert.True(t, strings.HasPrefix(out, "sluice: --port"), "text by default: %s", out)
}

// TestVersionAndHelpConventions: -v as redis-server's; --help says how a
// flag is also a variable and a config line, with examples.
func TestVersionAndHelpConventions(t *testing.T) {
	for _, arg := range []string{"-v", "--version"} {
		out, err := exec.Command(binary(t), arg).CombinedOutput()
		require.NoError(t, err, string(out))
		assert.Regexp(t, `^sluice \d+\.\d+\.\d+ \(go`, string(out))
	}
	for _, arg := range []string{"-h", "--help"} {
		cmd := exec.Command(binary(t), arg)
		cmd.Stderr = io.Discard
		out, err := cmd.Output()
		require.NoError(t, err)
		help := string(out)
		assert.Contains(t, help, "sluice [config-file] [flags]")
		assert.Contains(t, help, "SLUICE_PROTECTED_MODE")
		assert.Contains(t, help, "protected-mode no")
		assert.Contains(t, help, "Examples:")
		assert.Equal(t, 2, strings.Count(help, "\n  sluice --")+strings.Count(help, "\n  SLUICE_"), help)
	}
}

// TestHealthCheckDuringLoading: a server recovering its data directory
// answers PING with -LOADING; the container is up, so the probe passes.
func TestHealthCheckDuringLoading(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = conn.Read(make([]byte, 64))
			_, _ = io.WriteString(conn, "-LOADING Sluice is loading the dataset in memory\r\n")
			conn.Close()
		}
	}()
	cfg := defaultConfig()
	cfg.Port = ln.Addr().(*net.TCPAddr).Port
	var out strings.Builder
	require.NoError(t, healthCheck(cfg, &out))
	assert.Contains(t, out.String(), "is up")
}

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// refusesToStart runs the binary with args and env added, which must make
// it refuse to start, and returns its output.
func refusesToStart(t *testing.T, env []string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "sluice started:\n%s", out)
	assert.NotZero(t, exit.ExitCode())
	return string(out)
}

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
	return path
}

// TestUnknownACLRuleRefusesToStart: a rule naming no command or category
// (a typo in a deny rule would silently allow) stops start-up with the
// file, the line and the rule, as Redis refuses its ACL file.
func TestUnknownACLRuleRefusesToStart(t *testing.T) {
	for _, rule := range []string{"+@bogus", "-nosuchcmd", "-flushal", "+client|nosuch"} {
		acl := writeFile(t, "users.acl", "# tenants\nuser default off\nuser ops on >pw ~* +@all "+rule+"\n")
		out := refusesToStart(t, nil, "--port", respPort(t), "--aclfile", acl)
		assert.Contains(t, out, acl, rule)
		assert.Contains(t, out, "line 3", rule)
		assert.Contains(t, out, rule, rule)
		assert.Contains(t, out, "unknown command or category name in ACL", rule)
	}
}

// TestRequirePassBesideAnACLFileDefiningDefault: the file's default user
// would win and the password given apart be ignored (Redis does so without
// a word): refused, however the password is given.
func TestRequirePassBesideAnACLFileDefiningDefault(t *testing.T) {
	acl := writeFile(t, "users.acl", "user default on nopass ~* +@all\nuser app on >apppw ~app:* +@throttle\n")
	for _, run := range []struct {
		env  []string
		args []string
	}{
		{nil, []string{"--requirepass", "hunter2"}},
		{[]string{"SLUICE_REQUIREPASS=hunter2"}, nil},
		{nil, []string{"--requirepass-file", writeFile(t, "pass", "hunter2\n")}},
	} {
		out := refusesToStart(t, run.env, append([]string{"--port", respPort(t), "--aclfile", acl}, run.args...)...)
		assert.Contains(t, out, "defines the default user", run)
		assert.Contains(t, out, "--requirepass", run)
		assert.NotContains(t, out, "hunter2", run)
	}
}

const openDefaultWarning = "the ACL file defines users but the default user is open"

// readmeACLFile is the ACL file the README's Security section shows.
func readmeACLFile(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	m := regexp.MustCompile("(?s)\n```\n(# Clients that do not authenticate.*?)```\n").FindSubmatch(b)
	require.NotNil(t, m, "README shows no ACL file")
	return string(m[1])
}

// TestREADMEACLFileIsolatesTenants: the README's ACL file, as pasted,
// closes the default user (no client skips tenant1's rules by not
// authenticating, and no warning), AUTH works through "user default off",
// and tenant1 is held to its keys. The README's earlier example, which
// left default open, is warned about at start.
func TestREADMEACLFileIsolatesTenants(t *testing.T) {
	file := readmeACLFile(t)
	require.Contains(t, file, "user default off")
	p := startProc(t, nil, "--port", respPort(t), "--aclfile", writeFile(t, "users.acl", file))
	ctx := context.Background()
	anon := redis.NewClient(&redis.Options{Addr: p.Addr, MaxRetries: -1, DisableIdentity: true})
	defer anon.Close()
	assert.EqualError(t, anon.Do(ctx, "THROTTLE", "tenant2:x", 1, 1, 1).Err(), "NOAUTH Authentication required.")
	for _, proto := range []int{2, 3} {
		tenant := redis.NewClient(&redis.Options{Addr: p.Addr, Protocol: proto, Username: "tenant1", Password: "s3cret", MaxRetries: -1})
		defer tenant.Close()
		assert.NoError(t, tenant.Do(ctx, "THROTTLE", "tenant1:x", 1, 1, 1).Err(), "RESP%d", proto)
		assert.EqualError(t, tenant.Do(ctx, "THROTTLE", "tenant2:x", 1, 1, 1).Err(), "NOPERM No permissions to access a key")
	}
	assert.NotContains(t, p.Logs(), openDefaultWarning)

	open := strings.Replace(file, "user default off\n", "", 1)
	p = startProc(t, nil, "--port", respPort(t), "--aclfile", writeFile(t, "users.acl", open))
	assert.Contains(t, p.Logs(), openDefaultWarning)
	assert.Contains(t, p.Logs(), "user default on nopass ~* +@all")
}

// TestPprofDoesNotShowThePassword: /debug/pprof/cmdline would print the
// command line, --requirepass included: it is not served.
func TestPprofDoesNotShowThePassword(t *testing.T) {
	port := freePort(t)
	startProc(t, nil, "--port", respPort(t), "--requirepass", "hunter2", "--metrics-addr", fmt.Sprintf("127.0.0.1:%d", port), "--pprof")
	base := fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/", port)
	code, body := get(t, base+"cmdline")
	assert.Equal(t, http.StatusNotFound, code)
	assert.NotContains(t, body, "hunter2")
	code, body = get(t, base)
	assert.Equal(t, http.StatusOK, code)
	assert.NotContains(t, body, "hunter2")
	code, _ = get(t, base+"goroutine?debug=1")
	assert.Equal(t, http.StatusOK, code, "the profiles are still served")
}

// TestAuthGuessingIsCapped: one connection guessing is closed after its
// 10th failure, logged with the client's address, and a forged log line in
// the user name stays inside a quoted field.
func TestAuthGuessingIsCapped(t *testing.T) {
	p := startProc(t, nil, "--port", respPort(t), "--requirepass", "right")
	conn, err := net.Dial("tcp", p.Addr)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	r := bufio.NewReader(conn)
	forged := "x\ntime=2030-01-01T00:00:00Z level=ERROR msg=forged"
	for i := 0; i < 10; i++ {
		fmt.Fprintf(conn, "*3\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n$5\r\nwrong\r\n", len(forged), forged)
		line, err := r.ReadString('\n')
		require.NoError(t, err)
		assert.Equal(t, "-WRONGPASS invalid username-password pair or user is disabled.\r\n", line, "attempt %d", i+1)
	}
	_, err = r.ReadByte()
	assert.ErrorIs(t, err, io.EOF, "closed after 10 failures")
	admin := redis.NewClient(&redis.Options{Addr: p.Addr, Password: "right"})
	defer admin.Close()
	info, err := admin.Info(context.Background(), "stats").Result()
	require.NoError(t, err, "the right password still works (the address is still within its free failures)")
	assert.Contains(t, info, "acl_access_denied_auth:10")
	require.Eventually(t, func() bool {
		return strings.Contains(p.Logs(), "closing a connection after repeated failed authentication")
	},
		10*time.Second, 10*time.Millisecond)
	for _, line := range strings.Split(strings.TrimSpace(p.Logs()), "\n") {
		assert.True(t, strings.HasPrefix(line, "time="), "a log line of its own: %q", line)
		assert.NotContains(t, line, "msg=forged")
	}
}

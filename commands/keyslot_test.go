package commands

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// startRedisCluster runs redis-server with cluster-enabled on a free
// loopback port (its bus port, +10000, free too) for the length of the
// test (see startRedisServer).
func startRedisCluster(t *testing.T) *redis.Client {
	t.Helper()
	return startRedisServer(t, freePortPair, func(dir string) []string {
		return []string{"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes.conf")}
	}, redis.Options{MaxRetries: -1})
}

// startRedisServer runs redis-server on 127.0.0.1, on a port from port,
// with its data in a temporary dir and the arguments args(dir) added, for
// the length of the test, and returns a client with opt's settings for it.
// It skips the test when redis-server is not installed (fails with
// SLUICE_COMPAT_STRICT set), and tries another port when the one it chose
// was taken before redis-server bound it.
func startRedisServer(t *testing.T, port func(*testing.T) int, args func(dir string) []string, opt redis.Options) *redis.Client {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("SLUICE_COMPAT_STRICT") != "" {
			t.Fatal("SLUICE_COMPAT_STRICT: redis-server is not installed")
		}
		t.Skip("redis-server is not on PATH (apt-get install redis-server; see compat/ci-deps.sh)")
	}
	for attempt := 0; attempt < 5; attempt++ {
		p := strconv.Itoa(port(t))
		dir := t.TempDir()
		ctx, cancel := context.WithCancel(context.Background())
		cmd := exec.CommandContext(ctx, bin, append([]string{"--port", p, "--bind", "127.0.0.1", "--dir", dir,
			"--save", "", "--appendonly", "no"}, args(dir)...)...)
		require.NoError(t, cmd.Start())
		opt.Addr = net.JoinHostPort("127.0.0.1", p)
		c := redis.NewClient(&opt)
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) && c.Ping(context.Background()).Err() != nil {
			time.Sleep(20 * time.Millisecond) // pace the polling; the deadline bounds the wait
		}
		if c.Ping(context.Background()).Err() == nil {
			t.Cleanup(func() { _ = c.Close(); cancel(); _ = cmd.Wait() })
			return c
		}
		_ = c.Close()
		cancel()
		_ = cmd.Wait() // the port was taken meanwhile: another one
	}
	t.Fatal("redis-server did not start")
	return nil
}

// freePort finds a free loopback port.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// freePortPair finds a loopback port p below 55536 with p+10000 free too.
func freePortPair(t *testing.T) int {
	t.Helper()
	for {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		p := ln.Addr().(*net.TCPAddr).Port
		if p >= 55536 {
			ln.Close()
			continue
		}
		bus, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+10000))
		ln.Close()
		if err == nil {
			bus.Close()
			return p
		}
	}
}

// TestKeySlotMatchesRedis: CLUSTER KEYSLOT answers as redis-server's for
// 10,000 random binary keys and every hashtag edge case.
func TestKeySlotMatchesRedis(t *testing.T) {
	rc := startRedisCluster(t)
	ts := startClusterServer(t, nodeA, Config{})
	sc := ts.client(t, 2)

	keys := []string{"", "{", "}", "{}", "}{", "{{}}", "{}}", "{{", "}}", "{a", "a}", "{a}", "a{b}c", "a{}b", "a{}{b}", "{a}{b}",
		"foo{{bar}}zap", "foo{bar}{zap}", "{user1000}.following", "{user1000}.followers", "x{\x00}", "{\xff}", "\x00{}\x00",
		"{\r\n}", "a}b{c}", "}{a}", "{{a}}", "{}{}", "{ }", "{\x7b}", "123456789", "foo", "bar"}
	r := rand.New(rand.NewPCG(19, 16384))
	alphabet := []byte("{}ab\x00\xff")
	for range 10000 {
		b := make([]byte, r.IntN(24))
		for i := range b {
			if r.IntN(3) == 0 { // many braces and a small alphabet: hashtags of every shape
				b[i] = alphabet[r.IntN(len(alphabet))]
			} else {
				b[i] = byte(r.Uint32())
			}
		}
		keys = append(keys, string(b))
	}
	slots := func(c *redis.Client) []int64 {
		ctx := context.Background()
		p := c.Pipeline()
		cmds := make([]*redis.IntCmd, len(keys))
		for i, k := range keys {
			cmds[i] = p.ClusterKeySlot(ctx, k)
		}
		_, err := p.Exec(ctx)
		require.NoError(t, err)
		out := make([]int64, len(keys))
		for i, c := range cmds {
			out[i] = c.Val()
		}
		return out
	}
	want, got := slots(rc), slots(sc)
	for i := range keys {
		require.Equal(t, want[i], got[i], fmt.Sprintf("key %q", keys[i]))
	}
}

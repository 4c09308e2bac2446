package server

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sluicehq/sluice/persistence"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// syncBuffer is a log destination tests may read while the server writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func healthz(t *testing.T, s *Server) int {
	t.Helper()
	resp, err := http.Get("http://" + s.metrics.ln.Addr().String() + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// writeKeys fills cfg's data directory with n keys through a server of its
// own, stopped cleanly.
func writeKeys(t *testing.T, cfg Config, n int) {
	t.Helper()
	s, err := New(cfg, slog.New(slog.NewTextHandler(&syncBuffer{}, nil)))
	require.NoError(t, err)
	go func() { _ = s.Serve() }()
	require.Eventually(t, func() bool { return readyz(t, s) == http.StatusOK }, 10*time.Second, 5*time.Millisecond)
	c := redis.NewClient(&redis.Options{Addr: s.Addr().String()})
	defer c.Close()
	ctx := context.Background()
	pipe := c.Pipeline()
	for i := range n {
		pipe.Do(ctx, "THROTTLE", fmt.Sprintf("user:%d", i), 5, 1, 3600)
	}
	_, err = pipe.Exec(ctx)
	require.NoError(t, err)
	require.NoError(t, s.Shutdown(ctx))
}

// pausedRecovery starts a server on cfg whose recovery stops once it has
// loaded 1024 keys, until release is closed.
func pausedRecovery(t *testing.T, cfg Config, logs *syncBuffer) (s *Server, release chan struct{}) {
	t.Helper()
	s, err := New(cfg, slog.New(slog.NewTextHandler(logs, nil)))
	require.NoError(t, err)
	paused, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	s.recoveryHook = func(p persistence.Progress) {
		if p.Step == "load" && p.Keys >= 1024 {
			once.Do(func() { close(paused); <-release })
		}
	}
	s.recoveryLogEvery = time.Millisecond
	go func() { _ = s.Serve() }()
	select {
	case <-paused:
	case <-time.After(30 * time.Second):
		t.Fatalf("recovery never reached 1024 keys:\n%s", logs)
	}
	return s, release
}

// TestLoadingWhileRecovering: the RESP port, /healthz and /readyz answer
// while the data directory is recovered (they used to refuse connections
// until it ended): commands that touch keys and PING answer -LOADING, as
// Redis's do, connection and introspection commands run, INFO shows the
// progress, and the log reports it; then the server becomes ready.
func TestLoadingWhileRecovering(t *testing.T) {
	cfg := testConfig()
	cfg.DataDir = t.TempDir()
	cfg.MetricsAddr = "127.0.0.1:0"
	writeKeys(t, cfg, 3000)

	var logs syncBuffer
	s, release := pausedRecovery(t, cfg, &logs)
	t.Cleanup(func() { assert.NoError(t, s.Shutdown(context.Background())) })
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	assert.Equal(t, http.StatusOK, healthz(t, s), "the process is up")
	assert.Equal(t, http.StatusServiceUnavailable, readyz(t, s), "not ready while loading")
	c := redis.NewClient(&redis.Options{Addr: s.Addr().String(), MaxRetries: -1, DisableIdentity: true})
	defer c.Close()
	ctx := context.Background()
	const loading = "LOADING Sluice is loading the dataset in memory"
	for _, args := range [][]any{
		{"PING"}, {"THROTTLE", "user:1", 5, 1, 3600}, {"DBSIZE"}, {"SCAN", 0}, {"DEL", "user:1"}, {"FLUSHALL"},
		{"LEASE.ACQUIRE", "l", 1, 1000}, {"THROTTLE.WINDOW", "w", 1, 60}, {"EXISTS", "user:1"},
	} {
		assert.EqualError(t, c.Do(ctx, args...).Err(), loading, "%v", args)
	}
	for _, args := range [][]any{{"CLIENT", "SETNAME", "probe"}, {"COMMAND", "COUNT"}, {"CONFIG", "GET", "port"}, {"TIME"}, {"SELECT", 0}} {
		assert.NoError(t, c.Do(ctx, args...).Err(), "%v runs while loading", args)
	}
	assert.EqualError(t, c.Do(ctx, "AUTH", "x").Err(),
		"ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
		"AUTH runs while loading")
	info, err := c.Info(ctx, "persistence").Result()
	require.NoError(t, err)
	assert.Contains(t, info, "loading:1\r\n")
	assert.Contains(t, info, "loading_step:load\r\n")
	assert.Regexp(t, `loading_loaded_keys:(10[2-9]\d|1[1-9]\d\d|2\d\d\d)\r\n`, info)
	assert.Regexp(t, `loading_loaded_perc:\d+\.\d\d\r\n`, info)
	assert.Contains(t, info, "persistence_status:loading\r\n")
	require.Eventually(t, func() bool {
		return strings.Contains(logs.String(), `msg="recovering the data directory; commands answer -LOADING meanwhile" step=load keys=1024`)
	}, 10*time.Second, time.Millisecond, "the progress is logged while recovery is held")
	assert.Contains(t, logs.String(), "sluice listening")
	assert.NotContains(t, logs.String(), "sluice ready")

	close(release)
	require.Eventually(t, func() bool { return readyz(t, s) == http.StatusOK }, 10*time.Second, time.Millisecond)
	assert.Equal(t, int64(3000), c.DBSize(ctx).Val())
	assert.NoError(t, c.Ping(ctx).Err())
	v, err := c.Do(ctx, "THROTTLE", "user:1", 5, 1, 3600).Int64Slice()
	require.NoError(t, err)
	assert.Equal(t, int64(4), v[2], "the recovered state counts: two requests on user:1")
	info, err = c.Info(ctx, "persistence").Result()
	require.NoError(t, err)
	assert.Contains(t, info, "loading:0\r\n")
	assert.Contains(t, info, "persistence_recovery_keys:3000\r\n")
	out := logs.String()
	listening, recovered, ready := strings.Index(out, "sluice listening"), strings.Index(out, "recovered throttle state"), strings.Index(out, "sluice ready")
	assert.True(t, 0 <= listening && listening < recovered && recovered < ready, out)
}

// TestShutdownDuringRecovery: a shutdown waits for recovery to end, or for
// its context: then it says so and leaves the data directory to recover
// again at the next start.
func TestShutdownDuringRecovery(t *testing.T) {
	cfg := testConfig()
	cfg.DataDir = t.TempDir()
	cfg.MetricsAddr = "127.0.0.1:0"
	writeKeys(t, cfg, 2000)

	var logs syncBuffer
	s, release := pausedRecovery(t, cfg, &logs)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.Shutdown(ctx)
	assert.ErrorContains(t, err, "shutdown during recovery: the data directory was not closed")
	assert.Contains(t, logs.String(), "recovery still running")
	close(release)
	<-s.rec.done
	require.NoError(t, s.state.close(), "the test closes what the shutdown left")

	// Held again, then released while Shutdown waits: it closes cleanly.
	s, release = pausedRecovery(t, cfg, &logs)
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "waiting for the recovery") }, 10*time.Second, time.Millisecond)
	close(release)
	require.NoError(t, <-done)
	assert.Contains(t, logs.String(), "persistence closed")
}

package commands

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestKeyCommands(t *testing.T) {
	ts := startServer(t, true)
	c := ts.client(t, 2)
	ctx := context.Background()
	setClock(t, c, epoch)
	call(t, c, "THROTTLE", "a", 4, 1, 10)    // TAT +10s
	call(t, c, "THROTTLE", "b", 4, 1, 10, 2) // TAT +20s
	assert.Equal(t, int64(2), c.DBSize(ctx).Val())
	assert.Equal(t, int64(3), c.Exists(ctx, "a", "b", "a", "zzz").Val())
	assert.Equal(t, 10*time.Second, c.TTL(ctx, "a").Val())
	assert.Equal(t, 20000*time.Millisecond, c.PTTL(ctx, "b").Val())
	assert.Equal(t, time.Duration(-2), c.TTL(ctx, "zzz").Val())
	setClock(t, c, epoch+9_400_000_000)
	assert.Equal(t, 600*time.Millisecond, c.PTTL(ctx, "a").Val())
	assert.Equal(t, 1*time.Second, c.TTL(ctx, "a").Val())
	assert.Equal(t, int64(1), c.Del(ctx, "a", "zzz").Val())
	assert.Equal(t, []int64{0, 5, 4, -1, 10}, call(t, c, "THROTTLE", "a", 4, 1, 10), "DEL resets the limit")
	sec, err := c.Time(ctx).Result()
	require.NoError(t, err)
	assert.Equal(t, time.Unix(0, epoch+9_400_000_000).UTC(), sec.UTC())
	// Expiry: past every TAT, the keys are gone and DEBUG SWEEP reclaims them.
	setClock(t, c, epoch+60e9)
	assert.Equal(t, int64(0), c.Exists(ctx, "a", "b").Val())
	assert.Equal(t, int64(2), c.Do(ctx, "DEBUG", "SWEEP").Val())
	assert.Equal(t, int64(0), c.DBSize(ctx).Val())
	call(t, c, "THROTTLE", "c", 4, 1, 10)
	assert.NoError(t, c.FlushAll(ctx).Err())
	assert.NoError(t, c.Do(ctx, "FLUSHDB", "ASYNC").Err())
	assert.EqualError(t, c.Do(ctx, "FLUSHALL", "NOW").Err(), errSyntax)
	assert.Equal(t, int64(0), c.DBSize(ctx).Val())
	assert.Equal(t, int64(0), c.Do(ctx, "EXISTS", "c").Val())
}

// TestDelResetsWindowState: DEL resets a THROTTLE.WINDOW limit as it does a
// THROTTLE one, and DEBUG SWEEP reclaims expired window state too.
func TestDelResetsWindowState(t *testing.T) {
	ts := startServer(t, true)
	c := ts.client(t, 2)
	setClock(t, c, epoch)
	call(t, c, "THROTTLE.WINDOW", "w", 1, 60, 1, "ALGO", "fixed")
	assert.Equal(t, int64(1), call(t, c, "THROTTLE.WINDOW", "w", 1, 60, 1, "ALGO", "fixed")[0], "the window is spent")
	assert.Equal(t, int64(1), c.Del(context.Background(), "w").Val())
	assert.Equal(t, int64(0), call(t, c, "THROTTLE.WINDOW", "w", 1, 60, 1, "ALGO", "fixed")[0], "DEL reset it")
	setClock(t, c, epoch+3600e9)
	assert.Equal(t, int64(1), c.Do(context.Background(), "DEBUG", "SWEEP").Val())
}

// TestFlushAllCoversWindowsAndLeases: FLUSHALL resets every kind of state.
func TestFlushAllCoversWindowsAndLeases(t *testing.T) {
	ts := startServer(t, true)
	c := ts.client(t, 2)
	ctx := context.Background()
	setClock(t, c, epoch)
	call(t, c, "THROTTLE.WINDOW", "w", 1, 60, 1, "ALGO", "fixed")
	call(t, c, "LEASE.ACQUIRE", "l", 1, 60000)
	assert.Equal(t, int64(1), call(t, c, "LEASE.ACQUIRE", "l", 1, 60000)[0], "the only slot is taken")
	assert.NoError(t, c.FlushAll(ctx).Err())
	assert.Equal(t, int64(0), call(t, c, "THROTTLE.WINDOW", "w", 1, 60, 1, "ALGO", "fixed")[0], "window reset")
	assert.Equal(t, int64(0), call(t, c, "LEASE.ACQUIRE", "l", 1, 60000)[0], "leases reset")
}

// TestKeyCommandsSeeWindowsAndLeases: EXISTS, TTL, PTTL and DBSIZE count
// window and lease state like TATs.
func TestKeyCommandsSeeWindowsAndLeases(t *testing.T) {
	ts := startServer(t, true)
	c := ts.client(t, 2)
	ctx := context.Background()
	setClock(t, c, epoch)
	call(t, c, "THROTTLE.WINDOW", "w", 5, 60, 1, "ALGO", "fixed")
	call(t, c, "LEASE.ACQUIRE", "l", 2, 30000)
	assert.Equal(t, int64(2), c.Exists(ctx, "w", "l", "none").Val())
	assert.Equal(t, int64(2), c.DBSize(ctx).Val())
	assert.Equal(t, int64(30000), c.PTTL(ctx, "l").Val().Milliseconds())
	assert.Positive(t, c.TTL(ctx, "w").Val().Seconds())
	setClock(t, c, epoch+3600e9)
	assert.Equal(t, int64(0), c.Exists(ctx, "w", "l").Val())
}

// TestDebugSweepKeepsLiveKeys: DEBUG SWEEP reclaims the expired keys and
// returns while live keys remain (it once spun on a live key, holding its
// shard's lock).
func TestDebugSweepKeepsLiveKeys(t *testing.T) {
	ts := startServer(t, true)
	c := ts.client(t, 2)
	ctx := context.Background()
	setClock(t, c, epoch)
	for i := 0; i < 20; i++ {
		call(t, c, "THROTTLE", fmt.Sprintf("short%d", i), 0, 1, 1) // TAT +1s
		call(t, c, "THROTTLE", fmt.Sprintf("long%d", i), 0, 1, 60) // TAT +60s
	}
	setClock(t, c, epoch+2e9)
	assert.Equal(t, int64(20), c.Do(ctx, "DEBUG", "SWEEP").Val())
	assert.Equal(t, int64(20), c.DBSize(ctx).Val())
	assert.Equal(t, int64(0), c.Do(ctx, "DEBUG", "SWEEP").Val())
}

// TestDebugSweepReturnsWithEveryKindLive: DEBUG SWEEP returns while keys
// of every kind are live (it once cycled the slots about 2^62 times
// holding a shard lock, and SIGTERM could not stop it), reclaiming only
// what expired.
func TestDebugSweepReturnsWithEveryKindLive(t *testing.T) {
	ts := startServer(t, true)
	c := ts.client(t, 2)
	ctx := context.Background()
	setClock(t, c, epoch)
	for i := range 200 {
		call(t, c, "THROTTLE", fmt.Sprintf("gcra%d", i), 0, 1, 3600)
		call(t, c, "THROTTLE.WINDOW", fmt.Sprintf("window%d", i), 5, 3600)
		call(t, c, "LEASE.ACQUIRE", fmt.Sprintf("lease%d", i), 3, 3600_000)
	}
	call(t, c, "THROTTLE", "short", 0, 1, 1)
	setClock(t, c, epoch+2e9)
	done := make(chan *redis.Cmd, 1)
	go func() { done <- c.Do(ctx, "DEBUG", "SWEEP") }()
	select {
	case r := <-done:
		assert.Equal(t, int64(1), r.Val(), "only the expired key")
	case <-time.After(30 * time.Second):
		t.Fatal("DEBUG SWEEP did not return with live keys")
	}
	assert.Equal(t, int64(600), c.DBSize(ctx).Val())
}

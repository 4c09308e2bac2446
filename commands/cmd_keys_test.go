package commands

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
)

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

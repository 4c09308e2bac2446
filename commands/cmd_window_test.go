package commands

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var redisNil = redis.Nil

func TestThrottleWindow(t *testing.T) {
	ts := startServer(t, true)
	c := ts.client(t, 3)
	// Fixed window double burst: 10/minute, ten just before the boundary
	// and ten just after all pass.
	setClock(t, c, epoch+59_900_000_000)
	for i := 0; i < 10; i++ {
		require.Equal(t, int64(0), call(t, c, "THROTTLE.WINDOW", "f", 10, 60, 1, "ALGO", "fixed")[0])
	}
	assert.Equal(t, []int64{1, 10, 0, 1, 1}, call(t, c, "THROTTLE.WINDOW", "f", 10, 60, 1, "ALGO", "FIXED"))
	setClock(t, c, epoch+60e9)
	assert.Equal(t, []int64{0, 10, 0, -1, 60}, call(t, c, "THROTTLE.WINDOW", "f", 10, 60, 10, "ALGO", "fixed"))
	// The sliding window (the default) remembers the previous window.
	setClock(t, c, epoch+59_900_000_000)
	assert.Equal(t, []int64{0, 10, 0, -1, 61}, call(t, c, "THROTTLE.WINDOW", "s", 10, 60, 10))
	setClock(t, c, epoch+60e9)
	assert.Equal(t, []int64{1, 10, 0, 6, 60}, call(t, c, "THROTTLE.WINDOW", "s", 10, 60)) // 10 of the previous window weigh until 6 s in
	assert.Equal(t, []int64{0, 10, 0, -1, 60}, call(t, c, "THROTTLE.WINDOW", "s", 10, 60, 0, "ALGO", "sliding"))

	// Window state is reclaimed once it no longer matters.
	assert.Equal(t, 2, ts.keys.Stats().Windows)
	setClock(t, c, epoch+180e9)
	assert.Equal(t, 2, ts.keys.Sweep(ts.srv.Clock().Now(), 1<<30))
	assert.Zero(t, ts.keys.Stats().Windows)
}

func TestThrottleWindowErrors(t *testing.T) {
	ts := startServer(t, true)
	c := ts.client(t, 3)
	ctx := context.Background()
	for _, tc := range []struct {
		args []any
		want string
	}{
		{[]any{"THROTTLE.WINDOW", "k", 10}, "ERR wrong number of arguments for 'throttle.window' command"},
		{[]any{"THROTTLE.WINDOW", "k", "x", 60}, "ERR value is not an integer or out of range"},
		{[]any{"THROTTLE.WINDOW", "k", 0, 60}, "ERR invalid count: must be >= 1"},
		{[]any{"THROTTLE.WINDOW", "k", 1, 0}, "ERR invalid period: must be >= 1 second"},
		{[]any{"THROTTLE.WINDOW", "k", 1, 1 << 40}, "ERR limit arithmetic overflows 64-bit nanoseconds"},
		{[]any{"THROTTLE.WINDOW", "k", 1, 1, "ALGO"}, "ERR syntax error"},
		{[]any{"THROTTLE.WINDOW", "k", 1, 1, "ALGO", "gcra"}, "ERR unknown algorithm: must be fixed or sliding"},
		{[]any{"THROTTLE.WINDOW", "k", 1, 1, 1, "ALGO", "fixed", "x"}, "ERR syntax error"},
		{[]any{"THROTTLE.WINDOW", "k", 1, 1, "y"}, "ERR value is not an integer or out of range"},
	} {
		err := c.Do(ctx, tc.args...).Err()
		require.Error(t, err, "%v", tc.args)
		assert.Equal(t, tc.want, err.Error(), "%v", tc.args)
	}
}

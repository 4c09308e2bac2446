package commands

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// nested reads a reply that must be an array of arrays of integers.
func nested(t *testing.T, v any, err error) [][]int64 {
	t.Helper()
	require.NoError(t, err)
	arr, ok := v.([]any)
	require.True(t, ok, "reply %#v is not an array", v)
	out := make([][]int64, len(arr))
	for i, x := range arr {
		out[i] = ints(t, x, nil)
	}
	return out
}

func TestThrottleMulti(t *testing.T) {
	for _, proto := range []int{2, 3} {
		t.Run(fmt.Sprintf("RESP%d", proto), func(t *testing.T) {
			ts := startServer(t, true)
			c := ts.client(t, proto)
			setClock(t, c, epoch)
			multi := func(args ...any) [][]int64 {
				v, err := do(c, append([]any{"THROTTLE.MULTI"}, args...)...)
				return nested(t, v, err)
			}
			// 2 at once and 1/s on u:s; 3 at once and 3/min on u:m.
			lims := []any{"u:s", 1, 1, 1, "u:m", 2, 3, 60}
			assert.Equal(t, [][]int64{{0, 2, 1, -1, 20}, {0, 2, 1, -1, 1}, {0, 3, 2, -1, 20}}, multi(append([]any{1}, lims...)...))
			assert.Equal(t, [][]int64{{0, 2, 0, -1, 40}, {0, 2, 0, -1, 2}, {0, 3, 1, -1, 40}}, multi(append([]any{1}, lims...)...))
			// Refused by u:s: u:m is not charged and shows its state as is.
			assert.Equal(t, [][]int64{{1, 2, 0, 1, 40}, {1, 2, 0, 1, 2}, {0, 3, 1, -1, 40}}, multi(append([]any{1}, lims...)...))
			// THROTTLE sees the same state: u:m still has one left.
			assert.Equal(t, []int64{0, 3, 1, -1, 40}, call(t, c, "THROTTLE", "u:m", 2, 3, 60, 0))
			// A quantity no limit can ever admit: retry_after -1 overall.
			assert.Equal(t, []int64{1, 2, 0, -1, 40}, multi(append([]any{5}, lims...)...)[0])
		})
	}
}

func TestThrottleMultiErrors(t *testing.T) {
	ts := startServer(t, true)
	c := ts.client(t, 3)
	ctx := context.Background()
	for _, tc := range []struct {
		args []any
		want string
	}{
		{[]any{"THROTTLE.MULTI", 1, "k", 1, 1}, "ERR wrong number of arguments for 'throttle.multi' command"},
		{[]any{"THROTTLE.MULTI", 1, "k", 1, 1, 1, "k2"}, "ERR wrong number of arguments for 'throttle.multi' command"},
		{[]any{"THROTTLE.MULTI", "x", "k", 1, 1, 1}, "ERR value is not an integer or out of range"},
		{[]any{"THROTTLE.MULTI", 1, "k", 1, 1, 1.5}, "ERR value is not an integer or out of range"},
		{[]any{"THROTTLE.MULTI", 1, "k", -1, 1, 1}, "ERR invalid max_burst: must be >= 0"},
		{[]any{"THROTTLE.MULTI", 1, "k", 1, 0, 1}, "ERR invalid count: must be >= 1"},
		{[]any{"THROTTLE.MULTI", 1, "k", 1, 1, 1, "k2", 1, 1, 0}, "ERR invalid period: must be >= 1 second"},
	} {
		err := c.Do(ctx, tc.args...).Err()
		require.Error(t, err, "%v", tc.args)
		assert.Equal(t, tc.want, err.Error(), "%v", tc.args)
	}
	n, err := c.DBSize(ctx).Result()
	require.NoError(t, err)
	assert.Zero(t, n, "bad input charges nothing")
}

func TestThrottleMultiKeys(t *testing.T) {
	ts := startServer(t, true)
	c := ts.client(t, 3)
	keys, err := c.CommandGetKeys(context.Background(), "THROTTLE.MULTI", 1, "a", 1, 1, 1, "b", 2, 2, 2, "c", 3, 3, 3).Result()
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b", "c"}, keys)
	docs, err := c.Do(context.Background(), "COMMAND", "DOCS", "throttle.multi").Result()
	require.NoError(t, err)
	assert.Contains(t, fmt.Sprint(docs), "max_burst")
}

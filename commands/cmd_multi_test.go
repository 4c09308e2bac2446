package commands

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

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

// multiArgs is a THROTTLE.MULTI of n limits on distinct keys.
func multiArgs(n int) []any {
	args := []any{"THROTTLE.MULTI", 1}
	for i := range n {
		args = append(args, fmt.Sprintf("k%d", i), 10, 1, 60)
	}
	return args
}

// TestThrottleMultiLimitBound: one call checks at most max-multi-limits
// limits (default 64). A call of 16,383 limits once held every shard lock
// for 53 s; over the bound it is refused before any lock is taken and
// charges nothing.
func TestThrottleMultiLimitBound(t *testing.T) {
	ts := startServer(t, true)
	c := ts.client(t, 3)
	ctx := context.Background()
	setClock(t, c, epoch)
	v, err := c.Do(ctx, multiArgs(DefaultMaxMultiLimits)...).Result()
	require.NoError(t, err)
	assert.Len(t, v, 1+DefaultMaxMultiLimits)
	require.NoError(t, c.FlushAll(ctx).Err())
	for _, n := range []int{DefaultMaxMultiLimits + 1, 16383} {
		err := c.Do(ctx, multiArgs(n)...).Err()
		require.Error(t, err, "%d limits", n)
		assert.Equal(t, "ERR too many limits: at most 64 per call (max-multi-limits)", err.Error())
	}
	assert.Zero(t, c.DBSize(ctx).Val(), "a refused call charges nothing")

	small := startServerWith(t, Config{EnableDebug: true, MaxMultiLimits: 2})
	sc := small.client(t, 3)
	assert.NoError(t, sc.Do(ctx, multiArgs(2)...).Err())
	assert.EqualError(t, sc.Do(ctx, multiArgs(3)...).Err(), "ERR too many limits: at most 2 per call (max-multi-limits)")
}

// BenchmarkThrottleBesideMulti measures the freeze one client's largest
// allowed THROTTLE.MULTI (64 limits on new keys, spread over every shard,
// so it takes every shard lock) inflicts on another client's single
// THROTTLE: the THROTTLE's round trip while MULTIs run back to back on
// another connection, against the same THROTTLE alone (the peer). Reported
// as p50/p99/max microseconds per THROTTLE. Before the bound, one MULTI of
// 16,383 limits froze every other client for 53 s.
func BenchmarkThrottleBesideMulti(b *testing.B) {
	for _, beside := range []bool{false, true} {
		name := "alone"
		if beside {
			name = "beside-multi-64"
		}
		b.Run(name, func(b *testing.B) {
			ts := startServer(b, true)
			c := ts.client(b, 2)
			ctx := context.Background()
			stop := make(chan struct{})
			var wg sync.WaitGroup
			multis := 0
			if beside {
				wg.Add(1)
				go func() {
					defer wg.Done()
					mc := ts.client(b, 2)
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						args := []any{"THROTTLE.MULTI", 1}
						for j := range DefaultMaxMultiLimits {
							args = append(args, fmt.Sprintf("m%d:%d", i, j), 10, 1, 60)
						}
						if err := mc.Do(ctx, args...).Err(); err != nil {
							b.Error(err)
							return
						}
						multis++
					}
				}()
			}
			waits := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				start := time.Now()
				if err := c.Do(ctx, "THROTTLE", "single", 1<<20, 1, 1).Err(); err != nil {
					b.Fatal(err)
				}
				waits = append(waits, time.Since(start))
			}
			b.StopTimer()
			close(stop)
			wg.Wait()
			slices.Sort(waits)
			us := func(q float64) float64 { return float64(waits[int(q*float64(len(waits)-1))].Nanoseconds()) / 1e3 }
			b.ReportMetric(us(0.5), "p50-us")
			b.ReportMetric(us(0.99), "p99-us")
			b.ReportMetric(us(1), "max-us")
			if beside {
				b.ReportMetric(float64(multis)/float64(b.N), "multis/throttle")
			}
		})
	}
}

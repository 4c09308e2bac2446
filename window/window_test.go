package window

import (
	"math/rand/v2"
	"testing"

	"github.com/sluicehq/sluice/gcra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const epoch = int64(1893456000000000000) // 2030-01-01T00:00:00Z, aligned to every period used here

const sec = int64(1e9)

func reply(r gcra.Result) []int64 {
	limited := int64(0)
	if r.Limited {
		limited = 1
	}
	return []int64{limited, r.Limit, r.Remaining, gcra.Seconds(r.RetryAfter), gcra.Seconds(r.ResetAfter)}
}

func mustLimit(t testing.TB, count, period int64) Limit {
	t.Helper()
	l, err := NewLimit(count, period)
	require.NoError(t, err)
	return l
}

func TestNewLimit(t *testing.T) {
	for _, c := range []struct {
		count, period int64
		err           error
	}{
		{0, 1, gcra.ErrCount}, {-1, 1, gcra.ErrCount}, {1, 0, gcra.ErrPeriod}, {1, -5, gcra.ErrPeriod},
		{1 << 62, 1, gcra.ErrOverflow}, {1, 1 << 40, gcra.ErrOverflow}, {1, 9_223_372_037, gcra.ErrOverflow},
	} {
		_, err := NewLimit(c.count, c.period)
		assert.ErrorIs(t, err, c.err, "%d %d", c.count, c.period)
	}
	l := mustLimit(t, 1<<61, 1_152_921_504)
	assert.Equal(t, int64(1<<61), l.Count())
}

// TestDecide pins exact replies at chosen instants. W is the start of a
// window (epoch + one period); states are written out as stored.
func TestDecide(t *testing.T) {
	l := mustLimit(t, 50, 60)
	W := epoch + 60*sec
	for _, c := range []struct {
		name  string
		algo  Algorithm
		st    State
		now   int64
		q     int64
		want  []int64
		after State
	}{
		// Cloudflare's example: 42 in the previous minute, 18 in this one,
		// 15 s in: 42*45/60 + 18 = 49.5, counted as 50.
		{"cloudflare full", Sliding, State{W, 18, 42}, W + 15*sec, 1, []int64{1, 50, 0, 1, 105}, State{W, 18, 42}},
		{"previous only", Sliding, State{W - 60*sec, 42, 0}, W + 15*sec, 1, []int64{0, 50, 17, -1, 105}, State{W, 1, 42}},
		{"stale state", Sliding, State{W - 120*sec, 42, 7}, W + 15*sec, 1, []int64{0, 50, 49, -1, 105}, State{W, 1, 0}},
		{"fresh peek", Sliding, State{}, W + 15*sec, 0, []int64{0, 50, 50, -1, 0}, State{W, 0, 0}},
		{"never fits", Sliding, State{}, W, 51, []int64{1, 50, 50, -1, 0}, State{}},
		{"current full, wait for next window", Sliding, State{W, 50, 0}, W + 15*sec, 1, []int64{1, 50, 0, 47, 105}, State{W, 50, 0}},
		{"refund", Sliding, State{W, 5, 10}, W + 30*sec, -3, []int64{0, 50, 43, -1, 90}, State{W, 2, 10}},
		{"refund floors at zero", Sliding, State{W, 1, 10}, W + 30*sec, -3, []int64{0, 50, 45, -1, 30}, State{W, 0, 10}},
		{"fixed ignores previous", Fixed, State{W - 60*sec, 50, 0}, W + 15*sec, 1, []int64{0, 50, 49, -1, 45}, State{W, 1, 0}},
		{"fixed full", Fixed, State{W, 50, 0}, W + 15*sec, 1, []int64{1, 50, 0, 45, 45}, State{W, 50, 0}},
		{"fixed at the boundary", Fixed, State{W, 50, 0}, W + 60*sec, 50, []int64{0, 50, 0, -1, 60}, State{W + 60*sec, 50, 0}},
		{"fixed never fits", Fixed, State{}, W, 51, []int64{1, 50, 50, -1, 0}, State{}},
	} {
		st, r := Decide(c.algo, c.st, c.now, l, c.q)
		assert.Equal(t, c.want, reply(r), c.name)
		assert.Equal(t, c.after, st, c.name)
	}
	// The Cloudflare case in nanoseconds: room 31 of prev 42 fits once
	// 60 s * 31/42 = 44.285714285 s of the previous window remain.
	_, r := Decide(Sliding, State{W, 18, 42}, W+15*sec, l, 1)
	assert.Equal(t, int64(60e9-44_285_714_285-15e9), r.RetryAfter)
}

// TestRetryAfterIsExact: for random states, the request is refused one
// nanosecond before now+retry_after and admitted at it.
func TestRetryAfterIsExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	refusals := 0
	for iter := 0; iter < 20000; iter++ {
		count := 1 + rng.Int64N(100)
		period := 1 + rng.Int64N(120)
		l := mustLimit(t, count, period)
		a := Algorithm(rng.IntN(2))
		p := l.Period()
		ws := epoch - epoch%p
		st := State{Start: ws, Curr: rng.Int64N(count + 1), Prev: rng.Int64N(count + 1)}
		now := ws + rng.Int64N(p)
		q := 1 + rng.Int64N(count)
		_, r := Decide(a, st, now, l, q)
		if !r.Limited {
			continue
		}
		refusals++
		require.Positive(t, r.RetryAfter, "iter %d", iter)
		_, before := Decide(a, st, now+r.RetryAfter-1, l, q)
		_, at := Decide(a, st, now+r.RetryAfter, l, q)
		require.True(t, before.Limited, "iter %d %v %+v now+%d q=%d: admitted before retry_after %d", iter, a, st, now-ws, q, r.RetryAfter)
		require.False(t, at.Limited, "iter %d %v %+v now+%d q=%d: refused at retry_after %d", iter, a, st, now-ws, q, r.RetryAfter)
	}
	assert.Greater(t, refusals, 1000)
}

func TestParseAlgorithm(t *testing.T) {
	for in, want := range map[string]Algorithm{"fixed": Fixed, "FIXED": Fixed, "fixed-window": Fixed, "sliding": Sliding, "Sliding-Window": Sliding} {
		a, err := ParseAlgorithm([]byte(in))
		require.NoError(t, err, in)
		assert.Equal(t, want, a, in)
	}
	_, err := ParseAlgorithm([]byte("gcra"))
	assert.ErrorIs(t, err, ErrAlgorithm)
}

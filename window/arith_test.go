package window

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Boundary values the fuzzer would not find by itself.
const (
	maxPeriodSeconds = 1_152_921_504 // the longest period NewLimit accepts
	// lastSecond starts the clock's last whole 1 s window: it ends at
	// 9223372037e9 ns, past 2^63-1.
	lastSecond = int64(9_223_372_036_000_000_000)
)

// TestDecideBoundaries pins the arithmetic's edges: huge quantities are
// refused and leave the counters alone (they used to wrap the comparison,
// pass and reset the count to 0), windows the clock cannot hold admit
// nothing, and instants near 0 behave like any other.
func TestDecideBoundaries(t *testing.T) {
	l := mustLimit(t, 50, 60)
	top := mustLimit(t, maxCount, 60)
	lsec := mustLimit(t, 10, 1)
	lmax := mustLimit(t, 10, maxPeriodSeconds)
	pmax := lmax.Period()
	W := epoch + 60*sec
	for _, c := range []struct {
		name  string
		algo  Algorithm
		l     Limit
		st    State
		now   int64
		q     int64
		want  []int64 // limited, limit, remaining, retry_after ns, reset_after ns
		after State
	}{
		{"2^63-1 fixed", Fixed, l, State{W, 5, 0}, W + 15*sec, math.MaxInt64,
			[]int64{1, 50, 45, -1, 45 * sec}, State{W, 5, 0}},
		{"2^63-1 sliding", Sliding, l, State{W, 5, 10}, W + 30*sec, math.MaxInt64,
			[]int64{1, 50, 40, -1, 90 * sec}, State{W, 5, 10}},
		{"2^62 sliding", Sliding, l, State{W, 5, 10}, W + 30*sec, 1 << 62,
			[]int64{1, 50, 40, -1, 90 * sec}, State{W, 5, 10}},
		{"2^63-1 on an empty key", Fixed, l, State{}, W, math.MaxInt64,
			[]int64{1, 50, 50, -1, 0}, State{}},
		{"1", Sliding, l, State{W, 5, 10}, W + 30*sec, 1,
			[]int64{0, 50, 39, -1, 90 * sec}, State{W, 6, 10}},
		{"0 peeks", Sliding, l, State{W, 5, 10}, W + 30*sec, 0,
			[]int64{0, 50, 40, -1, 90 * sec}, State{W, 5, 10}},
		{"-2^63 refunds to 0", Sliding, l, State{W, 5, 10}, W + 30*sec, math.MinInt64,
			[]int64{0, 50, 45, -1, 30 * sec}, State{W, 0, 10}},
		// Counts at the bound: used = (2^61-1) + 2^61 = 2^62-1; adding
		// 2^63-1 used to wrap negative and pass.
		{"2^63-1 on counts at the bound", Sliding, top, State{W, maxCount - 1, maxCount}, W, math.MaxInt64,
			[]int64{1, maxCount, 0, -1, 120 * sec}, State{W, maxCount - 1, maxCount}},
		{"count at the bound fills", Fixed, top, State{W, maxCount - 1, 0}, W, 1,
			[]int64{0, maxCount, 0, -1, 60 * sec}, State{W, maxCount, 0}},
		{"count at the bound is full", Fixed, top, State{W, maxCount, 0}, W, 1,
			[]int64{1, maxCount, 0, 60 * sec, 60 * sec}, State{W, maxCount, 0}},
		// Near 0.
		{"now 0", Sliding, l, State{}, 0, 1, []int64{0, 50, 49, -1, 120 * sec}, State{0, 1, 0}},
		{"now 1, window 0", Fixed, l, State{0, 50, 0}, 1, 1, []int64{1, 50, 0, 60*sec - 1, 60*sec - 1}, State{0, 50, 0}},
		{"now before 0 is 0", Fixed, l, State{0, 50, 0}, math.MinInt64, 1, []int64{1, 50, 0, 60 * sec, 60 * sec}, State{0, 50, 0}},
		// Near the end of the clock, 1 s windows: a fixed window must end
		// by 2^63-1, a sliding one's next window too.
		{"fixed, last whole window", Fixed, lsec, State{}, lastSecond - sec + 5, 1,
			[]int64{0, 10, 9, -1, sec - 5}, State{lastSecond - sec, 1, 0}},
		{"fixed, last whole window full: the next cannot open", Fixed, lsec, State{lastSecond - sec, 10, 0}, lastSecond - sec + 5, 1,
			[]int64{1, 10, 0, -1, sec - 5}, State{lastSecond - sec, 10, 0}},
		{"fixed, window past the end", Fixed, lsec, State{lastSecond - sec, 3, 0}, lastSecond + 5, 1,
			[]int64{1, 10, 0, -1, 0}, State{lastSecond - sec, 3, 0}},
		{"fixed at 2^63-1", Fixed, lsec, State{}, math.MaxInt64, 0,
			[]int64{1, 10, 0, -1, 0}, State{}},
		{"sliding, next window past the end", Sliding, lsec, State{lastSecond - sec, 3, 0}, lastSecond - sec + 5, 1,
			[]int64{1, 10, 0, -1, math.MaxInt64 - (lastSecond - sec + 5)}, State{lastSecond - sec, 3, 0}},
		{"sliding at 2^63-1, counts unchanged", Sliding, lsec, State{lastSecond, 3, 4}, math.MaxInt64, -3,
			[]int64{1, 10, 0, -1, 0}, State{lastSecond, 3, 4}},
		{"sliding, last window that fits", Sliding, lsec, State{}, lastSecond - 2*sec, 10,
			[]int64{0, 10, 0, -1, 2 * sec}, State{lastSecond - 2*sec, 10, 0}},
		{"sliding, retry in a window past the end", Sliding, lsec, State{lastSecond - 2*sec, 10, 0}, lastSecond - 2*sec, 10,
			[]int64{1, 10, 0, -1, 2 * sec}, State{lastSecond - 2*sec, 10, 0}},
		// The longest period: its eighth fixed window and seventh sliding
		// one end past 2^63-1.
		{"longest period, fixed, last window", Fixed, lmax, State{}, 7*pmax + 1, 1,
			[]int64{0, 10, 9, -1, pmax - 1}, State{7 * pmax, 1, 0}},
		{"longest period, fixed, past the end", Fixed, lmax, State{}, 8 * pmax, 1,
			[]int64{1, 10, 0, -1, 0}, State{}},
		{"longest period, sliding, past the end", Sliding, lmax, State{6 * pmax, 4, 0}, 7*pmax + 1, 1,
			[]int64{1, 10, 0, -1, pmax - 1}, State{6 * pmax, 4, 0}},
		{"longest period, sliding, last window", Sliding, lmax, State{5 * pmax, 4, 0}, 6*pmax + pmax/2, 1,
			[]int64{0, 10, 7, -1, pmax + pmax/2}, State{6 * pmax, 1, 4}},
	} {
		st, r := Decide(c.algo, c.st, c.now, c.l, c.q)
		limited := int64(0)
		if r.Limited {
			limited = 1
		}
		assert.Equal(t, c.want, []int64{limited, r.Limit, r.Remaining, r.RetryAfter, r.ResetAfter}, c.name)
		assert.Equal(t, c.after, st, c.name)
	}
}

// TestExpiresAtTheEnd: a state whose expiry would pass 2^63-1 reads as
// expiring at 2^63-1, never earlier (a wrapped negative expiry made the
// store drop it, resetting the key).
func TestExpiresAtTheEnd(t *testing.T) {
	l := mustLimit(t, 10, maxPeriodSeconds)
	st := State{Start: math.MaxInt64 - 5, Curr: 1, Prev: 1}
	assert.Equal(t, int64(math.MaxInt64), st.Expires(Sliding, l))
	assert.Equal(t, int64(math.MaxInt64), st.Expires(Fixed, l))
	assert.Equal(t, 7*l.Period(), State{Start: 5 * l.Period(), Curr: 1}.Expires(Sliding, l))
	assert.Zero(t, State{Start: 5, Prev: 3}.Expires(Fixed, l))
}

// TestClockStepsBack: an instant before the key's window is decided in
// that window, at its start; the counters are never reset by it.
func TestClockStepsBack(t *testing.T) {
	l := mustLimit(t, 10, 60)
	W := epoch + 60*sec
	for _, c := range []struct {
		name  string
		algo  Algorithm
		st    State
		now   int64
		q     int64
		want  []int64 // limited, limit, remaining, retry_after ns, reset_after ns
		after State
	}{
		{"fixed, full, one window back", Fixed, State{W, 10, 0}, W - 1, 1,
			[]int64{1, 10, 0, 60*sec + 1, 60*sec + 1}, State{W, 10, 0}},
		{"fixed, full, far back", Fixed, State{W, 10, 0}, 5, 1,
			[]int64{1, 10, 0, W + 60*sec - 5, W + 60*sec - 5}, State{W, 10, 0}},
		{"fixed, room left, counted in the key's window", Fixed, State{W, 4, 0}, W - 30*sec, 2,
			[]int64{0, 10, 4, -1, 90 * sec}, State{W, 6, 0}},
		// At the window's start the previous count weighs in full: 4 + 5 + 1 = 10.
		{"sliding, previous weighs in full", Sliding, State{W, 4, 5}, W - 30*sec, 1,
			[]int64{0, 10, 0, -1, 150 * sec}, State{W, 5, 5}},
		{"sliding, full", Sliding, State{W, 5, 5}, W - 30*sec, 1,
			[]int64{1, 10, 0, 30*sec + 12*sec, 150 * sec}, State{W, 5, 5}},
		{"refund at an earlier instant", Sliding, State{W, 5, 5}, W - 30*sec, -2,
			[]int64{0, 10, 2, -1, 150 * sec}, State{W, 3, 5}},
	} {
		st, r := Decide(c.algo, c.st, c.now, l, c.q)
		limited := int64(0)
		if r.Limited {
			limited = 1
		}
		assert.Equal(t, c.want, []int64{limited, r.Limit, r.Remaining, r.RetryAfter, r.ResetAfter}, c.name)
		assert.Equal(t, c.after, st, c.name)
	}
}

// TestClockWanders drives one key with a clock that jumps back and forth
// and quantities that include 2^63-1: no fixed window ever holds more than
// Count, whichever instant the requests carried.
func TestClockWanders(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 63))
	l := mustLimit(t, 20, 10)
	p := l.Period()
	quantities := []int64{1, 1, 2, 5, 20, 21, math.MaxInt64, 1 << 62, 0}
	var st State
	charged := map[int64]int64{} // window start -> admitted quantity
	now := epoch
	for i := 0; i < 20000; i++ {
		now += rng.Int64N(4*p) - 2*p // steps of up to two windows, either way
		q := quantities[rng.IntN(len(quantities))]
		next, r := Decide(Fixed, st, now, l, q)
		if r.Limited {
			require.Equal(t, st, next, "step %d: a refusal changed the state", i)
			continue
		}
		if next.Start != st.Start {
			require.Greater(t, next.Start, st.Start, "step %d: the window went back", i)
		}
		charged[next.Start] += q
		require.LessOrEqual(t, charged[next.Start], l.Count(), "step %d: window %d over its count", i, next.Start)
		require.Equal(t, charged[next.Start], next.Curr, "step %d", i)
		st = next
	}
}

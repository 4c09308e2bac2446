package gcra

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"

	"github.com/sluicehq/sluice/internal/vectors"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// manualClock is the fake clock the tests drive.
type manualClock struct{ ns int64 }

func (c *manualClock) Now() int64 { return c.ns }

func reply(r Result) []int64 {
	limited := int64(0)
	if r.Limited {
		limited = 1
	}
	return []int64{limited, r.Limit, r.Remaining, Seconds(r.RetryAfter), Seconds(r.ResetAfter)}
}

func loadVectors(t *testing.T) vectors.File {
	t.Helper()
	wd, err := os.Getwd()
	require.NoError(t, err)
	p, err := vectors.Path(wd)
	require.NoError(t, err)
	f, err := vectors.Load(p)
	require.NoError(t, err)
	require.Len(t, f.Rows, 89)
	return f
}

// TestVectors drives every reference row through Decide, keeping each
// key's TAT in a map, with a fake clock.
func TestVectors(t *testing.T) {
	f := loadVectors(t)
	clock := &manualClock{}
	tats := map[string]int64{}
	for i, row := range f.Rows {
		clock.ns = f.EpochNs + row.TNs
		l, q, err := vectorLimit(row.Args[2:])
		var r Result
		if err == nil {
			var tat int64
			key, now := row.Args[1], clock.Now()
			if tat, r, err = Decide(tats[key], now, l, q); err == nil {
				tats[key] = tat
			}
		}
		if row.Expect == nil {
			require.Error(t, err, "row %d %v", i, row.Args)
			continue
		}
		require.NoError(t, err, "row %d %v", i, row.Args)
		assert.Equal(t, row.Expect, reply(r), "row %d %s %v (%s)", i, row.Scenario, row.Args, row.Note)
	}
}

// vectorLimit reads a vector row's max_burst, count, period and optional
// quantity (the rows' integers are plain base-10; package commands parses
// THROTTLE's arguments, and tests every row end to end).
func vectorLimit(args []string) (Limit, int64, error) {
	if len(args) != 3 && len(args) != 4 {
		return Limit{}, 0, fmt.Errorf("%d arguments", len(args))
	}
	v := [4]int64{3: 1}
	for i, a := range args {
		n, err := strconv.ParseInt(a, 10, 64)
		if err != nil {
			return Limit{}, 0, err
		}
		v[i] = n
	}
	l, err := NewLimit(v[0], v[1], v[2])
	return l, v[3], err
}

func TestSeconds(t *testing.T) {
	for _, c := range []struct{ ns, want int64 }{
		{-1, -1}, {0, 0}, {500_000, 0}, {999_999, 0}, {1_000_000, 1}, {999_500_000, 1},
		{1e9, 1}, {1e9 + 999_999, 1}, {9_001_000_000, 10}, {10e9, 10}, {math.MaxInt64, 9223372037},
	} {
		assert.Equal(t, c.want, Seconds(c.ns), "Seconds(%d)", c.ns)
	}
}

func TestNewLimitErrors(t *testing.T) {
	for _, c := range []struct {
		burst, count, period int64
		err                  error
	}{
		{-1, 1, 1, ErrNegativeBurst},
		{0, 0, 1, ErrCount},
		{0, -1, 1, ErrCount},
		{0, 1, 0, ErrPeriod},
		{0, 1, -1, ErrPeriod},
		{0, 1, math.MaxInt64, ErrOverflow},
		{0, 1, 120000000000, ErrOverflow},
		{math.MaxInt64, 1, 1, ErrOverflow},
		{math.MaxInt64 / 2, 1, 1, ErrOverflow},
		{0, 2_000_000_000, 1, ErrZeroRate},
		{0, math.MaxInt64, 9_000_000_000, ErrZeroRate},
	} {
		_, err := NewLimit(c.burst, c.count, c.period)
		assert.ErrorIs(t, err, c.err, "%d %d %d", c.burst, c.count, c.period)
	}
	l, err := NewLimit(15, 30, 60)
	require.NoError(t, err)
	assert.Equal(t, int64(16), l.Max())
	assert.Equal(t, int64(2e9), l.Interval())
	assert.Equal(t, int64(32e9), l.Tolerance())
}

// TestDecideOverflow: arithmetic that would wrap is an error, never a wrong answer.
func TestDecideOverflow(t *testing.T) {
	l, err := NewLimit(0, 1, 9_000_000_000) // T = 9e18 ns
	require.NoError(t, err)
	_, _, err = Decide(0, 1e18, l, 2)
	assert.ErrorIs(t, err, ErrOverflow)
	_, _, err = Decide(0, 1e18, l, math.MinInt64)
	assert.ErrorIs(t, err, ErrOverflow)
	_, _, err = Decide(0, 1e18, l, 1) // tat = now + 9e18 overflows
	assert.ErrorIs(t, err, ErrOverflow)
}

// randomLimit draws limits across several orders of magnitude.
func randomLimit(rng *rand.Rand) (Limit, int64, int64, int64) {
	burst := rng.Int64N(50)
	count := 1 + rng.Int64N(1000)
	period := 1 + rng.Int64N(3600)
	l, err := NewLimit(burst, count, period)
	if err != nil {
		panic(err)
	}
	return l, burst, count, period
}

// TestProperties checks invariants over random request sequences.
func TestProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := 0; iter < 2000; iter++ {
		l, _, _, _ := randomLimit(rng)
		now := int64(1893456000000000000)
		tat := int64(0)
		for step := 0; step < 50; step++ {
			now += rng.Int64N(l.Tolerance()/4 + 1)
			q := rng.Int64N(l.Max()+3) - 1 // -1 .. limit+1
			// Peeking never changes state and agrees with the next request's view.
			peekTAT, peek, err := Decide(tat, now, l, 0)
			require.NoError(t, err)
			assert.Equal(t, max(tat, now), max(peekTAT, now), "peek changed state")
			newTAT, r, err := Decide(tat, now, l, q)
			require.NoError(t, err)
			assert.LessOrEqual(t, r.Remaining, l.Max(), "remaining above limit")
			assert.GreaterOrEqual(t, r.Remaining, int64(0))
			assert.LessOrEqual(t, newTAT-now, l.Tolerance(), "capacity below zero")
			assert.GreaterOrEqual(t, newTAT, now, "refund past full capacity")
			assert.Equal(t, peek.Remaining >= q || q <= 0, !r.Limited,
				"admits exactly when the quantity fits: remaining %d q %d", peek.Remaining, q)
			if r.Limited {
				assert.Equal(t, max(tat, now), newTAT, "a refusal changed state")
			}
			tat = newTAT
		}
	}
}

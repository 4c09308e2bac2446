package gcra

import (
	"math"
	"math/rand/v2"
	"os"
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
		args := make([][]byte, 0, 4)
		for _, a := range row.Args[2:] {
			args = append(args, []byte(a))
		}
		l, q, err := ParseThrottle(args)
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
			assert.Regexp(t, "^ERR ", err.Error())
			continue
		}
		require.NoError(t, err, "row %d %v", i, row.Args)
		assert.Equal(t, row.Expect, reply(r), "row %d %s %v (%s)", i, row.Scenario, row.Args, row.Note)
	}
}

func TestSeconds(t *testing.T) {
	for _, c := range []struct{ ns, want int64 }{
		{-1, -1}, {0, 0}, {500_000, 0}, {999_999, 0}, {1_000_000, 1}, {999_500_000, 1},
		{1e9, 1}, {1e9 + 999_999, 1}, {9_001_000_000, 10}, {10e9, 10}, {math.MaxInt64, 9223372037},
	} {
		assert.Equal(t, c.want, Seconds(c.ns), "Seconds(%d)", c.ns)
	}
}

func TestParseInt(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true}, {"15", 15, true}, {"+5", 5, true}, {"-1", -1, true}, {"007", 7, true},
		{"-0", 0, true}, {"9223372036854775807", math.MaxInt64, true},
		{"-9223372036854775808", math.MinInt64, true},
		{"9223372036854775808", 0, false}, {"-9223372036854775809", 0, false},
		{"99999999999999999999", 0, false}, {"", 0, false}, {"+", 0, false}, {"-", 0, false},
		{"1.5", 0, false}, {"0x10", 0, false}, {" 1", 0, false}, {"1 ", 0, false}, {"5x", 0, false},
		{"+-5", 0, false}, {"1_000", 0, false}, {"１", 0, false},
	} {
		got, err := ParseInt([]byte(c.in))
		if c.ok {
			require.NoError(t, err, "%q", c.in)
			assert.Equal(t, c.want, got, "%q", c.in)
		} else {
			assert.ErrorIs(t, err, ErrNotInteger, "%q", c.in)
		}
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

func FuzzParseInt(f *testing.F) {
	for _, s := range []string{"0", "+5", "-1", "9223372036854775807", "9223372036854775808",
		"-9223372036854775808", "99999999999999999999", "", "1.5", "0x10", "007"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := ParseInt(b)
		// Reference: digits with optional sign, value in range.
		ok := len(b) > 0
		s := b
		if ok && (s[0] == '+' || s[0] == '-') {
			s = s[1:]
		}
		ok = ok && len(s) > 0
		for _, c := range s {
			ok = ok && c >= '0' && c <= '9'
		}
		if !ok {
			require.Error(t, err)
			return
		}
		if err == nil {
			// Round trip through the decimal form (ignoring '+' and leading zeros).
			neg := b[0] == '-'
			require.Equal(t, neg && got != 0 || got < 0, got < 0)
		}
	})
}

func FuzzThrottleArgs(f *testing.F) {
	f.Add([]byte("15"), []byte("30"), []byte("60"), []byte("1"))
	f.Add([]byte("-1"), []byte("1"), []byte("1"), []byte("1"))
	f.Add([]byte("0"), []byte("9223372036854775807"), []byte("9223372036"), []byte("-9223372036854775808"))
	f.Add([]byte("9223372036854775806"), []byte("1"), []byte("1"), []byte("0"))
	f.Fuzz(func(t *testing.T, a, b, c, d []byte) {
		l, q, err := ParseThrottle([][]byte{a, b, c, d})
		if err != nil {
			require.Regexp(t, "^ERR ", err.Error())
			return
		}
		_, r, err := Decide(0, 1893456000000000000, l, q)
		if err != nil {
			require.Regexp(t, "^ERR ", err.Error())
			return
		}
		require.LessOrEqual(t, r.Remaining, l.Max())
		require.GreaterOrEqual(t, r.Remaining, int64(0))
	})
}

package window

import (
	"math"
	"math/big"
	"testing"

	"github.com/sluicehq/sluice/gcra"
	"github.com/stretchr/testify/require"
)

// FuzzDecide checks Decide against model, the same rules in big integers,
// on any state, instant, limit and quantity: Decide never panics, answers
// exactly as the model does, never admits past the count (fixed) or the
// weighted count (sliding), and leaves the state alone when it refuses.
//
// mode picks how the raw numbers are read, so that mutations reach the
// states Decide meets as well as damaged ones: bit 0 the algorithm (set:
// fixed), bit 1 start as a number of windows from now's window (-2..2),
// bit 2 curr and prev reduced to 0..2*count.
func FuzzDecide(f *testing.F) {
	f.Fuzz(func(t *testing.T, mode uint8, start, curr, prev, now, count, periodSeconds, quantity int64) {
		_, _ = NewLimit(count, periodSeconds) // any input: an error or a Limit, never a panic
		count = 1 + int64(uint64(count)%maxCount)
		periodSeconds = 1 + int64(uint64(periodSeconds)%(maxPeriod/1_000_000_000))
		l, err := NewLimit(count, periodSeconds)
		require.NoError(t, err)
		p := l.Period()
		a := Sliding
		if mode&1 != 0 {
			a = Fixed
		}
		if mode&2 != 0 {
			n := max(now, 0)
			start = n - n%p + (int64(uint64(start)%5)-2)*p
		}
		if mode&4 != 0 {
			curr = int64(uint64(curr) % uint64(2*count+1))
			prev = int64(uint64(prev) % uint64(2*count+1))
		}
		st := State{Start: start, Curr: curr, Prev: prev}

		got, r := Decide(a, st, now, l, quantity)
		want, wr, d := model(a, st, now, l, quantity)
		if !d.retryKnown {
			wr.RetryAfter = r.RetryAfter
		}
		require.Equal(t, wr, r, "%v %+v now=%d limit=%d/%ds q=%d", a, st, now, count, periodSeconds, quantity)
		require.Equal(t, want, got, "%v %+v now=%d limit=%d/%ds q=%d", a, st, now, count, periodSeconds, quantity)
		if r.Limited {
			require.Equal(t, st, got)
			require.True(t, r.RetryAfter == -1 || r.RetryAfter > 0, "retry_after %d", r.RetryAfter)
			return
		}
		require.True(t, d.horizonOK)
		if quantity > 0 {
			// Within the count: the window's own (fixed), or the current
			// window plus the previous one's weight (sliding).
			used := new(big.Int).Add(big.NewInt(got.Curr), d.weighted)
			require.True(t, used.Cmp(big.NewInt(count)) <= 0, "admitted to %s of %d", used, count)
		}
		require.GreaterOrEqual(t, got.Curr, int64(0))
		require.True(t, r.Remaining >= 0 && r.Remaining <= count)
		require.GreaterOrEqual(t, r.ResetAfter, int64(0))
	})
}

// decision is what model derives for one instant.
type decision struct {
	n, ws, at            *big.Int // now (at least 0), the window, the instant decided at
	cur, prev, weighted  *big.Int
	horizonOK, fits      bool
	retryKnown           bool // the state is aligned to windows, so RetryAfter is defined
	count, p, spanEnd, q *big.Int
}

var maxInt64 = big.NewInt(math.MaxInt64)

func bigMax(a, b *big.Int) *big.Int {
	if a.Cmp(b) >= 0 {
		return a
	}
	return b
}

func decideAt(a Algorithm, st State, now int64, l Limit, quantity int64) decision {
	zero := big.NewInt(0)
	d := decision{count: big.NewInt(l.Count()), p: big.NewInt(l.Period()), q: big.NewInt(quantity)}
	d.n = bigMax(big.NewInt(now), zero)
	start := big.NewInt(st.Start)
	d.ws = new(big.Int).Sub(d.n, new(big.Int).Mod(d.n, d.p))
	d.at = d.n
	if start.Cmp(d.n) > 0 { // the clock stepped back: the key's window, at its start
		d.ws, d.at = start, start
	}
	d.cur, d.prev = zero, zero
	switch {
	case start.Cmp(d.ws) == 0:
		d.cur, d.prev = bigMax(big.NewInt(st.Curr), zero), bigMax(big.NewInt(st.Prev), zero)
	case start.Cmp(new(big.Int).Sub(d.ws, d.p)) == 0:
		d.prev = bigMax(big.NewInt(st.Curr), zero)
	}
	windows := int64(2)
	if a == Fixed {
		d.prev, windows = zero, 1
	}
	// weighted = ceil(prev * (p - elapsed) / p)
	left := new(big.Int).Sub(d.p, new(big.Int).Sub(d.at, d.ws))
	x := new(big.Int).Mul(d.prev, left)
	d.weighted = new(big.Int).Div(x.Add(x, new(big.Int).Sub(d.p, big.NewInt(1))), d.p)
	d.spanEnd = new(big.Int).Add(d.ws, new(big.Int).Mul(d.p, big.NewInt(windows)))
	d.horizonOK = d.spanEnd.Cmp(maxInt64) <= 0
	used := new(big.Int).Add(d.cur, d.weighted)
	d.fits = quantity <= 0 || new(big.Int).Add(used, d.q).Cmp(d.count) <= 0
	d.retryKnown = new(big.Int).Mod(start, d.p).Sign() == 0
	return d
}

// resetAfter is the time from now until counts cur (with the decision's
// weighted previous count) stop counting, the instant capped at 2^63-1.
func (d decision) resetAfter(a Algorithm, cur *big.Int) int64 {
	var at *big.Int
	switch {
	case cur.Sign() > 0 && a == Sliding:
		at = new(big.Int).Add(d.ws, new(big.Int).Mul(d.p, big.NewInt(2)))
	case cur.Sign() > 0 || d.weighted.Sign() > 0:
		at = new(big.Int).Add(d.ws, d.p)
	default:
		at = d.n
	}
	if at.Cmp(maxInt64) > 0 {
		at = maxInt64
	}
	return toInt64(new(big.Int).Sub(at, d.n))
}

func toInt64(v *big.Int) int64 {
	if !v.IsInt64() {
		panic("model value out of int64: " + v.String())
	}
	return v.Int64()
}

// model is Decide's documented rules in big integers. RetryAfter is found
// by search, not by formula: the first instant after now at which the same
// request, on the same state, is admitted.
func model(a Algorithm, st State, now int64, l Limit, quantity int64) (State, gcra.Result, decision) {
	d := decideAt(a, st, now, l, quantity)
	r := gcra.Result{Limit: l.Count(), RetryAfter: -1, Limited: true}
	if !d.horizonOK {
		r.ResetAfter = d.resetAfter(a, d.cur)
		return st, r, d
	}
	if !d.fits {
		room := new(big.Int).Sub(d.count, new(big.Int).Add(d.cur, d.weighted))
		r.Remaining = toInt64(bigMax(room, big.NewInt(0)))
		r.ResetAfter = d.resetAfter(a, d.cur)
		if quantity <= l.Count() && d.retryKnown {
			r.RetryAfter = retrySearch(a, st, d, l, quantity)
		}
		return st, r, d
	}
	cur := bigMax(new(big.Int).Add(d.cur, d.q), big.NewInt(0))
	r.Limited = false
	r.Remaining = toInt64(bigMax(new(big.Int).Sub(d.count, new(big.Int).Add(cur, d.weighted)), big.NewInt(0)))
	r.ResetAfter = d.resetAfter(a, cur)
	return State{Start: toInt64(d.ws), Curr: toInt64(cur), Prev: toInt64(d.prev)}, r, d
}

// retrySearch bisects (now, end of the decision's span], where a request of
// at most count fits: every count there has left its window. Whether it
// fits only grows with time on a state aligned to windows. The first
// instant it fits is the answer if the clock can hold its window, else -1.
func retrySearch(a Algorithm, st State, d decision, l Limit, quantity int64) int64 {
	lo, hi := toInt64(d.n), toInt64(d.spanEnd)
	if !decideAt(a, st, hi, l, quantity).fits {
		panic("model: the request does not fit after its span")
	}
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if decideAt(a, st, mid, l, quantity).fits {
			hi = mid
		} else {
			lo = mid
		}
	}
	if !decideAt(a, st, hi, l, quantity).horizonOK {
		return -1
	}
	return hi - toInt64(d.n)
}

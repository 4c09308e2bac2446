package slidinglog

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	epoch = int64(1893456000000000000)
	ms    = int64(1e6)
	sec   = int64(1e9)
)

func TestNewLimit(t *testing.T) {
	for _, c := range []struct {
		max, period int64
		err         error
	}{{0, 1000, ErrMax}, {-1, 1000, ErrMax}, {1, 0, ErrPeriod}, {1, MaxPeriod + 1, ErrPeriod}, {1, -5, ErrPeriod}} {
		_, err := NewLimit(c.max, c.period)
		assert.ErrorIs(t, err, c.err, "%d %d", c.max, c.period)
	}
	l, err := NewLimit(3, MaxPeriod)
	require.NoError(t, err)
	assert.Equal(t, MaxPeriod*ms, l.Period())
}

// TestMovingWindow: three per second, exactly; a slot frees one second
// after the request that took it, not at a window boundary.
func TestMovingWindow(t *testing.T) {
	l, _ := NewLimit(3, 1000)
	var log []Entry
	acquire := func(now, q int64) Result {
		var r Result
		log, r = Acquire(Live(log, now, l.Period()), now, l, q)
		return r
	}
	assert.Equal(t, Result{Limit: 3, Remaining: 2, RetryAfter: -1, ResetAfter: sec}, acquire(epoch, 1))
	assert.Equal(t, Result{Limit: 3, Remaining: 0, RetryAfter: -1, ResetAfter: sec}, acquire(epoch+400*ms, 2))
	assert.Equal(t, Result{Limited: true, Limit: 3, RetryAfter: 100 * ms, ResetAfter: 500 * ms}, acquire(epoch+900*ms, 1))
	assert.Equal(t, Result{Limited: true, Limit: 3, RetryAfter: -1, ResetAfter: 500 * ms}, acquire(epoch+900*ms, 4), "never fits")
	assert.Equal(t, Result{Limited: true, Limit: 3, RetryAfter: 500 * ms, ResetAfter: 500 * ms}, acquire(epoch+900*ms, 2))
	// At exactly one second the first request leaves.
	assert.Equal(t, Result{Limit: 3, Remaining: 0, RetryAfter: -1, ResetAfter: sec}, acquire(epoch+sec, 1))
	assert.Equal(t, Window{Count: 3, NextLeaves: 400 * ms, AllLeave: sec}, Stat(Live(log, epoch+sec, l.Period()), epoch+sec, l.Period()))
	assert.Equal(t, Result{Limit: 3, Remaining: 0, RetryAfter: -1, ResetAfter: sec}, acquire(epoch+sec, 0), "peek")
	assert.Equal(t, []Entry{{epoch + 400*ms, 2}, {epoch + sec, 1}}, log)
	assert.Equal(t, epoch+2*sec, Expires(log, l.Period()))
	assert.Empty(t, Live(log, epoch+2*sec, l.Period()))
}

// TestClockSteppingBack: requests at an instant before the newest entry
// count at the newest entry's instant, so the log stays ordered.
func TestClockSteppingBack(t *testing.T) {
	l, _ := NewLimit(5, 1000)
	log, _ := Acquire(nil, epoch, l, 1)
	log, r := Acquire(log, epoch-500*ms, l, 2)
	assert.False(t, r.Limited)
	assert.Equal(t, []Entry{{epoch, 3}}, log)
}

// TestModel compares Acquire with a naive model that keeps one instant per
// request, as the limits library's Redis storage does.
func TestModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	for range 200 {
		max := 1 + rng.Int64N(10)
		periodMS := 1 + rng.Int64N(2000)
		l, err := NewLimit(max, periodMS)
		require.NoError(t, err)
		var log []Entry
		var model []int64 // instants, oldest first
		now := epoch
		for range 200 {
			now += rng.Int64N(3*periodMS*ms/max + 1)
			q := rng.Int64N(3)
			live := model[:0:0]
			for _, at := range model {
				if at+l.Period() > now {
					live = append(live, at)
				}
			}
			model = live
			admit := q == 0 || int64(len(model))+q <= max
			var r Result
			log, r = Acquire(Live(log, now, l.Period()), now, l, q)
			require.Equal(t, !admit, r.Limited)
			if admit {
				for range q {
					model = append(model, now)
				}
			} else if q <= max {
				// The retry instant is when the (len+q-max)th oldest leaves.
				k := int64(len(model)) + q - max
				require.Equal(t, model[k-1]+l.Period()-now, r.RetryAfter)
			}
			require.Equal(t, int64(len(model)), Count(log))
			require.Equal(t, max-int64(len(model)), r.Remaining)
		}
	}
}

func TestEncoding(t *testing.T) {
	es := []Entry{{epoch, 2}, {epoch + 1, 1}}
	got, err := Decode(Encode(nil, es))
	require.NoError(t, err)
	assert.Equal(t, es, got)
	for _, bad := range [][]byte{nil, make([]byte, 15), Encode(nil, []Entry{{epoch, 0}}), Encode(nil, []Entry{{epoch, 1}, {epoch, 1}})} {
		_, err := Decode(bad)
		assert.ErrorIs(t, err, ErrEncoding, "%x", bad)
	}
}

// TestBoundedAndStrict: a log of a huge limit fed by many admitting calls
// at distinct instants keeps at most MaxEntries entries, counts every
// request, and at every later instant counts at least as many as the exact
// log would: compaction can refuse earlier, never admit more.
func TestBoundedAndStrict(t *testing.T) {
	l, _ := NewLimit(1_000_000, 3_600_000)
	var log []Entry
	var exact []int64
	now := epoch
	for i := range 10 * MaxEntries {
		now += 1 + int64(i%7)*ms
		var r Result
		log, r = Acquire(Live(log, now, l.Period()), now, l, 1)
		require.False(t, r.Limited)
		exact = append(exact, now)
		require.LessOrEqual(t, len(log), MaxEntries)
	}
	assert.Equal(t, int64(len(exact)), Count(log))
	for later := now; later < now+l.Period()+sec; later += 97 * sec {
		counted := Count(Counting(log, later, l.Period()))
		n := int64(0)
		for _, at := range exact {
			if at+l.Period() > later {
				n++
			}
		}
		require.GreaterOrEqual(t, counted, n, "at +%ds", (later-now)/sec)
	}
}

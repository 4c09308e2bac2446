package window

import (
	"math/rand/v2"
	"sync"
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

// TestFixedWindowDoubleBurst shows the fixed window's known weakness: a
// full window's worth just before a boundary and another just after pass
// within a fraction of a second. The sliding window refuses the second.
func TestFixedWindowDoubleBurst(t *testing.T) {
	l := mustLimit(t, 10, 60)
	for _, c := range []struct {
		algo     Algorithm
		admitted int
	}{{Fixed, 20}, {Sliding, 10}} {
		s := NewStore(4)
		admitted := 0
		for _, now := range []int64{epoch + 59_900_000_000, epoch + 60*sec} { // 100 ms apart
			for i := 0; i < 10; i++ {
				if !s.Take(c.algo, []byte("k"), now, l, 1).Limited {
					admitted++
				}
			}
		}
		assert.Equal(t, c.admitted, admitted, c.algo.String())
	}
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

func TestStoreSweep(t *testing.T) {
	s := NewStore(4)
	l := mustLimit(t, 5, 10)
	for i := 0; i < 100; i++ {
		s.Take(Sliding, []byte{byte(i)}, epoch, l, 1)
		s.Take(Fixed, []byte{'f', byte(i)}, epoch, l, 1)
	}
	assert.Equal(t, 200, s.Len())
	assert.Zero(t, s.Sweep(epoch+10*sec-1, 1<<30))
	// The fixed windows ended at epoch+10s; the sliding counts weigh on the
	// next window until epoch+20s.
	assert.Equal(t, 100, s.Sweep(epoch+10*sec, 1<<30))
	assert.Equal(t, 100, s.Len())
	assert.Equal(t, 100, s.Sweep(epoch+20*sec, 1<<30))
	assert.Zero(t, s.Len())
	// Writes reclaim too: new keys examine others as they arrive.
	for i := 0; i < 1000; i++ {
		s.Take(Fixed, []byte{byte(i), byte(i >> 8)}, epoch+int64(i)*10*sec, l, 1)
	}
	assert.Less(t, s.Len(), 100, "writes must reclaim ended windows")
	// A peek on a fresh key stores nothing.
	s.Sweep(epoch+1e6*sec, 1<<30)
	s.Take(Sliding, []byte("peek"), epoch, l, 0)
	assert.Zero(t, s.Len())
}

func TestStoreTakeMulti(t *testing.T) {
	s := NewStore(4)
	perSec := mustLimit(t, 2, 1)
	perMin := mustLimit(t, 3, 60)
	checks := []Check{{Key: []byte("s"), Limit: perSec}, {Key: []byte("m"), Limit: perMin}}
	res := make([]gcra.Result, 2)
	assert.False(t, s.TakeMulti(Fixed, checks, epoch, 1, res))
	assert.False(t, s.TakeMulti(Fixed, checks, epoch, 1, res))
	assert.True(t, s.TakeMulti(Fixed, checks, epoch, 1, res))
	assert.Equal(t, []int64{1, 2, 0, 1, 1}, reply(res[0]))
	assert.Equal(t, []int64{0, 3, 1, -1, 60}, reply(res[1]), "not charged: one left")
	assert.False(t, s.TakeMulti(Fixed, checks, epoch+sec, 1, res))
	assert.True(t, s.TakeMulti(Fixed, checks, epoch+sec, 1, res))
	assert.Equal(t, []int64{0, 2, 1, -1, 1}, reply(res[0]), "not charged")
	assert.Equal(t, []int64{1, 3, 0, 59, 59}, reply(res[1]))
}

func TestStoreConcurrent(t *testing.T) {
	s := NewStore(8)
	l := mustLimit(t, 100, 60)
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted := 0
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 0
			res := make([]gcra.Result, 2)
			for i := 0; i < 50; i++ {
				checks := []Check{{Key: []byte("hot"), Limit: l}, {Key: []byte{byte(g)}, Limit: l}}
				if g%2 == 0 {
					checks[0], checks[1] = checks[1], checks[0]
				}
				if !s.TakeMulti(Sliding, checks, epoch, 1, res) {
					n++
				}
			}
			mu.Lock()
			admitted += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	assert.Equal(t, 100, admitted)
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

func BenchmarkTake(b *testing.B) {
	b.ReportAllocs()
	s := NewStore(64)
	l, _ := NewLimit(1000, 60)
	key := []byte("user:1")
	for i := 0; i < b.N; i++ {
		s.Take(Sliding, key, epoch+int64(i)*1e6, l, 1)
	}
}

package keyspace

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/gcra"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func mustLimit(t testing.TB, burst, count, period int64) gcra.Limit {
	t.Helper()
	l, err := gcra.NewLimit(burst, count, period)
	require.NoError(t, err)
	return l
}

func TestThrottleMultiExample(t *testing.T) {
	tbl := New(4, nil)
	now := int64(1893456000000000000)
	perSecond := mustLimit(t, 1, 1, 1)  // 2 at once, 1/s
	perMinute := mustLimit(t, 2, 3, 60) // 3 at once, 3/min
	checks := []Check{{Key: []byte("u:s"), Limit: perSecond}, {Key: []byte("u:m"), Limit: perMinute}}
	res := make([]gcra.Result, 2)

	limited, err := tbl.ThrottleMulti(checks, now, 1, res)
	require.NoError(t, err)
	assert.False(t, limited)
	assert.Equal(t, []int64{0, 2, 1, -1, 1}, reply(res[0]))
	assert.Equal(t, []int64{0, 3, 2, -1, 20}, reply(res[1]))

	limited, err = tbl.ThrottleMulti(checks, now, 1, res)
	require.NoError(t, err)
	assert.False(t, limited)
	assert.Equal(t, []int64{0, 2, 0, -1, 2}, reply(res[0]))
	assert.Equal(t, []int64{0, 3, 1, -1, 40}, reply(res[1]))

	// The per-second limit refuses; the per-minute one would admit but is
	// not charged and reports its state as it stands.
	before, _ := tbl.TAT([]byte("u:m"), now)
	limited, err = tbl.ThrottleMulti(checks, now, 1, res)
	require.NoError(t, err)
	assert.True(t, limited)
	assert.Equal(t, []int64{1, 2, 0, 1, 2}, reply(res[0]))
	assert.Equal(t, []int64{0, 3, 1, -1, 40}, reply(res[1]))
	after, _ := tbl.TAT([]byte("u:m"), now)
	assert.Equal(t, before, after)

	// Two seconds later the per-second limit has room, the per-minute one
	// has one left: admitted, then the per-minute one refuses.
	now += 2e9
	limited, err = tbl.ThrottleMulti(checks, now, 1, res)
	require.NoError(t, err)
	assert.False(t, limited)
	limited, err = tbl.ThrottleMulti(checks, now, 1, res)
	require.NoError(t, err)
	assert.True(t, limited)
	assert.Equal(t, []int64{0, 2, 1, -1, 1}, reply(res[0]))
	assert.Equal(t, []int64{1, 3, 0, 18, 58}, reply(res[1]))
}

func TestThrottleMultiErrors(t *testing.T) {
	tbl := New(4, nil)
	_, err := tbl.ThrottleMulti(nil, 1, 1, nil)
	assert.ErrorIs(t, err, ErrNoChecks)
	huge := mustLimit(t, 0, 1, 9_000_000_000)
	small := mustLimit(t, 5, 1, 1)
	res := make([]gcra.Result, 2)
	_, err = tbl.ThrottleMulti([]Check{{Key: []byte("a"), Limit: small}, {Key: []byte("b"), Limit: huge}}, 1e18, 1, res)
	assert.ErrorIs(t, err, gcra.ErrOverflow)
	assert.Zero(t, tbl.Len(), "an error charges nothing")
}

// TestThrottleMultiSameKeyTwice: a key named twice is charged twice, in order.
func TestThrottleMultiSameKeyTwice(t *testing.T) {
	tbl := New(4, nil)
	now := int64(1893456000000000000)
	l := mustLimit(t, 2, 1, 1)
	checks := []Check{{Key: []byte("k"), Limit: l}, {Key: []byte("k"), Limit: l}}
	res := make([]gcra.Result, 2)
	limited, err := tbl.ThrottleMulti(checks, now, 1, res)
	require.NoError(t, err)
	assert.False(t, limited)
	assert.Equal(t, int64(2), res[0].Remaining)
	assert.Equal(t, int64(1), res[1].Remaining)
	tat, ok := tbl.TAT([]byte("k"), now)
	require.True(t, ok)
	assert.Equal(t, now+2e9, tat)
	// One left: the second charge would refuse, so neither is made.
	limited, err = tbl.ThrottleMulti(checks, now, 1, res)
	require.NoError(t, err)
	assert.True(t, limited)
	tat, _ = tbl.TAT([]byte("k"), now)
	assert.Equal(t, now+2e9, tat)
}

// snapshot copies every live TAT.
func snapshot(ks *Keyspace, now int64) map[string]int64 {
	m := map[string]int64{}
	ks.Range(func(c Change) {
		if c.Kind == GCRA && c.Expires > now {
			m[string(c.Key)] = c.Expires
		}
	})
	return m
}

// TestThrottleMultiProperties compares random multi-limit requests with a
// model that applies the checks one by one to a copy of the state: when the
// model admits every check the table must hold the model's state; when any
// check refuses the table must be exactly as it was.
func TestThrottleMultiProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	tbl := New(4, nil)
	now := int64(1893456000000000000)
	keys := []string{"a", "b", "c", "d", "e", "f"}
	refusals := 0
	for iter := 0; iter < 5000; iter++ {
		now += rng.Int64N(3e9)
		n := 1 + rng.IntN(4)
		checks := make([]Check, n)
		for i := range checks {
			l, _, _, _ := randomLimit(rng)
			checks[i] = Check{Key: []byte(keys[rng.IntN(len(keys))]), Limit: l}
		}
		q := rng.Int64N(4) - 1 // -1..2
		before := snapshot(tbl, now)
		model := maps.Clone(before)
		modelLimited := false
		for _, c := range checks {
			tat, r, err := gcra.Decide(model[string(c.Key)], now, c.Limit, q)
			require.NoError(t, err)
			if r.Limited {
				modelLimited = true
			}
			if tat > now {
				model[string(c.Key)] = tat
			} else {
				delete(model, string(c.Key))
			}
		}
		res := make([]gcra.Result, n)
		limited, err := tbl.ThrottleMulti(checks, now, q, res)
		require.NoError(t, err)
		require.Equal(t, modelLimited, limited, "iter %d", iter)
		if limited {
			refusals++
			require.Equal(t, before, snapshot(tbl, now), "iter %d: a refusal charged something", iter)
			for i, c := range checks {
				if !res[i].Limited { // a peek at the unchanged state
					_, r, _ := gcra.Decide(before[string(c.Key)], now, c.Limit, 0)
					require.Equal(t, r, res[i])
				}
			}
		} else {
			require.Equal(t, model, snapshot(tbl, now), "iter %d", iter)
		}
	}
	assert.Greater(t, refusals, 500, "the test must exercise refusals")
}

// TestThrottleMultiConcurrent: goroutines taking overlapping key sets in
// opposite orders neither deadlock nor admit more than the tightest limit.
func TestThrottleMultiConcurrent(t *testing.T) {
	tbl := New(16, nil)
	now := int64(1893456000000000000)
	tight := mustLimit(t, 49, 1, 60) // 50 at once
	loose := mustLimit(t, 999, 1, 60)
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted := 0
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := make([]gcra.Result, 3)
			n := 0
			for i := 0; i < 100; i++ {
				checks := []Check{
					{Key: []byte(fmt.Sprintf("loose%d", i%7)), Limit: loose},
					{Key: []byte("tight"), Limit: tight},
					{Key: []byte(fmt.Sprintf("loose%d", (i+3)%7)), Limit: loose},
				}
				if g%2 == 1 {
					checks[0], checks[2] = checks[2], checks[0]
				}
				limited, err := tbl.ThrottleMulti(checks, now, 1, res)
				if err == nil && !limited {
					n++
				}
			}
			mu.Lock()
			admitted += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	assert.Equal(t, 50, admitted)
}

func BenchmarkThrottleMulti(b *testing.B) {
	b.ReportAllocs()
	tbl := New(64, nil)
	now := int64(1893456000000000000)
	l1, _ := gcra.NewLimit(9, 10, 1)
	l2, _ := gcra.NewLimit(999, 1000, 86400)
	checks := []Check{{Key: []byte("user:1:s"), Limit: l1}, {Key: []byte("user:1:d"), Limit: l2}}
	res := make([]gcra.Result, 2)
	for i := 0; i < b.N; i++ {
		_, _ = tbl.ThrottleMulti(checks, now+int64(i)*1e9, 1, res)
	}
}

// BenchmarkThrottleMultiSize is one THROTTLE.MULTI of n distinct keys: the
// time every involved shard lock is held. n=64 is the largest call
// --max-multi-limits allows by default; n=16383 is the attack that once
// froze every client for 53 s (quadratic work under every shard lock).
// ns/limit staying flat from 64 to 16383 is the linearity claim.
func BenchmarkThrottleMultiSize(b *testing.B) {
	for _, n := range []int{64, 1024, 16383} {
		b.Run(fmt.Sprintf("limits=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			ks := New(256, nil)
			l, _ := gcra.NewLimit(1<<20, 1, 1)
			checks := make([]Check, n)
			for i := range checks {
				checks[i] = Check{Key: []byte(fmt.Sprintf("tenant:%d:limit:%d", i%97, i)), Limit: l}
			}
			res := make([]gcra.Result, n)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				_, _ = ks.ThrottleMulti(checks, epoch+int64(i), 1, res)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/limit")
		})
	}
}

// BenchmarkThrottleBesideMulti is the freeze a THROTTLE.MULTI of n limits
// inflicts on a concurrent single Throttle whose shard it locks: MULTIs of
// n distinct keys (one of them sharing the single key's shard) run back to
// back in another goroutine while the benchmark times single Throttles.
// Reported: the single Throttle's p50/p99/max in microseconds, and
// multi-us, the mean time one MULTI holds its locks (the longest a
// colliding THROTTLE waits, scheduling aside). n=0 is the peer (no MULTI
// running), n=64 the largest call allowed by default, n=1024 for scale.
func BenchmarkThrottleBesideMulti(b *testing.B) {
	for _, n := range []int{0, 64, 1024} {
		b.Run(fmt.Sprintf("limits=%d", n), func(b *testing.B) {
			ks := New(256, nil)
			l, _ := gcra.NewLimit(1<<20, 1, 1)
			key := []byte("single")
			home, _ := ks.locate(key)
			neighbour := []byte("n0")
			for i := 1; func() bool { s, _ := ks.locate(neighbour); return s != home }(); i++ {
				neighbour = []byte(fmt.Sprintf("n%d", i))
			}
			stop := make(chan struct{})
			var wg sync.WaitGroup
			var held time.Duration
			multis := 0
			if n > 0 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var rounds [4][]Check // distinct keys, reused so the tables stop growing
					for r := range rounds {
						for j := range n {
							rounds[r] = append(rounds[r], Check{Key: []byte(fmt.Sprintf("m%d:%d", r, j)), Limit: l})
						}
						rounds[r][n/2].Key = neighbour
					}
					res := make([]gcra.Result, n)
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						start := time.Now()
						_, _ = ks.ThrottleMulti(rounds[i%len(rounds)], epoch+int64(i), 1, res)
						held += time.Since(start)
						multis++
					}
				}()
			}
			waits := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				start := time.Now()
				_, _ = ks.Throttle(key, epoch, l, 1)
				waits = append(waits, time.Since(start))
			}
			b.StopTimer()
			close(stop)
			wg.Wait()
			slices.Sort(waits)
			us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
			q := func(f float64) float64 { return us(waits[int(f*float64(len(waits)-1))]) }
			b.ReportMetric(q(0.5), "p50-us")
			b.ReportMetric(q(0.99), "p99-us")
			b.ReportMetric(q(1), "max-us")
			if multis > 0 {
				b.ReportMetric(us(held)/float64(multis), "multi-us")
			}
		})
	}
}

package keyspace

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"

	"github.com/sluicehq/sluice/gcra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func benchKeys(n int) [][]byte {
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = []byte("user:" + strconv.Itoa(i))
	}
	return keys
}

// recorder is a Journal that keeps the stream as text, one change a line:
// "set gcra a new", "delete window b", "flush".
type recorder struct{ changes []string }

func (r *recorder) Record(c Change) {
	switch c.Op {
	case Flush:
		r.changes = append(r.changes, "flush")
	case Set:
		s := fmt.Sprintf("set %v %s", c.Kind, c.Key)
		if c.Created {
			s += " new"
		}
		r.changes = append(r.changes, s)
	default:
		r.changes = append(r.changes, fmt.Sprintf("%v %v %s", c.Op, c.Kind, c.Key))
	}
}

// TestGCRAJournal: every change to a TAT is one Change, in order; peeks
// and refusals change nothing.
func TestGCRAJournal(t *testing.T) {
	j := &recorder{}
	ks := New(1, j)
	l, err := gcra.NewLimit(1, 1, 1)
	require.NoError(t, err)
	now := int64(1e18)
	_, _ = ks.Throttle([]byte("a"), now, l, 1)  // new
	_, _ = ks.Throttle([]byte("a"), now, l, 0)  // peek: no change
	_, _ = ks.Throttle([]byte("a"), now, l, 5)  // refused: no change
	_, _ = ks.Throttle([]byte("a"), now, l, -5) // refund to full: delete
	_, _ = ks.Throttle([]byte("b"), now, l, 1)  // new
	ks.Delete([]byte("b"), now)                 // delete
	_, _ = ks.Throttle([]byte("c"), now, l, 1)  // new
	_, _ = ks.Throttle([]byte("c"), now, l, 1)  // set
	checks := []Check{{Key: []byte("c"), Limit: l}, {Key: []byte("d"), Limit: l}}
	limited, err := ks.ThrottleMulti(checks, now+2e9, 1, make([]gcra.Result, 2))
	require.NoError(t, err)
	require.False(t, limited)
	ks.Sweep(now+9e9, 100)
	ks.Flush()
	require.Len(t, j.changes, 11)
	assert.Equal(t, []string{"set gcra a new", "delete gcra a", "set gcra b new", "delete gcra b",
		"set gcra c new", "set gcra c", "set gcra d new", "set gcra c"}, j.changes[:8])
	assert.ElementsMatch(t, []string{"delete gcra c", "delete gcra d"}, j.changes[8:10], "swept in slot order")
	assert.Equal(t, "flush", j.changes[10])
}

// TestTableModel compares the table with a plain map under random operations,
// growth, shrinking, sweeps and deletes.
func TestTableModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	tbl := New(2, nil)
	model := map[string]int64{}
	l, err := gcra.NewLimit(3, 1, 1)
	require.NoError(t, err)
	now := int64(1e18)
	keys := make([][]byte, 3000)
	for i := range keys {
		keys[i] = []byte{byte(i), byte(i >> 8), 0, 0xff}[:1+i%4]
		keys[i] = append(keys[i], []byte(string(rune('a'+i%26)))...)
		keys[i] = append(keys[i], byte(i%7), byte(i/7))
	}
	for step := 0; step < 60000; step++ {
		k := keys[rng.IntN(len(keys))]
		switch op := rng.IntN(20); {
		case op < 14:
			tat := model[string(k)]
			wantTAT, want, err := gcra.Decide(tat, now, l, 1)
			require.NoError(t, err)
			got, err := tbl.Throttle(k, now, l, 1)
			require.NoError(t, err)
			require.Equal(t, want, got)
			if wantTAT > now {
				model[string(k)] = wantTAT
			} else {
				delete(model, string(k))
			}
		case op < 16:
			_, live := tbl.TAT(k, now)
			require.Equal(t, model[string(k)] > now, live)
			require.Equal(t, model[string(k)] > now, tbl.Delete(k, now))
			delete(model, string(k))
		case op < 17:
			tbl.Sweep(now, 64)
		case op < 19:
			now += rng.Int64N(3e8)
		default:
			tat, ok := tbl.TAT(k, now)
			if m := model[string(k)]; m > now {
				require.True(t, ok)
				require.Equal(t, m, tat)
			} else {
				require.False(t, ok)
			}
		}
	}
	// A full sweep far in the future reclaims everything; slots shrink back.
	tbl.Sweep(now+1e12, 1<<30)
	st := tbl.Stats()
	assert.Equal(t, 0, st.Keys)
	assert.LessOrEqual(t, st.Slots, 2*8*2)
}

// TestSweepIncremental: each Sweep call looks at a bounded number of slots,
// and repeated calls reclaim every expired key while live ones stay.
func TestSweepIncremental(t *testing.T) {
	tbl := New(1, nil)
	now := int64(1e18)
	short, _ := gcra.NewLimit(0, 1, 1)
	long, _ := gcra.NewLimit(0, 1, 3600)
	for i := 0; i < 10000; i++ {
		l := short
		if i%10 == 0 {
			l = long
		}
		_, err := tbl.Throttle([]byte{byte(i), byte(i >> 8), 'k'}, now, l, 1)
		require.NoError(t, err)
	}
	require.Equal(t, 10000, tbl.Len())
	later := now + 2e9
	removed := tbl.Sweep(later, 100)
	assert.LessOrEqual(t, removed, 100, "one call must stay within its budget")
	for calls := 0; calls < 1000 && tbl.Len() > 1000; calls++ {
		tbl.Sweep(later, 100)
	}
	assert.Equal(t, 1000, tbl.Len())
	for i := 0; i < 10000; i += 10 {
		_, ok := tbl.TAT([]byte{byte(i), byte(i >> 8), 'k'}, later)
		require.True(t, ok, "live key %d was swept", i)
	}
	st := tbl.Stats()
	assert.Equal(t, uint64(9000), st.Reclaimed)
	assert.LessOrEqual(t, st.Slots, 8*1000, "slots shrink as keys go (17434 at the peak)")
}

// BenchmarkTableThrottle: existing keys, one goroutine.
func BenchmarkTableThrottle(b *testing.B) {
	b.ReportAllocs()
	l, _ := gcra.NewLimit(15, 30, 60)
	tbl := New(64, nil)
	keys := benchKeys(100_000)
	now := int64(1893456000000000000)
	for _, k := range keys {
		_, _ = tbl.Throttle(k, now, l, 1)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, _ = tbl.Throttle(keys[i%len(keys)], now+int64(i), l, 1)
	}
}

// BenchmarkTableThrottleParallel: existing keys, GOMAXPROCS goroutines.
func BenchmarkTableThrottleParallel(b *testing.B) {
	b.ReportAllocs()
	l, _ := gcra.NewLimit(15, 30, 60)
	tbl := New(64, nil)
	keys := benchKeys(100_000)
	now := int64(1893456000000000000)
	for _, k := range keys {
		_, _ = tbl.Throttle(k, now, l, 1)
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i += 7919
			_, _ = tbl.Throttle(keys[i%len(keys)], now+int64(i), l, 1)
		}
	})
}

func TestThrottleExistingKeyAllocatesNothing(t *testing.T) {
	l, _ := gcra.NewLimit(15, 30, 60)
	tbl := New(8, nil)
	key := []byte("user123")
	now := int64(1893456000000000000)
	_, err := tbl.Throttle(key, now, l, 1)
	require.NoError(t, err)
	i := int64(0)
	allocs := testing.AllocsPerRun(1000, func() {
		i++
		_, _ = tbl.Throttle(key, now+i*2e9, l, 1)
	})
	assert.Zero(t, allocs)
}

// TestConcurrentAdmitsExactly: many goroutines on one key at one instant
// admit exactly max_burst+1.
func TestConcurrentAdmitsExactly(t *testing.T) {
	l, _ := gcra.NewLimit(99, 1, 60)
	tbl := New(16, nil)
	now := int64(1893456000000000000)
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted := 0
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 0
			for i := 0; i < 50; i++ {
				r, err := tbl.Throttle([]byte("hot"), now, l, 1)
				if err == nil && !r.Limited {
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

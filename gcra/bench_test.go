package gcra

import (
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func BenchmarkDecide(b *testing.B) {
	b.ReportAllocs()
	l, _ := NewLimit(15, 30, 60)
	now := int64(1893456000000000000)
	tat := int64(0)
	for i := 0; i < b.N; i++ {
		tat, _, _ = Decide(tat, now+int64(i)*2e9, l, 1)
	}
}

func benchKeys(n int) [][]byte {
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = []byte("user:" + strconv.Itoa(i))
	}
	return keys
}

// BenchmarkTableThrottle: existing keys, one goroutine.
func BenchmarkTableThrottle(b *testing.B) {
	b.ReportAllocs()
	l, _ := NewLimit(15, 30, 60)
	tbl := NewTable(64, nil)
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
	l, _ := NewLimit(15, 30, 60)
	tbl := NewTable(64, nil)
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

// BenchmarkMapBaseline is the peer for BenchmarkTableThrottle: a plain Go map
// behind one mutex doing the same Decide calls.
func BenchmarkMapBaseline(b *testing.B) {
	b.ReportAllocs()
	l, _ := NewLimit(15, 30, 60)
	var mu sync.Mutex
	m := map[string]int64{}
	keys := benchKeys(100_000)
	now := int64(1893456000000000000)
	for _, k := range keys {
		m[string(k)] = now
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := keys[i%len(keys)]
		mu.Lock()
		tat, _, _ := Decide(m[string(k)], now+int64(i), l, 1)
		m[string(k)] = tat
		mu.Unlock()
	}
}

func TestThrottleExistingKeyAllocatesNothing(t *testing.T) {
	l, _ := NewLimit(15, 30, 60)
	tbl := NewTable(8, nil)
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
	l, _ := NewLimit(99, 1, 60)
	tbl := NewTable(16, nil)
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

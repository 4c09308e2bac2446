package gcra

import (
	"strconv"
	"sync"
	"testing"
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

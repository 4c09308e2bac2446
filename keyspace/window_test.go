package keyspace

import (
	"sync"
	"testing"

	"github.com/sluicehq/sluice/gcra"
	"github.com/sluicehq/sluice/window"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func windowLimit(t testing.TB, count, period int64) window.Limit {
	t.Helper()
	l, err := window.NewLimit(count, period)
	require.NoError(t, err)
	return l
}

// TestFixedWindowDoubleBurst shows the fixed window's known weakness: a
// full window's worth just before a boundary and another just after pass
// within a fraction of a second. The sliding window refuses the second.
func TestFixedWindowDoubleBurst(t *testing.T) {
	l := windowLimit(t, 10, 60)
	for _, c := range []struct {
		algo     window.Algorithm
		admitted int
	}{{window.Fixed, 20}, {window.Sliding, 10}} {
		s := New(4, nil)
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

func TestWindowSweep(t *testing.T) {
	s := New(4, nil)
	l := windowLimit(t, 5, 10)
	for i := 0; i < 100; i++ {
		s.Take(window.Sliding, []byte{byte(i)}, epoch, l, 1)
		s.Take(window.Fixed, []byte{'f', byte(i)}, epoch, l, 1)
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
		s.Take(window.Fixed, []byte{byte(i), byte(i >> 8)}, epoch+int64(i)*10*sec, l, 1)
	}
	assert.Less(t, s.Len(), 100, "writes must reclaim ended windows")
	// A peek on a fresh key stores nothing.
	s.Sweep(epoch+1e6*sec, 1<<30)
	s.Take(window.Sliding, []byte("peek"), epoch, l, 0)
	assert.Zero(t, s.Len())
}

func TestWindowTakeMulti(t *testing.T) {
	s := New(4, nil)
	perSec := windowLimit(t, 2, 1)
	perMin := windowLimit(t, 3, 60)
	checks := []WindowCheck{{Key: []byte("s"), Limit: perSec}, {Key: []byte("m"), Limit: perMin}}
	res := make([]gcra.Result, 2)
	assert.False(t, s.TakeMulti(window.Fixed, checks, epoch, 1, res))
	assert.False(t, s.TakeMulti(window.Fixed, checks, epoch, 1, res))
	assert.True(t, s.TakeMulti(window.Fixed, checks, epoch, 1, res))
	assert.Equal(t, []int64{1, 2, 0, 1, 1}, reply(res[0]))
	assert.Equal(t, []int64{0, 3, 1, -1, 60}, reply(res[1]), "not charged: one left")
	assert.False(t, s.TakeMulti(window.Fixed, checks, epoch+sec, 1, res))
	assert.True(t, s.TakeMulti(window.Fixed, checks, epoch+sec, 1, res))
	assert.Equal(t, []int64{0, 2, 1, -1, 1}, reply(res[0]), "not charged")
	assert.Equal(t, []int64{1, 3, 0, 59, 59}, reply(res[1]))
}

func TestWindowConcurrent(t *testing.T) {
	s := New(8, nil)
	l := windowLimit(t, 100, 60)
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
				checks := []WindowCheck{{Key: []byte("hot"), Limit: l}, {Key: []byte{byte(g)}, Limit: l}}
				if g%2 == 0 {
					checks[0], checks[1] = checks[1], checks[0]
				}
				if !s.TakeMulti(window.Sliding, checks, epoch, 1, res) {
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

func BenchmarkWindowTake(b *testing.B) {
	b.ReportAllocs()
	s := New(64, nil)
	l, _ := window.NewLimit(1000, 60)
	key := []byte("user:1")
	for i := 0; i < b.N; i++ {
		s.Take(window.Sliding, key, epoch+int64(i)*1e6, l, 1)
	}
}

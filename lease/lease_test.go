package lease

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const epoch = int64(1893456000000000000)
const ms = int64(1e6)

func TestAcquireReleaseRenew(t *testing.T) {
	s := NewStore(4)
	k := []byte("db")
	now := epoch
	r1, err := s.Acquire(k, now, 2, 1000)
	require.NoError(t, err)
	assert.Equal(t, Result{Acquired: true, ID: r1.ID, InFlight: 1, Max: 2, FreeAfter: 0}, r1)
	now += 100 * ms
	r2, err := s.Acquire(k, now, 2, 1000)
	require.NoError(t, err)
	assert.True(t, r2.Acquired)
	assert.NotEqual(t, r1.ID, r2.ID)
	assert.Equal(t, int64(2), r2.InFlight)
	assert.Equal(t, 900*ms, r2.FreeAfter, "full: the first lease frees a slot")

	r3, err := s.Acquire(k, now, 2, 1000)
	require.NoError(t, err)
	assert.Equal(t, Result{Acquired: false, ID: -1, InFlight: 2, Max: 2, FreeAfter: 900 * ms}, r3)

	// Renewing the first lease pushes its expiry: now the second frees first.
	renewed, n, err := s.Renew(k, r1.ID, now, 5000)
	require.NoError(t, err)
	assert.True(t, renewed)
	assert.Equal(t, int64(2), n)
	r3, _ = s.Acquire(k, now, 2, 1000)
	assert.Equal(t, 1000*ms, r3.FreeAfter)

	// The second lease expires at its TTL without a release.
	now += 1000 * ms
	assert.Equal(t, int64(1), s.InFlight(k, now))
	r3, _ = s.Acquire(k, now, 2, 1000)
	assert.True(t, r3.Acquired)
	renewed, _, _ = s.Renew(k, r2.ID, now, 1000)
	assert.False(t, renewed, "an expired lease cannot be renewed")

	released, n := s.Release(k, r1.ID, now)
	assert.True(t, released)
	assert.Equal(t, int64(1), n)
	released, n = s.Release(k, r1.ID, now)
	assert.False(t, released, "released twice")
	assert.Equal(t, int64(1), n)
	released, n = s.Release(k, r3.ID, now)
	assert.True(t, released)
	assert.Zero(t, n)
	assert.Zero(t, s.Len(), "a key without leases is dropped")
}

func TestArguments(t *testing.T) {
	s := NewStore(1)
	for _, c := range []struct {
		max, ttl int64
		err      error
	}{{0, 1, ErrMax}, {-1, 1, ErrMax}, {1, 0, ErrTTL}, {1, -1, ErrTTL}, {1, MaxTTL + 1, ErrTTL}} {
		_, err := s.Acquire([]byte("k"), epoch, c.max, c.ttl)
		assert.ErrorIs(t, err, c.err)
	}
	r, err := s.Acquire([]byte("k"), epoch, 1, MaxTTL)
	require.NoError(t, err)
	assert.True(t, r.Acquired)
	_, _, err = s.Renew([]byte("k"), r.ID, epoch, 0)
	assert.ErrorIs(t, err, ErrTTL)
}

func TestSweep(t *testing.T) {
	s := NewStore(4)
	for i := 0; i < 100; i++ {
		_, err := s.Acquire([]byte{byte(i)}, epoch, 3, int64(1+i%2)*1000)
		require.NoError(t, err)
	}
	assert.Equal(t, 100, s.Len())
	assert.Zero(t, s.Sweep(epoch+999*ms, 1<<30))
	assert.Equal(t, 50, s.Sweep(epoch+1000*ms, 1<<30))
	assert.Equal(t, 50, s.Sweep(epoch+2000*ms, 1<<30))
	assert.Zero(t, s.Len())
	// Writes reclaim abandoned keys as well.
	for i := 0; i < 1000; i++ {
		_, _ = s.Acquire([]byte{byte(i), byte(i >> 8)}, epoch+int64(i)*10*ms, 1, 5)
	}
	assert.Less(t, s.Len(), 100)
}

// TestConcurrentBound: goroutines acquiring, holding and releasing never
// hold more than max leases at once, and every lease is returned.
func TestConcurrentBound(t *testing.T) {
	s := NewStore(8)
	const max = 5
	var held, peak atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				r, err := s.Acquire([]byte("pool"), epoch, max, 60_000)
				if err != nil || !r.Acquired {
					continue
				}
				h := held.Add(1)
				for p := peak.Load(); h > p && !peak.CompareAndSwap(p, h); p = peak.Load() {
				}
				held.Add(-1)
				if ok, _ := s.Release([]byte("pool"), r.ID, epoch); !ok {
					t.Errorf("lease %d lost", r.ID)
				}
			}
		}()
	}
	wg.Wait()
	assert.LessOrEqual(t, peak.Load(), int64(max))
	assert.Zero(t, s.InFlight([]byte("pool"), epoch))
}

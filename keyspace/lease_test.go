package keyspace

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sluicehq/sluice/lease"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLeaseAcquireReleaseRenew(t *testing.T) {
	s := New(4, nil)
	k := []byte("db")
	now := epoch
	r1, err := s.Acquire(k, now, 2, 1000*ms)
	require.NoError(t, err)
	assert.Equal(t, lease.Result{Acquired: true, ID: r1.ID, InFlight: 1, Max: 2, FreeAfter: 0}, r1)
	now += 100 * ms
	r2, err := s.Acquire(k, now, 2, 1000*ms)
	require.NoError(t, err)
	assert.True(t, r2.Acquired)
	assert.NotEqual(t, r1.ID, r2.ID)
	assert.Equal(t, int64(2), r2.InFlight)
	assert.Equal(t, 900*ms, r2.FreeAfter, "full: the first lease frees a slot")

	r3, err := s.Acquire(k, now, 2, 1000*ms)
	require.NoError(t, err)
	assert.Equal(t, lease.Result{Acquired: false, ID: -1, InFlight: 2, Max: 2, FreeAfter: 900 * ms}, r3)

	// Renewing the first lease pushes its expiry: now the second frees first.
	renewed, n := s.Renew(k, r1.ID, now, 5000*ms)
	assert.True(t, renewed)
	assert.Equal(t, int64(2), n)
	r3, _ = s.Acquire(k, now, 2, 1000*ms)
	assert.Equal(t, 1000*ms, r3.FreeAfter)

	// The second lease expires at its TTL without a release.
	now += 1000 * ms
	assert.Equal(t, int64(1), s.InFlight(k, now))
	r3, _ = s.Acquire(k, now, 2, 1000*ms)
	assert.True(t, r3.Acquired)
	renewed, _ = s.Renew(k, r2.ID, now, 1000*ms)
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

func TestLeaseMax(t *testing.T) {
	s := New(1, nil)
	for _, max := range []int64{0, -1} {
		_, err := s.Acquire([]byte("k"), epoch, max, sec)
		assert.ErrorIs(t, err, lease.ErrMax)
	}
}

func TestLeaseSweep(t *testing.T) {
	s := New(4, nil)
	for i := 0; i < 100; i++ {
		_, err := s.Acquire([]byte{byte(i)}, epoch, 3, int64(1+i%2)*1000*ms)
		require.NoError(t, err)
	}
	assert.Equal(t, 100, s.Len())
	assert.Zero(t, s.Sweep(epoch+999*ms, 1<<30))
	assert.Equal(t, 50, s.Sweep(epoch+1000*ms, 1<<30))
	assert.Equal(t, 50, s.Sweep(epoch+2000*ms, 1<<30))
	assert.Zero(t, s.Len())
	// Writes reclaim abandoned keys as well.
	for i := 0; i < 1000; i++ {
		_, _ = s.Acquire([]byte{byte(i), byte(i >> 8)}, epoch+int64(i)*10*ms, 1, 5*ms)
	}
	assert.Less(t, s.Len(), 100)
}

// TestLeaseConcurrentBound: goroutines acquiring, holding and releasing never
// hold more than max leases at once, and every lease is returned.
func TestLeaseConcurrentBound(t *testing.T) {
	s := New(8, nil)
	const max = 5
	var held, peak atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				r, err := s.Acquire([]byte("pool"), epoch, max, 60_000*ms)
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

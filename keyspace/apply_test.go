package keyspace

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/sluicehq/sluice/gcra"
	"github.com/sluicehq/sluice/window"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// randomStream drives ks through n random operations of every kind and
// returns the instant it ended at.
func randomStream(t *testing.T, ks *Keyspace, rng *rand.Rand, n int) int64 {
	t.Helper()
	keys := make([][]byte, 100)
	for i := range keys {
		keys[i] = []byte(fmt.Sprintf("key:%d", i))
	}
	now := epoch
	gl, _ := gcra.NewLimit(3, 2, 10)
	wl := windowLimit(t, 3, 10)
	var ids []int64
	for step := 0; step < n; step++ {
		k := keys[rng.IntN(len(keys))]
		switch op := rng.IntN(100); {
		case op < 45:
			_, err := ks.Throttle(k, now, gl, rng.Int64N(4)-1)
			require.NoError(t, err)
		case op < 65:
			ks.Take(window.Algorithm(rng.IntN(2)), k, now, wl, rng.Int64N(3))
		case op < 75:
			r, err := ks.Acquire(k, now, 3, (1+rng.Int64N(20))*sec)
			require.NoError(t, err)
			if r.Acquired {
				ids = append(ids, r.ID)
			}
		case op < 80 && len(ids) > 0:
			ks.Release(k, ids[rng.IntN(len(ids))], now)
		case op < 85:
			ks.Delete(k, now)
		case op < 90:
			ks.Sweep(now, 16)
		case op < 91 && step%40 == 0:
			ks.Flush()
		default:
			now += rng.Int64N(2 * sec)
		}
	}
	return now
}

// TestApplyJournalsWhatItChanged: a replica applying a primary's stream
// with Apply ends with the primary's state, and its own journal receives a
// stream that rebuilds that state again (its disk), with Created worked
// out from the replica's own state.
func TestApplyJournalsWhatItChanged(t *testing.T) {
	primaryLog := &stream{}
	primary := New(4, primaryLog)
	randomStream(t, primary, rand.New(rand.NewPCG(3, 5)), 10000)
	require.NotEmpty(t, primaryLog.changes)

	replicaLog := &stream{}
	replica := New(2, replicaLog)
	for _, c := range primaryLog.changes {
		c.Created = false // Apply must not trust it
		require.NoError(t, replica.Apply(c, epoch))
	}
	assert.Equal(t, state(primary), state(replica))

	held := map[string]bool{}
	for i, c := range replicaLog.changes {
		id := fmt.Sprintf("%v/%s", c.Kind, c.Key)
		switch c.Op {
		case Flush:
			clear(held)
		case Set:
			require.Equal(t, !held[id], c.Created, "change %d: %s", i, id)
			held[id] = true
		case Delete:
			require.True(t, held[id], "change %d deletes %s, which the replica never held", i, id)
			delete(held, id)
		}
	}
	disk := New(1, nil)
	for _, c := range replicaLog.changes {
		require.NoError(t, disk.Restore(c, epoch))
	}
	assert.Equal(t, state(replica), state(disk))
}

// TestApplyExpiredSet: a Set already expired when applied is journalled as
// the Delete it became, or not at all when the key held nothing.
func TestApplyExpiredSet(t *testing.T) {
	j := &recorder{}
	ks := New(1, j)
	k := []byte("k")
	require.NoError(t, ks.Apply(Change{Op: Set, Kind: GCRA, Key: k, Expires: epoch + sec}, epoch))
	require.NoError(t, ks.Apply(Change{Op: Set, Kind: GCRA, Key: k, Expires: epoch + sec}, epoch+2*sec))
	require.NoError(t, ks.Apply(Change{Op: Set, Kind: GCRA, Key: k, Expires: epoch + sec}, epoch+2*sec))
	require.NoError(t, ks.Apply(Change{Op: Delete, Kind: GCRA, Key: k}, epoch))
	require.NoError(t, ks.Apply(Change{Op: Flush}, epoch))
	assert.Equal(t, []string{"set gcra k new", "delete gcra k", "flush"}, j.changes)
	assert.Zero(t, ks.Len())
}

// TestTee: every journal of a Tee receives the same changes in the same
// order; nil journals are dropped.
func TestTee(t *testing.T) {
	assert.Nil(t, Tee(nil, nil))
	one := &recorder{}
	assert.Same(t, one, Tee(nil, one))
	a, b := &recorder{}, &recorder{}
	ks := New(2, Tee(a, nil, b))
	randomStream(t, ks, rand.New(rand.NewPCG(1, 2)), 500)
	require.NotEmpty(t, a.changes)
	assert.Equal(t, a.changes, b.changes)
}

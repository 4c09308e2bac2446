package keyspace

import (
	"bytes"
	"strconv"
	"testing"

	"github.com/sluicehq/sluice/gcra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mappedBySize is what the TAT tables must have mapped off the heap, by the
// rule the tables follow: a slot array or arena of at least 16 KiB is
// mapped, a smaller one lives on the heap.
func mappedBySize(ks *Keyspace) int64 {
	n := int64(0)
	for i := range ks.shards {
		s := &ks.shards[i]
		s.mu.Lock()
		if b := s.tats.Slots() * 16; b >= 16<<10 {
			n += int64(b)
		}
		if b := s.tats.ArenaBytes(); b >= 16<<10 {
			n += int64(b)
		}
		s.mu.Unlock()
	}
	return n
}

// TestOffHeapBytesExact: the keyspace's off-heap figure (what INFO's
// used_memory and --maxmemory add to the Go heap) follows every growth,
// shrink and flush of the tables exactly. Before it existed, a client
// filling the tables with 1 MiB keys took 3 GB of RSS while used_memory
// said 9.5 MB.
func TestOffHeapBytesExact(t *testing.T) {
	ks := New(4, nil)
	assert.Zero(t, ks.OffHeapBytes())
	l, err := gcra.NewLimit(0, 1, 60)
	require.NoError(t, err)
	big := bytes.Repeat([]byte("k"), 4<<10)
	var keys [][]byte
	for i := range 400 {
		k := append(strconv.AppendInt(nil, int64(i), 10), big...)
		keys = append(keys, k)
		_, err := ks.Throttle(k, epoch, l, 1)
		require.NoError(t, err)
		if i%50 == 49 {
			require.Equal(t, mappedBySize(ks), ks.OffHeapBytes(), "after %d keys", i+1)
		}
	}
	assert.GreaterOrEqual(t, ks.OffHeapBytes(), int64(400*len(big)), "the 1.6 MB of key names are counted")
	assert.Equal(t, ks.OffHeapBytes(), ks.Stats().OffHeapBytes)

	for _, k := range keys[:300] { // the arenas compact, the tables shrink
		ks.Delete(k, epoch)
	}
	require.Equal(t, mappedBySize(ks), ks.OffHeapBytes())
	assert.Equal(t, 100, ks.Len())

	ks.Sweep(epoch+120*sec, 1<<30) // the sweep removes the rest
	require.Equal(t, mappedBySize(ks), ks.OffHeapBytes())
	assert.Zero(t, ks.Len())

	for _, k := range keys {
		_, _ = ks.Throttle(k, epoch, l, 1)
	}
	require.Positive(t, ks.OffHeapBytes())
	ks.Flush()
	assert.Zero(t, ks.OffHeapBytes(), "a flush unmaps everything")
}

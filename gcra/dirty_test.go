package gcra

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// dirty collects what Table.Dirty reports.
func dirty(tb *Table) map[string]int64 {
	got := map[string]int64{}
	tb.Dirty(func(key []byte, tat int64) { got[string(key)] = tat })
	return got
}

// TestDirtyReportsEachChangedKeyOnce: THROTTLE and THROTTLE.MULTI changes
// mark keys, Set (recovery) and refusals do not, a removed key is not
// reported, the mark survives the shard growing, and Dirty clears it.
func TestDirtyReportsEachChangedKeyOnce(t *testing.T) {
	const now = int64(1e18)
	tb := NewTable(1, nil)
	l, err := NewLimit(0, 1, 60) // one request a minute
	require.NoError(t, err)
	require.NoError(t, tb.Set([]byte("loaded"), now+5e9, now))
	_, err = tb.Throttle([]byte("a"), now, l, 1)
	require.NoError(t, err)
	res := make([]Result, 2)
	_, err = tb.ThrottleMulti([]Check{{Key: []byte("m1"), Limit: l}, {Key: []byte("m2"), Limit: l}}, now, 1, res)
	require.NoError(t, err)
	tatA, _ := tb.Get([]byte("a"), now)
	got := dirty(tb)
	assert.Equal(t, map[string]int64{"a": tatA, "m1": tatA, "m2": tatA}, got)
	assert.Empty(t, dirty(tb), "reported once")

	r, err := tb.Throttle([]byte("a"), now, l, 1)
	require.NoError(t, err)
	require.True(t, r.Limited)
	assert.Empty(t, dirty(tb), "a refusal changes nothing")

	roomy, err := NewLimit(10, 1, 60)
	require.NoError(t, err)
	r, err = tb.Throttle([]byte("loaded"), now, roomy, 1)
	require.NoError(t, err)
	require.False(t, r.Limited)
	_, err = tb.Throttle([]byte("gone"), now, l, 1)
	require.NoError(t, err)
	assert.True(t, tb.Delete([]byte("gone"), now))
	for i := range 100 { // grows the shard many times over
		require.NoError(t, tb.Set(fmt.Appendf(nil, "filler%d", i), now+1e9, now))
	}
	tatLoaded, _ := tb.Get([]byte("loaded"), now)
	assert.Equal(t, map[string]int64{"loaded": tatLoaded}, dirty(tb))
}

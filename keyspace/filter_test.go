package keyspace

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	"github.com/sluicehq/sluice/gcra"
	"github.com/sluicehq/sluice/window"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestEachKeyAndDeleteIf: every name is visited once whatever kinds it
// holds, and DeleteIf removes all the kinds of the chosen names, journalled,
// and nothing else.
func TestEachKeyAndDeleteIf(t *testing.T) {
	j := &recorder{}
	ks := New(4, j)
	gl, err := gcra.NewLimit(5, 1, 60)
	require.NoError(t, err)
	wl := windowLimit(t, 1, 60)
	var want []string
	for i := range 40 {
		k := []byte(fmt.Sprintf("k%02d", i))
		want = append(want, string(k))
		switch i % 4 {
		case 0:
			_, err = ks.Throttle(k, epoch, gl, 1)
		case 1:
			ks.Take(window.Fixed, k, epoch, wl, 1)
		case 2:
			_, err = ks.Acquire(k, epoch, 2, 60*sec)
		case 3: // every kind at once
			_, err = ks.Throttle(k, epoch, gl, 1)
			require.NoError(t, err)
			ks.Take(window.Sliding, k, epoch, wl, 1)
			_, err = ks.Acquire(k, epoch, 2, 60*sec)
		}
		require.NoError(t, err)
	}
	var got []string
	ks.EachKey(func(key []byte) { got = append(got, string(key)) })
	slices.Sort(got)
	require.Equal(t, want, got, "each name once")

	j.changes = nil
	dropOdd := func(key []byte) bool { return key[len(key)-1]%2 == 1 }
	n := 0
	for i := range ks.Shards() {
		n += ks.DeleteIf(i, dropOdd, epoch)
	}
	assert.Equal(t, 20, n)
	assert.Equal(t, 20, ks.Len())
	ks.EachKey(func(key []byte) { assert.False(t, dropOdd(key), "%s survived", key) })
	for _, c := range j.changes {
		assert.True(t, dropOdd([]byte(c)), "only dropped keys journalled: %s", c)
		assert.True(t, bytes.HasPrefix([]byte(c), []byte("delete ")), c)
	}
	assert.Contains(t, j.changes, "delete lease k03", "every kind of a dropped key goes")
	assert.Contains(t, j.changes, "delete window k03")
	assert.Contains(t, j.changes, "delete gcra k03")
}

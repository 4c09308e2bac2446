package persistence

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestValuesNamespaces: other state (windows, leases) round-trips through
// its own namespace, ordered with TAT changes, and never mixes with TATs.
func TestValuesNamespaces(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Always)
	s.Record([]byte("k"), epoch+1e9) // a TAT beside them
	s.RecordPut("w/", []byte("a"), []byte("one"))
	s.RecordPut("w/", []byte("b"), []byte("two"))
	s.RecordPut("l/", []byte("a"), []byte("lease"))
	s.RecordPut("w/", []byte("a"), []byte("uno")) // overwrite
	s.RecordDrop("w/", []byte("b"))
	require.NoError(t, s.Wait())
	require.NoError(t, s.Close())

	s = open(t, dir, Always)
	load := func(ns string, keep bool) map[string]string {
		got := map[string]string{}
		_, err := s.LoadValues(ns, func(k, v []byte) bool { got[string(k)] = string(v); return keep })
		require.NoError(t, err)
		return got
	}
	assert.Equal(t, map[string]string{"a": "uno"}, load("w/", true))
	assert.Equal(t, map[string]string{"a": "lease"}, load("l/", false), "not kept: deleted from disk")
	assert.Empty(t, load("l/", true))
	s.RecordFlushPrefix("w/")
	require.NoError(t, s.Wait())
	require.NoError(t, s.Close())
	s = open(t, dir, Always)
	assert.Empty(t, load("w/", true))
	require.NoError(t, s.Close())
	got, _ := reload(t, dir, epoch)
	assert.Equal(t, map[string]int64{"k": epoch + 1e9}, got, "the TAT namespace is untouched")
}

package persistence

import (
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble"
	"github.com/sluicehq/sluice/gcra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// keySpace lists what the key space (everything but the journal and the
// format stamp) holds on disk.
func keySpace(t *testing.T, s *Store) map[string]string {
	t.Helper()
	it, err := s.db.NewIter(nil)
	require.NoError(t, err)
	got := map[string]string{}
	for ok := it.First(); ok; ok = it.Next() {
		k := string(it.Key())
		if k == metaFormat || k[:2] == journalPrefix {
			continue
		}
		got[k] = string(it.Value())
	}
	require.NoError(t, it.Close())
	return got
}

// journalEntries counts the journal entries on disk.
func journalEntries(t *testing.T, s *Store) int {
	t.Helper()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: journalLower, UpperBound: journalUpper})
	require.NoError(t, err)
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		n++
	}
	require.NoError(t, it.Close())
	return n
}

// TestFoldKeepsTheLastChangeOfEachKey: a key changed many times is written
// once; a key created and removed within the journal leaves nothing, not
// even a deletion; a removed key that existed before is deleted; a flush
// removes what came before it and nothing after.
func TestFoldKeepsTheLastChangeOfEachKey(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Always)
	tb := gcra.NewTable(4, s)
	mustThrottle(t, tb, "old", epoch, 1)
	mustThrottle(t, tb, "doomed", epoch, 1)
	require.NoError(t, s.Close())

	s = open(t, dir, Always) // folds: "old" and "doomed" are in the key space
	assert.Equal(t, 2, s.Stats().Recovery.Replayed)
	assert.Len(t, keySpace(t, s), 2)
	tb = gcra.NewTable(4, s)
	_, err := s.Load(tb, epoch)
	require.NoError(t, err)
	for i := range 4 { // "hot" changes four times
		mustThrottle(t, tb, "hot", epoch+int64(i)*1e9, 1)
	}
	mustThrottle(t, tb, "brief", epoch, 1) // created...
	assert.True(t, tb.Delete([]byte("brief"), epoch))
	assert.True(t, tb.Delete([]byte("doomed"), epoch))
	s.RecordPut("w/", []byte("win"), []byte("1"))
	s.RecordPut("w/", []byte("win"), []byte("2"))
	require.NoError(t, s.Wait())
	require.NoError(t, s.Close())
	assert.EqualValues(t, 7, s.Stats().KeysWritten)
	assert.EqualValues(t, 2, s.Stats().KeysDeleted)

	s = open(t, dir, Always)
	f := s.lastFoldKeys
	assert.Equal(t, 9, s.Stats().Recovery.Replayed)
	assert.Equal(t, 4, f, "hot, brief, doomed and w/win folded")
	assert.Zero(t, journalEntries(t, s), "folded entries are deleted")
	space := keySpace(t, s)
	assert.Equal(t, map[string]string{
		"t/old": string(encodedTAT(mustTAT(t, tb, "old"))),
		"t/hot": string(encodedTAT(mustTAT(t, tb, "hot"))),
		"w/win": "2",
	}, space)

	// A flush between changes: only what follows it survives.
	s.Record([]byte("before"), epoch+1e12)
	s.RecordFlush()
	s.Record([]byte("after"), epoch+2e12)
	s.RecordCreate([]byte("fresh"), epoch+3e12)
	s.Record([]byte("fresh"), 0) // created after the flush and removed
	require.NoError(t, s.Wait())
	require.NoError(t, s.Close())
	s = open(t, dir, Always)
	assert.Equal(t, map[string]string{"t/after": string(encodedTAT(epoch + 2e12)), "w/win": "2"}, keySpace(t, s))
}

func mustTAT(t *testing.T, tb *gcra.Table, key string) int64 {
	t.Helper()
	tat, ok := tb.Get([]byte(key), epoch)
	require.True(t, ok, key)
	return tat
}

// TestFoldWhileRunning: with a small FoldBytes the folder folds as the
// journal grows, concurrently with the writer; nothing is lost and the
// journal stays short.
func TestFoldWhileRunning(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, Mode: EverySec, Logger: quiet(), FoldBytes: 4 << 10})
	require.NoError(t, err)
	tb := gcra.NewTable(8, s)
	const keys, rounds = 50, 200
	roomy := mustLimit(1e6, 1, 1) // never limited: every request changes its key
	for range rounds {
		for k := range keys {
			_, err := tb.Throttle(fmt.Appendf(nil, "key:%03d", k), epoch, roomy, 1)
			require.NoError(t, err)
		}
		require.NoError(t, s.Sync())
	}
	want := snapshot(tb, epoch)
	st := s.Stats()
	assert.Greater(t, st.Folds, uint64(10))
	assert.Less(t, st.FoldedKeys, st.Folded, "repeated keys are written once per fold")
	require.NoError(t, s.Close())
	got, rec := reload(t, dir, epoch)
	assert.Equal(t, want, got)
	assert.Less(t, rec.Replayed, keys*rounds/2, "most of the journal was folded before closing")
}

// TestLayoutVersion1IsUpgraded: a data directory written before the journal
// existed (layout "1", TATs in the key space) opens, keeps its keys and is
// stamped with the current layout.
func TestLayoutVersion1IsUpgraded(t *testing.T) {
	dir := t.TempDir()
	db, err := pebble.Open(dir, &pebble.Options{Logger: pebbleLogger{quiet()}})
	require.NoError(t, err)
	require.NoError(t, db.Set([]byte(metaFormat), []byte("1"), pebble.Sync))
	require.NoError(t, db.Set([]byte("t/k"), encodedTAT(epoch+5e9), pebble.Sync))
	require.NoError(t, db.Close())

	got, rec := reload(t, dir, epoch)
	assert.Equal(t, map[string]int64{"k": epoch + 5e9}, got)
	assert.Equal(t, 1, rec.Keys)
	s := open(t, dir, EverySec)
	v, closer, err := s.db.Get([]byte(metaFormat))
	require.NoError(t, err)
	assert.Equal(t, formatVersion, string(v))
	require.NoError(t, closer.Close())
}

package persistence

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"testing"

	"github.com/sluicehq/sluice/keyspace"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func dirSize(t testing.TB, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err == nil {
			n += info.Size()
		}
		return err
	})
	require.NoError(t, err)
	return n
}

// keyCount counts what Pebble holds besides the marks.
func keyCount(t testing.TB, s *Store) int {
	t.Helper()
	it, err := s.db.NewIter(nil)
	require.NoError(t, err)
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		if it.Key()[0] != 'm' {
			n++
		}
	}
	require.NoError(t, it.Close())
	return n
}

// TestDiskStaysFlatUnderChurn writes many short-lived keys in rounds; each
// round's keys expire and are swept in the next, so every key is stored by
// one fold and deleted by the next (the case that costs Pebble most),
// while as many keys again live and die within a round and cost it nothing.
// The test drives the folds itself, one a round, and checks what holds
// whatever the scheduling: after each fold the journal is empty, Pebble
// holds exactly the live keys and each fold wrote exactly the keys that
// crossed a fold. At the end, with every key expired and Pebble compacted,
// the directory holds a small fraction of all that was ever written: no
// file (segment, sstable, write-ahead log) outlives its use.
func TestDiskStaysFlatUnderChurn(t *testing.T) {
	dir := t.TempDir()
	const memtable = 1 << 20
	// A round journals far less than FoldBytes: only foldNow folds.
	s := openWith(t, Options{Dir: dir, Mode: No, MemTableSize: memtable, FoldBytes: DefaultFoldBytes})
	m := newModel(s)
	rounds, perRound := 64, 15000
	if raceEnabled {
		perRound = 4000
	}
	now := epoch
	foldedKeys := uint64(0)
	var sizes []int64
	for r := range rounds {
		for i := range perRound {
			n := uint32(r*perRound + i)
			key := fmt.Sprintf("churn:%08x:user%06d:some-suffix", n*2654435761, n)
			m.tat(key, now+sec)
			if i%4 == 0 {
				m.set(keyspace.Window, key, now+sec, "counters")
			}
			brief := "brief:" + key
			m.tat(brief, now+sec)
			m.del(keyspace.GCRA, brief)
		}
		now += 2 * sec
		require.NoError(t, s.foldNow())
		require.Empty(t, journalSegments(t, s), "round %d: the fold removed the journal", r)
		live := perRound + perRound/4
		require.Equal(t, live, keyCount(t, s), "round %d: Pebble holds the live keys", r)
		st := s.Stats()
		crossed := uint64(live) // stored now
		if r > 0 {
			crossed += uint64(live) // and last round's, deleted
		}
		require.Equal(t, crossed, st.FoldedKeys-foldedKeys, "round %d: keys the fold wrote", r)
		foldedKeys = st.FoldedKeys
		sizes = append(sizes, dirSize(t, dir))
		require.Equal(t, live, m.sweep(now))
	}
	require.NoError(t, s.foldNow())
	assert.Zero(t, keyCount(t, s))
	t.Logf("dir size after each round of %d keys written and expired: %v", perRound, sizes)

	// Everything ever stored in Pebble is ~rounds*perRound*1.25*110 bytes
	// (a set and a delete of a 40-byte key) = 132 MB (35 MB under the race
	// detector), and the journal saw twice that. Compacted, the directory
	// holds Pebble's write-ahead logs (a memtable or two), its manifest and
	// options, and no data.
	require.NoError(t, s.db.Compact([]byte("a"), []byte("z"), false))
	require.NoError(t, s.Close())
	size := dirSize(t, dir)
	t.Logf("dir size at the end, compacted: %d", size)
	assert.Less(t, size, int64(4*memtable+2<<20), "the directory kept what was deleted")
	got, _ := reload(t, dir, epoch)
	assert.Empty(t, got)
}

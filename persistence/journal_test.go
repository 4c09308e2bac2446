package persistence

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/record"
	"github.com/sluicehq/sluice/gcra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// keySpace lists what the key space (everything but the marks under "m/"
// and a version-2 journal) holds on disk.
func keySpace(t *testing.T, s *Store) map[string]string {
	t.Helper()
	it, err := s.db.NewIter(nil)
	require.NoError(t, err)
	got := map[string]string{}
	for ok := it.First(); ok; ok = it.Next() {
		k := string(it.Key())
		if k[:2] == "m/" || k[:2] == journalPrefix {
			continue
		}
		got[k] = string(it.Value())
	}
	require.NoError(t, it.Close())
	return got
}

// journalSegments lists the journal's segment files.
func journalSegments(t *testing.T, s *Store) []uint64 {
	t.Helper()
	nums, err := s.segments()
	require.NoError(t, err)
	return nums
}

// writeSegment writes chunks in the pending-log encoding as journal segment
// num, one record each, as the writer would.
func writeSegment(t testing.TB, s *Store, num uint64, chunks [][]byte) {
	t.Helper()
	f, err := s.fs.Create(s.fs.PathJoin(s.journal, segmentName(num)))
	require.NoError(t, err)
	w := record.NewWriter(f)
	for _, c := range chunks {
		_, err := w.WriteRecord(c)
		require.NoError(t, err)
	}
	require.NoError(t, w.Close())
	require.NoError(t, f.Sync())
	require.NoError(t, f.Close())
}

// readJournal decodes every journalled change on disk, in order.
func readJournal(t *testing.T, s *Store) []string {
	t.Helper()
	var got []string
	for _, n := range journalSegments(t, s) {
		require.NoError(t, s.readSegment(n, func(v []byte) error {
			return ops([][]byte{v}, func(op byte, key []byte, tat int64, _ []byte) error {
				got = append(got, fmt.Sprintf("%d %s %d", op, key, tat))
				return nil
			})
		}))
	}
	return got
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
	assert.Empty(t, journalSegments(t, s), "folded segments are removed")
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
// journal stays short. With the table attached (Load), folds take updated
// TATs from it; keys are also removed and created again meanwhile.
func TestFoldWhileRunning(t *testing.T) {
	for _, attached := range []bool{false, true} {
		t.Run(fmt.Sprintf("table=%v", attached), func(t *testing.T) {
			dir := t.TempDir()
			s, err := Open(Options{Dir: dir, Mode: EverySec, Logger: quiet(), FoldBytes: 64 << 10})
			require.NoError(t, err)
			tb := gcra.NewTable(8, s)
			if attached {
				_, err := s.Load(tb, epoch)
				require.NoError(t, err)
			}
			const keys, rounds = 50, 400
			roomy := mustLimit(1e6, 1, 1) // never limited: every request changes its key
			for r := range rounds {
				for k := range keys {
					_, err := tb.Throttle(fmt.Appendf(nil, "key:%03d", k), epoch, roomy, 1)
					require.NoError(t, err)
				}
				// A key removed (and some created again next round).
				tb.Delete(fmt.Appendf(nil, "key:%03d", r%keys), epoch)
				require.NoError(t, s.Sync())
			}
			// Then other keys only, until the segments holding the last
			// updates of the first ones have been folded.
			folds := s.Stats().Folds
			for r := 0; s.Stats().Folds < folds+3; r++ {
				require.Less(t, r, 100*rounds, "no fold")
				for k := range keys {
					_, err := tb.Throttle(fmt.Appendf(nil, "other:%03d", k), epoch, roomy, 1)
					require.NoError(t, err)
				}
				require.NoError(t, s.Sync())
			}
			want := snapshot(tb, epoch)
			st := s.Stats()
			assert.Greater(t, st.Folds, uint64(3))
			assert.Less(t, st.FoldedKeys, st.Folded, "repeated keys are written once per fold")
			require.NoError(t, s.Close())
			got, rec := reload(t, dir, epoch)
			assert.Equal(t, want, got)
			assert.Less(t, rec.Replayed, keys*rounds/2, "most of the journal was folded before closing")
			assert.Len(t, got, 2*keys-1, "the key removed last stays removed")
		})
	}
}

// TestLayoutVersion1IsUpgraded: a data directory written before the journal
// existed (layout "1", TATs in the key space) opens, keeps its keys and is
// stamped with the current layout.
func TestLayoutVersion1IsUpgraded(t *testing.T) {
	dir, db := oldLayout(t, formatV1)
	require.NoError(t, db.Set([]byte("t/k"), encodedTAT(epoch+5e9), pebble.Sync))
	require.NoError(t, db.Close())

	got, rec := reload(t, dir, epoch)
	assert.Equal(t, map[string]int64{"k": epoch + 5e9}, got)
	assert.Equal(t, 1, rec.Keys)
	assertStamped(t, open(t, dir, EverySec))
}

// oldLayout creates a bare Pebble directory stamped with layout version.
func oldLayout(t *testing.T, version string) (string, *pebble.DB) {
	t.Helper()
	dir := t.TempDir()
	db, err := pebble.Open(dir, &pebble.Options{Logger: pebbleLogger{quiet()}})
	require.NoError(t, err)
	require.NoError(t, db.Set([]byte(metaFormat), []byte(version), pebble.Sync))
	return dir, db
}

// assertStamped checks that s holds the current layout version.
func assertStamped(t *testing.T, s *Store) {
	t.Helper()
	v, closer, err := s.db.Get([]byte(metaFormat))
	require.NoError(t, err)
	assert.Equal(t, formatVersion, string(v))
	require.NoError(t, closer.Close())
}

// TestLayoutVersion2IsUpgraded: a data directory whose journal is inside
// Pebble (layout "2") opens with its journal folded into the key space and
// is stamped with the current layout.
func TestLayoutVersion2IsUpgraded(t *testing.T) {
	dir, db := oldLayout(t, formatV2)
	require.NoError(t, db.Set([]byte("t/old"), encodedTAT(epoch+5e9), pebble.Sync))
	var p pendingLog
	p.appendSet(opSet, []byte("old"), epoch+7e9)
	p.appendSet(opCreate, []byte("new"), epoch+9e9)
	for i, c := range p.take(nil) {
		key := binary.BigEndian.AppendUint64([]byte(journalPrefix), uint64(i+1))
		require.NoError(t, db.Set(key, c, pebble.Sync))
	}
	require.NoError(t, db.Close())

	got, rec := reload(t, dir, epoch)
	assert.Equal(t, map[string]int64{"old": epoch + 7e9, "new": epoch + 9e9}, got)
	assert.Equal(t, 2, rec.Replayed)
	s := open(t, dir, EverySec)
	assert.Equal(t, 0, s.Stats().Recovery.Replayed, "the old journal is gone")
	assertStamped(t, s)
}

// TestAFoldedSegmentIsNeverFoldedAgain: should a segment's file outlive its
// fold (its removal lost to a crash), the mark written with the fold keeps
// it from undoing the later changes of its keys.
func TestAFoldedSegmentIsNeverFoldedAgain(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Always)
	var old, later pendingLog
	old.appendSet(opSet, []byte("k"), epoch+1e9)
	later.appendSet(opSet, []byte("k"), epoch+2e9)
	writeSegment(t, s, 100, old.take(nil))
	_, err := s.foldSegments(101)
	require.NoError(t, err)
	writeSegment(t, s, 100, old.take(nil)) // back from the dead
	writeSegment(t, s, 101, later.take(nil))
	require.NoError(t, s.Close())

	got, rec := reload(t, dir, epoch)
	assert.Equal(t, map[string]int64{"k": epoch + 2e9}, got)
	assert.Equal(t, 1, rec.Replayed, "only the segment the mark does not cover")
	s = open(t, dir, Always)
	assert.Empty(t, journalSegments(t, s))
}

// TestAFoldNeverUndoesWhatAnEarlierFoldWrote: a fold with the table attached
// writes the state now of every key changed since the previous fold, which
// can be later than any record it folds. Folding those later records must
// then not put back a creation's older TAT, leave behind a key created and
// removed, or lose a key that a flush before it in the same records would
// otherwise remove with what an earlier fold wrote.
func TestAFoldNeverUndoesWhatAnEarlierFoldWrote(t *testing.T) {
	s := open(t, t.TempDir(), EverySec)
	tb := gcra.NewTable(4, s)
	_, err := s.Load(tb, epoch)
	require.NoError(t, err)
	roomy := mustLimit(1e6, 1, 1) // each request moves the TAT a second on
	throttle := func(key string, n int) {
		for range n {
			_, err := tb.Throttle([]byte(key), epoch, roomy, 1)
			require.NoError(t, err)
		}
	}
	none := func(func(v []byte) error) error { return nil }
	noMark := func(*pebble.Batch) error { return nil }
	foldEarlier := func() { // folds no records: writes what the table reports
		_, err := s.fold(none, noMark, tb)
		require.NoError(t, err)
	}
	foldJournal := func() { // folds the writer's segment so far
		require.NoError(t, s.Sync())
		num := s.seg.num
		_, err := s.fold(func(each func(v []byte) error) error { return s.readSegment(num, each) }, noMark, tb)
		require.NoError(t, err)
	}
	tat := func(n int64) string { return string(encodedTAT(epoch + n*1e9)) }

	throttle("grown", 3) // created at +1s, then +2s, +3s
	throttle("brief", 1)
	require.NoError(t, s.Sync())
	foldEarlier()
	tb.Delete([]byte("brief"), epoch)
	throttle("unseen", 1)
	tb.Delete([]byte("unseen"), epoch)
	foldJournal()
	assert.Equal(t, map[string]string{"t/grown": tat(3)}, keySpace(t, s),
		"grown keeps its last TAT, brief is deleted, unseen never written")

	tb.Flush()
	throttle("after", 2)
	require.NoError(t, s.Sync())
	foldEarlier()
	foldJournal()
	assert.Equal(t, map[string]string{"t/after": tat(2)}, keySpace(t, s))
}

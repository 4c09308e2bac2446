package persistence

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/record"
	"github.com/sluicehq/sluice/keyspace"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// keySpace lists what Pebble holds besides the marks under "m/".
func keySpace(t testing.TB, s *Store) map[string]string {
	t.Helper()
	it, err := s.db.NewIter(nil)
	require.NoError(t, err)
	got := map[string]string{}
	for ok := it.First(); ok; ok = it.Next() {
		if k := string(it.Key()); k[:2] != "m/" {
			got[k] = string(it.Value())
		}
	}
	require.NoError(t, it.Close())
	return got
}

// encodedExpiry is the stored value of a GCRA state.
func encodedExpiry(expires int64) []byte { return appendValue(nil, expires, nil) }

// stored is the stored value of a state, as keySpace shows it.
func stored(expires int64, value string) string {
	return string(appendValue(nil, expires, []byte(value)))
}

// journalSegments lists the journal's segment files.
func journalSegments(t testing.TB, s *Store) []uint64 {
	t.Helper()
	nums, err := s.segments()
	require.NoError(t, err)
	return nums
}

// encode is the pending log's encoding of changes, one chunk list.
func encode(changes ...keyspace.Change) [][]byte {
	var p pendingLog
	for _, c := range changes {
		p.append(c, kindCode(c.Kind))
	}
	return p.take(nil)
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

// describe is a change as readJournal lists it.
func describe(c keyspace.Change) string {
	if c.Op != keyspace.Set {
		return fmt.Sprintf("%s %s %q", c.Op, c.Kind, c.Key)
	}
	return fmt.Sprintf("set %s %q created=%v expires=%d value=%q", c.Kind, c.Key, c.Created, c.Expires, c.Value)
}

// readJournal decodes every journalled change on disk, in order.
func readJournal(t *testing.T, s *Store) []string {
	t.Helper()
	var got []string
	for _, n := range journalSegments(t, s) {
		sc, err := s.readSegment(n, func(rec []byte) error {
			return decode(rec, func(c keyspace.Change) error {
				if c.Op == keyspace.Flush {
					got = append(got, "flush")
				} else {
					got = append(got, describe(c))
				}
				return nil
			})
		})
		require.NoError(t, err)
		require.False(t, sc.damaged(), "segment %d: %+v", n, sc)
	}
	return got
}

// TestFoldKeepsTheLastStateOfEachKey: within one fold a key changed many
// times is written once; a key created and deleted leaves nothing, not
// even a deletion; a deleted key that a fold stored before is deleted.
func TestFoldKeepsTheLastStateOfEachKey(t *testing.T) {
	s := open(t, t.TempDir(), Always)
	m := newModel(s)
	m.tat("old", epoch+sec)
	m.tat("doomed", epoch+sec)
	m.set(keyspace.Window, "doomed", epoch+sec, "w")
	require.NoError(t, s.foldNow())
	assert.EqualValues(t, 3, s.Stats().FoldedKeys)

	for i := range 4 { // "hot" changes four times
		m.tat("hot", epoch+int64(i+1)*sec)
	}
	m.tat("brief", epoch+sec) // created...
	assert.True(t, m.del(keyspace.GCRA, "brief"))
	m.set(keyspace.Lease, "brief", epoch+sec, "l")
	assert.True(t, m.del(keyspace.Lease, "brief"))
	assert.True(t, m.del(keyspace.GCRA, "doomed")) // stored by the first fold
	m.set(keyspace.Window, "doomed", epoch+2*sec, "w2")
	m.set(keyspace.Window, "doomed", epoch+3*sec, "w3")
	require.NoError(t, s.foldNow())
	st := s.Stats()
	assert.EqualValues(t, 2, st.Folds)
	assert.EqualValues(t, 3+11, st.Folded)
	assert.EqualValues(t, 3+3, st.FoldedKeys, "hot, doomed's TAT and window: brief was born and died")
	assert.Empty(t, journalSegments(t, s), "folded segments are removed")
	assert.Equal(t, map[string]string{
		"g/old":    stored(epoch+sec, ""),
		"g/hot":    stored(epoch+4*sec, ""),
		"w/doomed": stored(epoch+3*sec, "w3"),
	}, keySpace(t, s))
}

// TestFoldAfterAFlush: a flush removes every kind of state stored before
// it and drops the changes before it in the same fold; what follows it
// survives, and a key created and deleted after it leaves nothing.
func TestFoldAfterAFlush(t *testing.T) {
	s := open(t, t.TempDir(), Always)
	m := newModel(s)
	m.tat("stored", epoch+sec)
	m.set(keyspace.Window, "stored", epoch+sec, "w")
	m.set(keyspace.Lease, "stored", epoch+sec, "l")
	require.NoError(t, s.foldNow())
	m.tat("before", epoch+sec)
	m.flush()
	m.tat("after", epoch+2*sec)
	m.set(keyspace.Lease, "after", epoch+2*sec, "l")
	m.tat("fresh", epoch+3*sec)
	m.del(keyspace.GCRA, "fresh")
	require.NoError(t, s.foldNow())
	assert.EqualValues(t, 3+2, s.Stats().FoldedKeys, "after's two states; nothing for before or fresh")
	assert.Equal(t, map[string]string{
		"g/after": stored(epoch+2*sec, ""),
		"l/after": stored(epoch+2*sec, "l"),
	}, keySpace(t, s))
}

// TestReplayDeletesWhatAnInterruptedFoldStored: a fold commits its batch in
// slices and marks its segments folded with the last; a crash in between
// leaves a key stored that the segments' next changes delete. Folding them
// again at Open, with more segments, the key's first change is still its
// creation: it must be deleted nonetheless.
func TestReplayDeletesWhatAnInterruptedFoldStored(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Always)
	created := keyspace.Change{Op: keyspace.Set, Kind: keyspace.GCRA, Created: true, Key: []byte("k"), Expires: epoch + sec}
	deleted := keyspace.Change{Op: keyspace.Delete, Kind: keyspace.GCRA, Key: []byte("k")}
	writeSegment(t, s, 100, encode(created))
	writeSegment(t, s, 101, encode(deleted))
	// What a fold of segment 100 alone left before its last slice.
	require.NoError(t, s.db.Set([]byte("g/k"), encodedExpiry(epoch+sec), pebble.Sync))
	require.NoError(t, s.Close())

	got, rec := reload(t, dir, epoch)
	assert.Empty(t, got, "k was deleted after the interrupted fold")
	assert.Equal(t, 2, rec.Replayed)
}

// TestCreatedOverExpiredState: a keyspace may call a key Created whose
// earlier state had expired without being swept. Should the key then be
// created and deleted within one fold, the expired state a fold stored
// stays in Pebble, and Load deletes it as expired.
func TestCreatedOverExpiredState(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Always)
	key := []byte("k")
	s.Record(keyspace.Change{Op: keyspace.Set, Kind: keyspace.Window, Created: true, Key: key, Expires: epoch + sec, Value: []byte("old")})
	require.NoError(t, s.foldNow())
	// At epoch+2s the old state has expired; the keyspace creates it anew.
	s.Record(keyspace.Change{Op: keyspace.Set, Kind: keyspace.Window, Created: true, Key: key, Expires: epoch + 3*sec, Value: []byte("new")})
	s.Record(keyspace.Change{Op: keyspace.Delete, Kind: keyspace.Window, Key: key})
	require.NoError(t, s.foldNow())
	assert.Equal(t, map[string]string{"w/k": stored(epoch+sec, "old")}, keySpace(t, s))
	require.NoError(t, s.Close())

	got, rec := reload(t, dir, epoch+2*sec)
	assert.Empty(t, got)
	assert.Equal(t, KindRecovery{Expired: 1}, rec.Window)
	_, rec = reload(t, dir, epoch)
	assert.Zero(t, rec.Total(), "deleted from disk")
}

// TestFoldWhileRunning: with a small FoldBytes the folder folds as the
// journal grows, concurrently with the writer, while keys are deleted and
// created again; nothing is lost and the journal stays short.
func TestFoldWhileRunning(t *testing.T) {
	dir := t.TempDir()
	s := openWith(t, Options{Dir: dir, Mode: EverySec, FoldBytes: 64 << 10})
	m := newModel(s)
	const keys, rounds = 50, 400
	for r := range rounds {
		for k := range keys {
			m.advance(fmt.Sprintf("key:%03d", k), epoch)
		}
		m.set(keyspace.Window, fmt.Sprintf("key:%03d", r%keys), epoch+sec, fmt.Sprint(r))
		// A key deleted (and created again next round).
		m.del(keyspace.GCRA, fmt.Sprintf("key:%03d", r%keys))
		require.NoError(t, s.Sync())
	}
	// Then other keys only, until the segments holding the last changes
	// of the first ones have been folded.
	folds := s.Stats().Folds
	for r := 0; s.Stats().Folds < folds+3; r++ {
		require.Less(t, r, 100*rounds, "no fold")
		for k := range keys {
			m.advance(fmt.Sprintf("other:%03d", k), epoch)
		}
		require.NoError(t, s.Sync())
	}
	want := m.snapshot()
	st := s.Stats()
	assert.Greater(t, st.Folds, uint64(3))
	assert.Less(t, st.FoldedKeys, st.Folded, "repeated keys are written once per fold")
	require.NoError(t, s.Close())
	got, rec := reload(t, dir, epoch)
	assert.Equal(t, want, got)
	assert.Less(t, rec.Replayed, keys*rounds/2, "most of the journal was folded before closing")
	assert.Len(t, gcraOnly(got), 2*keys-1, "the key deleted last stays deleted")
}

// TestAFoldedSegmentIsNeverFoldedAgain: should a segment's file outlive its
// fold (its removal lost to a crash), the mark written with the fold keeps
// it from undoing the later changes of its keys.
func TestAFoldedSegmentIsNeverFoldedAgain(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Always)
	set := func(tat int64) [][]byte {
		return encode(keyspace.Change{Op: keyspace.Set, Kind: keyspace.GCRA, Key: []byte("k"), Expires: tat})
	}
	writeSegment(t, s, 100, set(epoch+sec))
	_, err := s.foldSegments(101, false)
	require.NoError(t, err)
	writeSegment(t, s, 100, set(epoch+sec)) // back from the dead
	writeSegment(t, s, 101, set(epoch+2*sec))
	require.NoError(t, s.Close())

	got, rec := reload(t, dir, epoch)
	assert.Equal(t, map[string]int64{"k": epoch + 2*sec}, gcraOnly(got))
	assert.Equal(t, 1, rec.Replayed, "only the segment the mark does not cover")
	s = open(t, dir, Always)
	assert.Empty(t, journalSegments(t, s))
}

func TestOnDiskLayout(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Always)
	m := newModel(s)
	m.tat("api:alice", epoch+5)
	m.set(keyspace.Window, "api:alice", epoch+6, "counters")
	m.set(keyspace.Lease, "api:bob", epoch+7, "leases")
	m.del(keyspace.Lease, "api:bob")
	m.flush()
	m.tat("api:carol", epoch+8)
	require.NoError(t, s.Wait())
	// The changes are journalled first, in the pending log's encoding...
	assert.Equal(t, []string{
		fmt.Sprintf(`set gcra "api:alice" created=true expires=%d value=""`, epoch+5),
		fmt.Sprintf(`set window "api:alice" created=true expires=%d value="counters"`, epoch+6),
		fmt.Sprintf(`set lease "api:bob" created=true expires=%d value="leases"`, epoch+7),
		`delete lease "api:bob"`,
		"flush",
		fmt.Sprintf(`set gcra "api:carol" created=true expires=%d value=""`, epoch+8),
	}, readJournal(t, s))
	assert.Equal(t, []uint64{1}, journalSegments(t, s))
	m.flush()
	m.tat("api:alice", epoch+5)
	m.set(keyspace.Window, "api:alice", epoch+6, "counters")
	m.set(keyspace.Lease, "api:bob", epoch+7, "leases")
	// ... and folded into Pebble at the next Open.
	require.NoError(t, s.Close())
	s = open(t, dir, Always)
	assert.Equal(t, 10, s.Stats().Recovery.Replayed)
	assert.Empty(t, journalSegments(t, s), "folded segments are removed")
	be := func(n int64) string { return string(binary.BigEndian.AppendUint64(nil, uint64(n))) }
	assert.Equal(t, map[string]string{
		"g/api:alice": be(epoch + 5),
		"w/api:alice": be(epoch+6) + "counters",
		"l/api:bob":   be(epoch+7) + "leases",
	}, keySpace(t, s))
	v, closer, err := s.db.Get([]byte(metaFolded))
	require.NoError(t, err)
	assert.Equal(t, binary.BigEndian.AppendUint64(nil, 2), v, "segments below 2 are folded")
	require.NoError(t, closer.Close())
	v, closer, err = s.db.Get([]byte(metaFormat))
	require.NoError(t, err)
	assert.Equal(t, "5", string(v))
	require.NoError(t, closer.Close())
}

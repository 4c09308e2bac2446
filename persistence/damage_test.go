package persistence

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// logTo is a logger writing text into a buffer, and a way to read it.
func logTo() (*slog.Logger, func() string) {
	var buf bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&buf, &mu}, nil))
	return log, func() string {
		mu.Lock()
		defer mu.Unlock()
		return buf.String()
	}
}

// writeJournal leaves dir with one journal segment of many records (a
// Wait every few changes in Always mode) and returns the state
// acknowledged and the segment's path.
func writeJournal(t *testing.T, dir string, n int) (map[id]state, string) {
	t.Helper()
	s := open(t, dir, Always)
	m := newModel(s)
	for i := range n {
		m.tat(fmt.Sprintf("k%d", i), epoch+int64(i+1)*sec)
		if i%5 == 4 {
			require.NoError(t, s.Wait())
		}
	}
	require.NoError(t, s.Wait())
	nums := journalSegments(t, s)
	require.Len(t, nums, 1)
	require.NoError(t, s.Close())
	return m.snapshot(), filepath.Join(dir, journalDir, segmentName(nums[0]))
}

// lostStates counts the acknowledged states got lacks or holds otherwise.
func lostStates(acked, got map[id]state) int {
	lost := 0
	for k, v := range acked {
		if got[k] != v {
			lost++
		}
	}
	return lost
}

// TestCorruptSegmentRefusedThenSalvaged: a flipped byte in the middle of a
// journal segment. Before the fix Open folded the records before it,
// dropped the rest without a word and removed the segment. Now Open
// refuses, naming the file and the flag, and leaves the file as it was;
// with AcceptCorruption it folds every record but the damaged one, logs
// the loss at error level and keeps the file aside, out of later folds.
func TestCorruptSegmentRefusedThenSalvaged(t *testing.T) {
	dir := t.TempDir()
	acked, seg := writeJournal(t, dir, 400)
	b, err := os.ReadFile(seg)
	require.NoError(t, err)
	b[contentLen(b)/2] ^= 0x10
	require.NoError(t, os.WriteFile(seg, b, 0o600))

	_, err = Open(Options{Dir: dir, Logger: quiet()})
	require.ErrorIs(t, err, ErrDamaged)
	assert.ErrorContains(t, err, seg+" is damaged at offset")
	assert.ErrorContains(t, err, "--journal-accept-corruption yes")
	after, err := os.ReadFile(seg)
	require.NoError(t, err)
	assert.Equal(t, b, after, "a refused start leaves the file alone")

	log, logs := logTo()
	s, err := Open(Options{Dir: dir, Logger: log, AcceptCorruption: true})
	require.NoError(t, err)
	m := newModel(nil)
	_, err = s.Load(m, epoch)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	lost := lostStates(acked, m.snapshot())
	assert.Positive(t, lost)
	assert.LessOrEqual(t, lost, 5, "one record of about 5 changes")
	assert.Contains(t, logs(), "level=ERROR")
	assert.Contains(t, logs(), "file="+seg)
	assert.Contains(t, logs(), "records_lost=1")
	assert.Regexp(t, `records_after=[1-9]`, logs())
	kept, err := os.ReadFile(seg + corruptExt)
	require.NoError(t, err)
	assert.Equal(t, b, kept)
	assert.NoFileExists(t, seg)

	got, _ := reload(t, dir, epoch) // the kept file is not folded again
	assert.Equal(t, m.snapshot(), got)
}

// TestTornTailOfTheNewestSegment: the last record of the newest segment
// half written, zeros after it (a power cut during the write). Open folds
// the records before it with a warning and keeps the file aside (before the
// fix: silently, and the file was removed); with RefuseTruncated it
// refuses, naming the file and the flag.
func TestTornTailOfTheNewestSegment(t *testing.T) {
	dir := t.TempDir()
	acked, seg := writeJournal(t, dir, 100)
	b, err := os.ReadFile(seg)
	require.NoError(t, err)
	end := contentLen(b)
	copy(b[end-4:end], make([]byte, 4)) // the last record's end never reached the disk (its header did)
	require.NoError(t, os.WriteFile(seg, b, 0o600))

	_, err = Open(Options{Dir: dir, Logger: quiet(), RefuseTruncated: true})
	require.ErrorIs(t, err, ErrDamaged)
	assert.ErrorContains(t, err, seg+" ends in a torn record")
	assert.ErrorContains(t, err, "--journal-load-truncated")

	log, logs := logTo()
	s, err := Open(Options{Dir: dir, Logger: log})
	require.NoError(t, err)
	m := newModel(nil)
	_, err = s.Load(m, epoch)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	// The writer takes whatever was recorded when it wakes: the last record
	// holds the last group of 5 changes, or part of it on a busy machine.
	lost := lostStates(acked, m.snapshot())
	assert.True(t, lost >= 1 && lost <= 5, "the last record's changes only, 1 to 5: %d lost", lost)
	assert.Contains(t, logs(), "level=WARN")
	assert.Contains(t, logs(), "torn record")
	assert.Contains(t, logs(), "file="+seg)
	assert.FileExists(t, seg+corruptExt)
}

// TestDamagedPebbleLogRefused: Pebble's newest write-ahead log with a bad
// byte and records after it (as a directory written before folds were
// flushed holds: its log held folded changes). Before the fix Pebble
// replayed it up to the damage and dropped the rest without a word. Now
// Open refuses, naming the log and the flag; with AcceptCorruption it
// opens with what precedes the damage and keeps the log aside.
func TestDamagedPebbleLogRefused(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, EverySec)
	for i := range 50 {
		require.NoError(t, s.db.Set([]byte(fmt.Sprintf("g/k%02d", i)), encodedExpiry(epoch+sec), pebble.Sync))
	}
	require.NoError(t, s.Close())
	wal := fileMatching(t, dir, suffix(".log"), true)
	b, err := os.ReadFile(wal)
	require.NoError(t, err)
	b[contentLen(b)/2] ^= 0x10
	require.NoError(t, os.WriteFile(wal, b, 0o600))

	_, err = Open(Options{Dir: dir, Logger: quiet()})
	require.ErrorIs(t, err, ErrDamaged)
	assert.ErrorContains(t, err, "write-ahead log "+wal+" is damaged")
	assert.ErrorContains(t, err, "--journal-accept-corruption yes")

	log, logs := logTo()
	s2, err := Open(Options{Dir: dir, Logger: log, AcceptCorruption: true})
	require.NoError(t, err)
	m := newModel(nil)
	rec, err := s2.Load(m, epoch)
	require.NoError(t, err)
	require.NoError(t, s2.Close())
	assert.Positive(t, rec.GCRA.Restored)
	assert.Less(t, rec.GCRA.Restored, 50)
	assert.Contains(t, logs(), "level=ERROR")
	kept, err := os.ReadFile(wal + corruptExt)
	require.NoError(t, err)
	assert.Equal(t, b, kept)
}

// TestDamagedOlderPebbleLog: a write-ahead log other than the newest must
// end clean, and Pebble refuses one that does not; the store names it and
// the flag, and with AcceptCorruption moves it aside and opens.
func TestDamagedOlderPebbleLog(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, EverySec)
	for i := range 20 {
		require.NoError(t, s.db.Set([]byte(fmt.Sprintf("g/k%02d", i)), encodedExpiry(epoch+sec), pebble.Sync))
	}
	require.NoError(t, s.Close())
	wal := fileMatching(t, dir, suffix(".log"), true)
	num, ok := walNumber(filepath.Base(wal))
	require.True(t, ok)
	b, err := os.ReadFile(wal)
	require.NoError(t, err)
	// A newer log, empty to Pebble (its chunks name another log), makes
	// this one an older log.
	require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("%06d.log", num+1)), b, 0o600))
	b[contentLen(b)/2] ^= 0x10
	require.NoError(t, os.WriteFile(wal, b, 0o600))

	_, err = Open(Options{Dir: dir, Logger: quiet()})
	require.ErrorIs(t, err, ErrDamaged)
	assert.ErrorContains(t, err, "write-ahead log "+wal+" is damaged")
	assert.ErrorContains(t, err, "--journal-accept-corruption yes")

	got, _ := reloadWith(t, Options{Dir: dir, AcceptCorruption: true}, epoch)
	assert.Less(t, len(got), 20)
	assert.FileExists(t, wal+corruptExt)
}

// TestOpenTurnsAPebblePanicIntoAnError: without its marker.manifest file
// Pebble v1.1.5 panics in Open (having first written a new, empty MANIFEST
// over the directory). The store refuses such a directory before opening
// Pebble; openGuarded, its backstop, returns any panic of pebble.Open as an
// error.
func TestOpenTurnsAPebblePanicIntoAnError(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, EverySec)
	newModel(s).tat("k", epoch+sec)
	require.NoError(t, s.foldNow())
	require.NoError(t, s.Close())
	require.NoError(t, os.Remove(fileMatching(t, dir, prefix("marker.manifest."), true)))

	_, err := Open(Options{Dir: dir, Logger: quiet()})
	require.ErrorIs(t, err, ErrDamaged)
	assert.ErrorContains(t, err, "no marker.manifest.* file")

	// On a copy: before it panics, Pebble writes a new, empty MANIFEST and
	// its marker over the directory.
	_, err = openGuarded(copyDir(t, dir), &pebble.Options{Logger: pebbleLogger{quiet()}, FormatMajorVersion: pebble.FormatNewest})
	require.ErrorContains(t, err, "pebble panicked opening the directory")
}

// TestARunningFoldOfADamagedSegmentStopsTheStore: a segment damaged after
// the writer closed it and before its fold. The fold refuses it as Open
// would: the store fails (replies stop claiming durability) and the
// segment stays on disk for the next start to judge.
func TestARunningFoldOfADamagedSegmentStopsTheStore(t *testing.T) {
	dir := t.TempDir()
	hold, held := make(chan struct{}), make(chan struct{})
	s := openWith(t, Options{Dir: dir, Mode: Always, FoldBytes: 16 << 10, foldGate: func() {
		close(held)
		<-hold
	}})
	m := newModel(s)
	for i := 0; i < 100_000 && !s.folding.Load(); i++ {
		m.tat(fmt.Sprintf("k%d", i), epoch+sec)
		if i%10 == 9 {
			require.NoError(t, s.Wait())
		}
	}
	require.True(t, s.folding.Load(), "a full segment is being folded")
	<-held
	seg := filepath.Join(dir, journalDir, segmentName(1))
	b, err := os.ReadFile(seg)
	require.NoError(t, err)
	b[contentLen(b)/3] ^= 0x10
	require.NoError(t, os.WriteFile(seg, b, 0o600))
	close(hold)
	waitFor(func() bool { return s.Stats().Err != nil })
	assert.ErrorIs(t, s.Stats().Err, ErrDamaged)
	assert.ErrorContains(t, s.Wait(), "persistence failed")
	assert.FileExists(t, seg)
	require.Error(t, s.Close())

	_, err = Open(Options{Dir: dir, Logger: quiet()})
	assert.ErrorIs(t, err, ErrDamaged, "the next start judges it as damage too")
	assert.True(t, errors.Is(err, ErrDamaged) && strings.Contains(err.Error(), seg))
}

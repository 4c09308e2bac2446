package persistence

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/sluicehq/sluice/keyspace"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// waitFor polls cond until it holds: for what a goroutine of the store does
// in its own time. It has no deadline of its own (go test's -timeout is
// the bound), so a slow machine only makes it slower.
func waitFor(cond func() bool) {
	for !cond() {
		time.Sleep(100 * time.Microsecond)
	}
}

func TestRoundTripEveryMode(t *testing.T) {
	for _, mode := range []Mode{Always, EverySec, No} {
		t.Run(mode.String(), func(t *testing.T) {
			dir := t.TempDir()
			s := open(t, dir, mode)
			m := newModel(s)
			for i := range 50 {
				m.tat(fmt.Sprintf("k%d", i), epoch+int64(i+1)*sec)
			}
			m.tat("bin\x00\xff\r\n", epoch+sec)
			m.set(keyspace.Window, "k1", epoch+60*sec, "counters")
			m.set(keyspace.Lease, "k1", epoch+30*sec, "leases")
			m.set(keyspace.Lease, "gone", epoch+30*sec, "leases")
			assert.True(t, m.del(keyspace.GCRA, "k3"))
			assert.True(t, m.del(keyspace.Lease, "gone"))
			m.tat("k4", epoch+100*sec) // changed again
			require.NoError(t, s.Wait())
			want := m.snapshot()
			require.NoError(t, s.Close())
			st := s.Stats()
			assert.Equal(t, st.Recorded, st.Synced, "close syncs everything")
			assert.EqualValues(t, 55, st.KeysWritten)
			assert.EqualValues(t, 2, st.KeysDeleted)

			got, rec := reload(t, dir, epoch)
			assert.Equal(t, want, got)
			assert.Equal(t, KindRecovery{Restored: 50}, rec.GCRA)
			assert.Equal(t, KindRecovery{Restored: 1}, rec.Window)
			assert.Equal(t, KindRecovery{Restored: 1}, rec.Lease)
			assert.Equal(t, 52, rec.Total().Restored)
			assert.Equal(t, 57, rec.Replayed, "Open folded every journalled change")
		})
	}
}

func TestFlushIsOrderedWithOtherChanges(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Always)
	m := newModel(s)
	for i := range 20 {
		m.tat(fmt.Sprintf("old%d", i), epoch+sec)
		m.set(keyspace.Window, fmt.Sprintf("old%d", i), epoch+sec, "w")
		m.set(keyspace.Lease, fmt.Sprintf("old%d", i), epoch+sec, "l")
	}
	require.NoError(t, s.foldNow()) // some of what the flush removes is in Pebble
	m.tat("old0", epoch+2*sec)
	m.flush()
	m.tat("new", epoch+2*sec)
	m.set(keyspace.Window, "new", epoch+2*sec, "w")
	require.NoError(t, s.Wait())
	assert.EqualValues(t, 1, s.Stats().Flushes)
	require.NoError(t, s.Close())
	got, _ := reload(t, dir, epoch)
	assert.Equal(t, map[id]state{
		{keyspace.GCRA, "new"}:   {epoch + 2*sec, ""},
		{keyspace.Window, "new"}: {epoch + 2*sec, "w"},
	}, got)
}

func TestAlwaysWaitGroupCommits(t *testing.T) {
	s := open(t, t.TempDir(), Always)
	m := newModel(s)
	const workers, each = 16, 40
	var wg sync.WaitGroup
	var waited atomic.Int64
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				m.tat(fmt.Sprintf("w%d-%d", w, i), epoch+sec)
				before := s.recorded.Load()
				if !assert.NoError(t, s.Wait()) {
					return
				}
				assert.GreaterOrEqual(t, s.synced.Load(), before, "Wait returned before its change was synced")
				waited.Add(1)
			}
		})
	}
	wg.Wait()
	st := s.Stats()
	assert.EqualValues(t, workers*each, waited.Load())
	assert.EqualValues(t, workers*each, st.Synced)
	assert.Less(t, st.Fsyncs, uint64(workers*each), "concurrent waits share fsyncs")
	assert.False(t, st.LastSync.IsZero())
	t.Logf("%d admissions, %d batches, %d fsyncs", workers*each, st.Batches, st.Fsyncs)
}

// TestAlwaysGroupsGatherEveryWaiterOnOneThread: with one scheduler thread,
// where the sync holds the only P, a group commit still takes every caller
// that was ready to join it: groups of the workers' size, not of one or two
// (which a writer committing as soon as it is woken would give).
func TestAlwaysGroupsGatherEveryWaiterOnOneThread(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	s := open(t, t.TempDir(), Always)
	m := newModel(s)
	const workers, each = 16, 20
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				m.tat(fmt.Sprintf("w%d-%d", w, i), epoch+sec)
				assert.NoError(t, s.Wait())
			}
		})
	}
	wg.Wait()
	st := s.Stats()
	t.Logf("%d admissions, %d fsyncs", workers*each, st.Fsyncs)
	assert.LessOrEqual(t, st.Fsyncs, uint64(workers*each/(workers/2)), "groups average at least half the workers")
}

// TestEverySecSyncsWithoutBeingAsked: a change nobody waits for is synced
// by the writer's own timer.
func TestEverySecSyncsWithoutBeingAsked(t *testing.T) {
	s := openWith(t, Options{Dir: t.TempDir(), Mode: EverySec, SyncInterval: 20 * time.Millisecond})
	m := newModel(s)
	for round := range 3 {
		m.tat(fmt.Sprintf("k%d", round), epoch+sec)
		assert.NoError(t, s.Wait(), "everysec never waits")
		require.NoError(t, s.waitSynced(s.recorded.Load()), "only the timer syncs")
	}
	assert.GreaterOrEqual(t, s.Stats().Fsyncs, uint64(3))
}

func TestNoModeLeavesSyncingToTheOS(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, No)
	m := newModel(s)
	opened := s.Stats().Fsyncs // opening the store syncs its first files
	for i := range 100 {
		m.tat(fmt.Sprintf("k%d", i), epoch+int64(i+1))
	}
	require.NoError(t, s.Wait())
	waitFor(func() bool { return s.written.Load() == 100 })
	assert.Equal(t, opened, s.Stats().Fsyncs)
	require.NoError(t, s.Sync(), "an explicit Sync works in every mode")
	assert.Equal(t, opened+1, s.Stats().Fsyncs)
	require.NoError(t, s.Close())
	got, _ := reload(t, dir, epoch)
	assert.Len(t, got, 100)
}

func TestRecordBlocksOnlyWhileTheWriterIsBehind(t *testing.T) {
	dir := t.TempDir()
	s := openWith(t, Options{Dir: dir, Mode: EverySec, MaxPending: 64})
	m := newModel(s)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 500 {
				m.tat(fmt.Sprintf("w%d-%03d", w, i), epoch+1)
			}
		})
	}
	wg.Wait()
	require.NoError(t, s.Close())
	got, _ := reload(t, dir, epoch)
	assert.Len(t, got, 2000)
}

func TestAfterCloseChangesAreDropped(t *testing.T) {
	for _, mode := range []Mode{Always, EverySec, No} {
		t.Run(mode.String(), func(t *testing.T) {
			s := open(t, t.TempDir(), mode)
			m := newModel(s)
			m.tat("a", epoch+1)
			require.NoError(t, s.Close())
			m.tat("b", epoch+1)
			m.flush()
			assert.ErrorIs(t, s.Wait(), ErrClosed, "a change made now may have been dropped")
			assert.ErrorIs(t, s.Sync(), ErrClosed)
			st := s.Stats()
			assert.EqualValues(t, 2, st.Dropped)
			assert.EqualValues(t, 3, s.Recorded(), "dropped changes count as recorded")
			assert.NoError(t, st.Err)
			assert.NoError(t, s.Close(), "Close is idempotent")
		})
	}
}

func TestOpenRefuses(t *testing.T) {
	t.Run("a file in place of the directory", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "data")
		require.NoError(t, os.WriteFile(p, []byte("precious"), 0o600))
		_, err := Open(Options{Dir: p, Logger: quiet()})
		require.ErrorContains(t, err, "is not a directory")
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		assert.Equal(t, "precious", string(b))
	})
	t.Run("a path under a file", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "file")
		require.NoError(t, os.WriteFile(p, nil, 0o600))
		_, err := Open(Options{Dir: filepath.Join(p, "data"), Logger: quiet()})
		require.ErrorContains(t, err, "not a directory")
	})
	t.Run("a directory holding other files", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o600))
		_, err := Open(Options{Dir: dir, Logger: quiet()})
		require.ErrorContains(t, err, `holds "notes.txt" and no Sluice data`)
		names, err := os.ReadDir(dir)
		require.NoError(t, err)
		assert.Len(t, names, 2, "only notes.txt and Pebble's LOCK") // the lock file is all that was created
	})
	t.Run("a directory in use", func(t *testing.T) {
		dir := t.TempDir()
		s := open(t, dir, EverySec)
		newModel(s).tat("k", epoch+1)
		require.NoError(t, s.Sync())
		_, err := Open(Options{Dir: dir, Logger: quiet()})
		require.ErrorContains(t, err, "in use by another running sluice")
		require.NoError(t, s.Close())
		got, _ := reload(t, dir, epoch)
		assert.Len(t, got, 1, "the refused open left the data alone")
	})
	for _, version := range []string{"1", "4", "99"} {
		t.Run("layout version "+version, func(t *testing.T) {
			dir := t.TempDir()
			db, err := pebble.Open(dir, &pebble.Options{Logger: pebbleLogger{quiet()}})
			require.NoError(t, err)
			require.NoError(t, db.Set([]byte(metaFormat), []byte(version), pebble.Sync))
			require.NoError(t, db.Set([]byte("t/k"), encodedExpiry(epoch), pebble.Sync))
			require.NoError(t, db.Close())
			_, err = Open(Options{Dir: dir, Logger: quiet()})
			require.ErrorContains(t, err, fmt.Sprintf("holds layout version %q; this sluice reads only version %s", version, formatVersion))
		})
	}
	t.Run("pebble data without a layout version", func(t *testing.T) {
		dir := t.TempDir()
		db, err := pebble.Open(dir, &pebble.Options{Logger: pebbleLogger{quiet()}})
		require.NoError(t, err)
		require.NoError(t, db.Set([]byte("someone else's"), []byte("data"), pebble.Sync))
		require.NoError(t, db.Close())
		_, err = Open(Options{Dir: dir, Logger: quiet()})
		require.ErrorContains(t, err, "holds data but no layout version")
	})
	t.Run("invalid options, every problem at once", func(t *testing.T) {
		_, err := Open(Options{Mode: 7, Logger: quiet()})
		require.ErrorContains(t, err, "no data directory given")
		require.ErrorContains(t, err, "invalid fsync mode 7")
	})
}

func TestParseMode(t *testing.T) {
	for _, m := range []Mode{Always, EverySec, No} {
		got, err := ParseMode(m.String())
		require.NoError(t, err)
		assert.Equal(t, m, got)
	}
	_, err := ParseMode("sometimes")
	assert.EqualError(t, err, `fsync mode "sometimes": must be always, everysec or no`)
}

// copyDir copies a data directory's files as they are on disk now, minus
// the lock: what a process killed at this instant would leave.
func copyDir(t *testing.T, from string) string {
	t.Helper()
	to := t.TempDir()
	err := filepath.WalkDir(from, func(path string, e fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil || e.Name() == "LOCK" {
			return err
		}
		rel, err := filepath.Rel(from, path)
		if err != nil {
			return err
		}
		if e.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o750)
		}
		b, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o600)
	})
	require.NoError(t, err)
	return to
}

// TestCommittedChangesSurviveAProcessCrash copies the data directory while
// the store is still open, as a kill -9 would leave it, and finds every
// written change in the copy, whatever the mode: batches reach the OS
// without waiting for a sync.
func TestCommittedChangesSurviveAProcessCrash(t *testing.T) {
	for _, mode := range []Mode{Always, EverySec, No} {
		t.Run(mode.String(), func(t *testing.T) {
			dir := t.TempDir()
			s := openWith(t, Options{Dir: dir, Mode: mode, SyncInterval: time.Hour})
			m := newModel(s)
			opened := s.Stats().Fsyncs // opening the store syncs its first files
			for i := range 100 {
				m.tat(fmt.Sprintf("k%d", i), epoch+int64(i+1))
			}
			waitFor(func() bool { return s.written.Load() == 100 })
			if mode != Always {
				assert.Equal(t, opened, s.Stats().Fsyncs, "nothing was synced since opening")
			}
			got, _ := reload(t, copyDir(t, dir), 0)
			assert.Len(t, got, 100)
		})
	}
}

// TestLargeBacklogCommitsInPieces records far more than one journal record
// holds before the writer can keep up; every change arrives.
func TestLargeBacklogCommitsInPieces(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Always)
	const n = 100_000
	key := make([]byte, 0, 32)
	for i := range n {
		key = fmt.Appendf(key[:0], "backlog:key:%06d", i)
		s.Record(keyspace.Change{Op: keyspace.Set, Kind: keyspace.GCRA, Created: true, Key: key, Expires: epoch + int64(i+1)})
	}
	require.NoError(t, s.Wait())
	st := s.Stats()
	assert.EqualValues(t, n, st.KeysWritten)
	assert.Greater(t, st.Batches, uint64(n*30/maxBatchBytes), "split into records of at most %d bytes", maxBatchBytes)
	require.NoError(t, s.Close())
	got, _ := reload(t, dir, epoch)
	assert.Len(t, got, n)
}

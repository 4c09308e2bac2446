package persistence

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"
	"github.com/cockroachdb/pebble/vfs/errorfs"
	"github.com/sluicehq/sluice/gcra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const epoch = int64(1893456000000000000) // 2030-01-01

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func open(t testing.TB, dir string, mode Mode) *Store {
	t.Helper()
	s, err := Open(Options{Dir: dir, Mode: mode, Logger: quiet(), MemTableSize: 4 << 20})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// snapshot lists a table's live keys and TATs at now.
func snapshot(tb *gcra.Table, now int64) map[string]int64 {
	m := map[string]int64{}
	tb.Range(now, func(k []byte, tat int64) { m[string(k)] = tat })
	return m
}

// reload opens dir again and loads it into a fresh table at now.
func reload(t *testing.T, dir string, now int64) (map[string]int64, Recovery) {
	t.Helper()
	s := open(t, dir, EverySec)
	tb := gcra.NewTable(4, nil)
	rec, err := s.Load(tb, now)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	return snapshot(tb, now), rec
}

var limit = mustLimit(4, 1, 60)

func mustLimit(burst, count, period int64) gcra.Limit {
	l, err := gcra.NewLimit(burst, count, period)
	if err != nil {
		panic(err)
	}
	return l
}

func mustThrottle(t *testing.T, tb *gcra.Table, key string, now int64, q int64) gcra.Result {
	t.Helper()
	r, err := tb.Throttle([]byte(key), now, limit, q)
	require.NoError(t, err)
	return r
}

func TestRoundTripEveryMode(t *testing.T) {
	for _, mode := range []Mode{Always, EverySec, No} {
		t.Run(mode.String(), func(t *testing.T) {
			dir := t.TempDir()
			s := open(t, dir, mode)
			tb := gcra.NewTable(4, s)
			for i := range 50 {
				mustThrottle(t, tb, fmt.Sprintf("k%d", i), epoch, int64(i%5+1))
			}
			mustThrottle(t, tb, "bin\x00\xff\r\n", epoch, 1)
			assert.True(t, tb.Delete([]byte("k3"), epoch))
			mustThrottle(t, tb, "k4", epoch, -100) // refund to full: removed
			require.NoError(t, s.Wait())
			want := snapshot(tb, epoch)
			require.NoError(t, s.Close())
			st := s.Stats()
			assert.Equal(t, st.Recorded, st.Synced, "close syncs everything")
			assert.EqualValues(t, 51, st.KeysWritten)
			assert.EqualValues(t, 2, st.KeysDeleted)

			got, rec := reload(t, dir, epoch)
			assert.Equal(t, want, got)
			assert.Equal(t, 49, rec.Keys)
			assert.NotContains(t, got, "k3")
			assert.NotContains(t, got, "k4")
			assert.Contains(t, got, "bin\x00\xff\r\n")
		})
	}
}

func TestLoadDeletesExpiredFromDisk(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, EverySec)
	tb := gcra.NewTable(4, s)
	for i := range 30 {
		// quantity i%5+1 at 60s each: TATs 60..300 s after epoch.
		mustThrottle(t, tb, fmt.Sprintf("k%d", i), epoch, int64(i%5+1))
	}
	require.NoError(t, s.Close())

	later := epoch + 150*1e9 // TATs of 60 and 120 s have passed
	got, rec := reload(t, dir, later)
	assert.Equal(t, 18, rec.Keys)
	assert.Equal(t, 12, rec.Expired)
	assert.Len(t, got, 18)
	for _, tat := range got {
		assert.Greater(t, tat, later)
	}
	// The expired entries are gone from disk: loading at the original instant
	// finds only the survivors.
	got, rec = reload(t, dir, epoch)
	assert.Equal(t, 18, rec.Keys)
	assert.Zero(t, rec.Expired)
	assert.Len(t, got, 18)
}

func TestLoadDeletesMalformedEntries(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, EverySec)
	s.Record([]byte("good"), epoch+1e9)
	require.NoError(t, s.Sync())
	require.NoError(t, s.db.Set([]byte("t/short"), []byte{1, 2}, pebble.Sync))
	require.NoError(t, s.db.Set([]byte("x/other-namespace"), []byte("kept"), pebble.Sync))
	require.NoError(t, s.Close())
	got, rec := reload(t, dir, epoch)
	assert.Equal(t, map[string]int64{"good": epoch + 1e9}, got)
	assert.Equal(t, 1, rec.Invalid)
	_, rec = reload(t, dir, epoch)
	assert.Zero(t, rec.Invalid)
}

func TestFlushIsOrderedWithOtherChanges(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Always)
	tb := gcra.NewTable(4, s)
	for i := range 20 {
		mustThrottle(t, tb, fmt.Sprintf("old%d", i), epoch, 1)
	}
	assert.Equal(t, 20, tb.Flush())
	mustThrottle(t, tb, "new", epoch, 2)
	require.NoError(t, s.Wait())
	assert.EqualValues(t, 1, s.Stats().Flushes)
	require.NoError(t, s.Close())
	got, _ := reload(t, dir, epoch)
	assert.Equal(t, map[string]int64{"new": epoch + 120*1e9}, got)
}

func TestAlwaysWaitGroupCommits(t *testing.T) {
	s := open(t, t.TempDir(), Always)
	tb := gcra.NewTable(16, s)
	const workers, each = 16, 40
	var wg sync.WaitGroup
	var waited atomic.Int64
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				key := []byte(fmt.Sprintf("w%d-%d", w, i))
				_, err := tb.Throttle(key, epoch, limit, 1)
				if !assert.NoError(t, err) {
					return
				}
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
	tb := gcra.NewTable(16, s)
	const workers, each = 16, 20
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				_, err := tb.Throttle(fmt.Appendf(nil, "w%d-%d", w, i), epoch, limit, 1)
				assert.NoError(t, err)
				assert.NoError(t, s.Wait())
			}
		})
	}
	wg.Wait()
	st := s.Stats()
	t.Logf("%d admissions, %d fsyncs", workers*each, st.Fsyncs)
	assert.LessOrEqual(t, st.Fsyncs, uint64(workers*each/(workers/2)), "groups average at least half the workers")
}

func TestEverySecSyncsWithinInterval(t *testing.T) {
	s, err := Open(Options{Dir: t.TempDir(), Mode: EverySec, SyncInterval: 20 * time.Millisecond, Logger: quiet()})
	require.NoError(t, err)
	defer s.Close()
	for round := range 3 {
		s.Record([]byte(fmt.Sprintf("k%d", round)), epoch)
		assert.NoError(t, s.Wait(), "everysec never waits")
		target := s.recorded.Load()
		start := time.Now()
		for s.synced.Load() < target {
			require.Less(t, time.Since(start), 10*time.Second, "no sync within 10s of a 20ms interval")
			time.Sleep(time.Millisecond)
		}
	}
	assert.GreaterOrEqual(t, s.Stats().Fsyncs, uint64(3))
}

func TestNoModeLeavesSyncingToTheOS(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, No)
	opened := s.Stats().Fsyncs // opening the store syncs its first files
	for i := range 100 {
		s.Record([]byte(fmt.Sprintf("k%d", i)), epoch+int64(i+1))
	}
	require.NoError(t, s.Wait())
	start := time.Now()
	for s.written.Load() < 100 {
		require.Less(t, time.Since(start), 10*time.Second)
		time.Sleep(time.Millisecond)
	}
	assert.Equal(t, opened, s.Stats().Fsyncs)
	require.NoError(t, s.Sync(), "an explicit Sync works in every mode")
	assert.Equal(t, opened+1, s.Stats().Fsyncs)
	require.NoError(t, s.Close())
	got, _ := reload(t, dir, epoch)
	assert.Len(t, got, 100)
}

func TestRecordBlocksOnlyWhileTheWriterIsBehind(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, Mode: EverySec, MaxPending: 64, Logger: quiet()})
	require.NoError(t, err)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 500 {
				s.Record([]byte(fmt.Sprintf("w%d-%03d", w, i)), epoch+1)
			}
		})
	}
	wg.Wait()
	require.NoError(t, s.Close())
	got, _ := reload(t, dir, epoch)
	assert.Len(t, got, 2000)
}

func TestAfterCloseChangesAreDropped(t *testing.T) {
	s := open(t, t.TempDir(), Always)
	s.Record([]byte("a"), epoch+1)
	require.NoError(t, s.Close())
	s.Record([]byte("b"), epoch+1)
	s.RecordFlush()
	assert.ErrorIs(t, s.Wait(), ErrClosed, "a change made now may have been dropped")
	st := s.Stats()
	assert.EqualValues(t, 2, st.Dropped)
	assert.NoError(t, st.Err)
	assert.NoError(t, s.Close(), "Close is idempotent")
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
		s.Record([]byte("k"), epoch+1)
		require.NoError(t, s.Sync())
		_, err := Open(Options{Dir: dir, Logger: quiet()})
		require.ErrorContains(t, err, "in use by another running sluice")
		require.NoError(t, s.Close())
		got, _ := reload(t, dir, epoch)
		assert.Len(t, got, 1, "the refused open left the data alone")
	})
	t.Run("an unknown layout version", func(t *testing.T) {
		dir := t.TempDir()
		db, err := pebble.Open(dir, &pebble.Options{Logger: pebbleLogger{quiet()}})
		require.NoError(t, err)
		require.NoError(t, db.Set([]byte(metaFormat), []byte("99"), pebble.Sync))
		require.NoError(t, db.Close())
		_, err = Open(Options{Dir: dir, Logger: quiet()})
		require.ErrorContains(t, err, `layout version "99"`)
	})
	t.Run("an invalid mode", func(t *testing.T) {
		_, err := Open(Options{Dir: t.TempDir(), Mode: 7, Logger: quiet()})
		require.Error(t, err)
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

// TestWriteErrorStopsTheStore injects a failure into Pebble's write-ahead
// log: the store stops writing, counts and logs it, Always-mode waits report
// it, nothing blocks, and what was written before is recovered on restart.
func TestWriteErrorStopsTheStore(t *testing.T) {
	dir := t.TempDir()
	var broken atomic.Bool
	inj := errorfs.InjectorFunc(func(op errorfs.Op, path string) error {
		if broken.Load() && strings.HasSuffix(path, ".log") &&
			(op == errorfs.OpFileWrite || op == errorfs.OpFileSync || op == errorfs.OpFileWriteAt) {
			return errorfs.ErrInjected
		}
		return nil
	})
	var logs bytes.Buffer
	var logMu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&logs, &logMu}, nil))
	s, err := Open(Options{Dir: dir, Mode: Always, Logger: log, fs: errorfs.Wrap(vfs.Default, inj)})
	require.NoError(t, err)
	tb := gcra.NewTable(4, s)
	mustThrottle(t, tb, "before", epoch, 1)
	require.NoError(t, s.Wait())

	broken.Store(true)
	mustThrottle(t, tb, "during", epoch, 1)
	err = s.Wait()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "persistence failed")
	st := s.Stats()
	assert.GreaterOrEqual(t, st.WriteErrors, uint64(1))
	require.Error(t, st.Err)

	// Later changes are dropped without blocking, decisions still work.
	for i := range 200 {
		mustThrottle(t, tb, fmt.Sprintf("after%d", i), epoch, 1)
	}
	assert.Error(t, s.Wait())
	assert.Error(t, s.Sync())
	assert.GreaterOrEqual(t, s.Stats().Dropped, uint64(200))
	assert.Error(t, s.Close())
	logMu.Lock()
	assert.Contains(t, logs.String(), "persistence: write failed")
	logMu.Unlock()

	broken.Store(false)
	got, _ := reload(t, dir, epoch)
	assert.Contains(t, got, "before")
	assert.NotContains(t, got, "after0")
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func dirSize(t testing.TB, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed by a concurrent compaction or fold
		}
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

// TestDiskStaysFlatUnderChurn writes many short-lived keys in rounds, lets
// the sweep expire them (each expiry deletes the key on disk), and checks
// that the data directory does not grow with the number of keys ever seen:
// Pebble's own compactions drop the deleted entries.
func TestDiskStaysFlatUnderChurn(t *testing.T) {
	dir := t.TempDir()
	const memtable = 1 << 20
	s, err := Open(Options{Dir: dir, Mode: No, Logger: quiet(), MemTableSize: memtable, FoldBytes: memtable})
	require.NoError(t, err)
	defer s.Close()
	tb := gcra.NewTable(16, s)
	rounds, perRound := 64, 15000
	if raceEnabled {
		perRound = 4000
	}
	short := mustLimit(0, 1, 1) // TAT = now + 1s
	now := epoch
	var sizes []int64
	for r := range rounds {
		for i := range perRound {
			n := uint32(r*perRound + i)
			key := fmt.Appendf(nil, "churn:%08x:user%06d:some-suffix", n*2654435761, n)
			_, err := tb.Throttle(key, now, short, 1)
			require.NoError(t, err)
		}
		now += 2e9
		require.Equal(t, perRound, tb.Sweep(now, 1<<30))
		require.NoError(t, s.Sync())
		sizes = append(sizes, dirSize(t, dir))
	}
	st := s.Stats()
	assert.EqualValues(t, rounds*perRound, st.KeysWritten)
	assert.EqualValues(t, rounds*perRound, st.KeysDeleted)
	assert.Greater(t, st.Folds, uint64(rounds/8), "the journal was folded as it grew")
	t.Logf("dir size after each round of %d keys written and expired: %v", perRound, sizes)
	// Everything ever written is ~rounds*perRound*110 bytes (a Set and a
	// Delete of a 40-byte key) = 106 MB (28 MB under the race detector); the
	// directory holds the write-ahead logs of about two memtables, a journal
	// not yet folded and a little sstable data, whatever the history.
	// Compactions make the size saw-tooth, so the check is on the peaks:
	// the last quarter's peak is no higher than the second quarter's plus
	// slack, and far below what was ever written.
	second := slices.Max(sizes[rounds/4 : rounds/2])
	last := slices.Max(sizes[3*rounds/4:])
	assert.LessOrEqual(t, last, second*3/2+4<<20, "the directory grew with the keys ever written")
	assert.Less(t, last, int64(rounds*perRound*110/4))
	require.NoError(t, s.Close())
	got, _ := reload(t, dir, epoch)
	assert.Empty(t, got)
}

func TestRecoveryIntoATable(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, EverySec)
	tb := gcra.NewTable(8, s)
	for i := range 1000 {
		mustThrottle(t, tb, fmt.Sprintf("k%d", i), epoch, 1)
	}
	require.NoError(t, s.Close())
	s2 := open(t, dir, EverySec)
	tb2 := gcra.NewTable(8, s2)
	rec, err := s2.Load(tb2, epoch)
	require.NoError(t, err)
	assert.Equal(t, 1000, rec.Keys)
	assert.Positive(t, rec.Duration)
	assert.Equal(t, rec, s2.Stats().Recovery)
	// Loading does not journal the keys back.
	assert.Zero(t, s2.Stats().Recorded)
	// The recovered limit is spent: four more requests fit a burst of five.
	for range 4 {
		assert.False(t, mustThrottle(t, tb2, "k7", epoch, 1).Limited)
	}
	assert.True(t, mustThrottle(t, tb2, "k7", epoch, 1).Limited)
}

// encodedTAT is the on-disk value for tat.
func encodedTAT(tat int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(tat)) }

func TestOnDiskLayout(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Always)
	s.Record([]byte("api:alice"), epoch+5)
	require.NoError(t, s.Wait())
	// The change is journalled first, as one record of a journal segment
	// in the pending log's encoding...
	assert.Equal(t, []string{fmt.Sprintf("%d api:alice %d", opSet, epoch+5)}, readJournal(t, s))
	assert.Equal(t, []uint64{1}, journalSegments(t, s))
	// ... and folded into the key space at the next Open.
	require.NoError(t, s.Close())
	s = open(t, dir, Always)
	assert.Equal(t, 1, s.Stats().Recovery.Replayed)
	assert.Empty(t, journalSegments(t, s), "folded segments are removed")
	v, closer, err := s.db.Get([]byte("t/api:alice"))
	require.NoError(t, err)
	assert.Equal(t, encodedTAT(epoch+5), v)
	require.NoError(t, closer.Close())
	v, closer, err = s.db.Get([]byte(metaFolded))
	require.NoError(t, err)
	assert.Equal(t, binary.BigEndian.AppendUint64(nil, 2), v, "segments below 2 are folded")
	require.NoError(t, closer.Close())
	v, closer, err = s.db.Get([]byte(metaFormat))
	require.NoError(t, err)
	assert.Equal(t, formatVersion, string(v))
	require.NoError(t, closer.Close())
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
// committed change in the copy, whatever the mode: batches reach the OS
// without waiting for a sync.
func TestCommittedChangesSurviveAProcessCrash(t *testing.T) {
	for _, mode := range []Mode{Always, EverySec, No} {
		t.Run(mode.String(), func(t *testing.T) {
			dir := t.TempDir()
			s, err := Open(Options{Dir: dir, Mode: mode, SyncInterval: time.Hour, Logger: quiet()})
			require.NoError(t, err)
			defer s.Close()
			opened := s.Stats().Fsyncs // opening the store syncs its first files
			for i := range 100 {
				s.Record(fmt.Appendf(nil, "k%d", i), epoch+int64(i+1))
			}
			start := time.Now()
			for s.written.Load() < 100 {
				require.Less(t, time.Since(start), 10*time.Second)
				time.Sleep(time.Millisecond)
			}
			if mode != Always {
				assert.Equal(t, opened, s.Stats().Fsyncs, "nothing was synced since opening")
			}
			got, _ := reload(t, copyDir(t, dir), 0)
			assert.Len(t, got, 100)
		})
	}
}

// TestLargeBacklogCommitsInPieces records far more than one Pebble batch
// holds before the writer can keep up; every change arrives.
func TestLargeBacklogCommitsInPieces(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Always)
	const n = 100_000
	for i := range n {
		s.Record(fmt.Appendf(nil, "backlog:key:%06d", i), epoch+int64(i+1))
	}
	require.NoError(t, s.Wait())
	st := s.Stats()
	assert.EqualValues(t, n, st.KeysWritten)
	assert.Greater(t, st.Batches, uint64(n*30/maxBatchBytes), "split into batches of at most %d bytes", maxBatchBytes)
	require.NoError(t, s.Close())
	got, _ := reload(t, dir, epoch)
	assert.Len(t, got, n)
}

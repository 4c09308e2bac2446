package persistence

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/vfs"
	"github.com/cockroachdb/pebble/vfs/errorfs"
	"github.com/sluicehq/sluice/keyspace"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// faultFS is the OS file system with errors injected where fault says:
// errorfs's operations, and SyncData (which errorfs passes through) as
// errorfs.OpFileSync.
type faultFS struct {
	vfs.FS
	fault *atomic.Pointer[func(op errorfs.Op, path string) bool]
}

func newFaultFS() faultFS {
	f := faultFS{fault: new(atomic.Pointer[func(errorfs.Op, string) bool])}
	f.FS = errorfs.Wrap(vfs.Default, errorfs.InjectorFunc(f.maybeError))
	return f
}

// arm makes every operation fault matches fail from now on; nil disarms.
func (f faultFS) arm(fault func(op errorfs.Op, path string) bool) { f.fault.Store(&fault) }

func (f faultFS) maybeError(op errorfs.Op, path string) error {
	if fn := f.fault.Load(); fn != nil && *fn != nil && (*fn)(op, path) {
		return errorfs.ErrInjected
	}
	return nil
}

func (f faultFS) Create(name string) (vfs.File, error) {
	file, err := f.FS.Create(name)
	if err != nil {
		return nil, err
	}
	return syncDataFault{file, f, name}, nil
}

type syncDataFault struct {
	vfs.File
	fs   faultFS
	name string
}

func (f syncDataFault) SyncData() error {
	if err := f.fs.maybeError(errorfs.OpFileSync, f.name); err != nil {
		return err
	}
	return f.File.SyncData()
}

// inJournal matches a segment file's operations of the given kinds.
func inJournal(ops ...errorfs.Op) func(errorfs.Op, string) bool {
	return func(op errorfs.Op, path string) bool {
		return filepath.Base(filepath.Dir(path)) == journalDir && strings.HasSuffix(path, segmentExt) && has(ops, op)
	}
}

// inPebbleWAL matches the operations of Pebble's write-ahead log.
func inPebbleWAL(ops ...errorfs.Op) func(errorfs.Op, string) bool {
	return func(op errorfs.Op, path string) bool {
		return filepath.Base(filepath.Dir(path)) != journalDir && strings.HasSuffix(path, ".log") && has(ops, op)
	}
}

func has(ops []errorfs.Op, op errorfs.Op) bool {
	for _, o := range ops {
		if o == op {
			return true
		}
	}
	return false
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

// TestEveryFailureStopsTheStore injects each way the store can fail, at
// run time and at Close. From the failure on, in every mode, Wait and Sync
// return the error — also for a change recorded after it, which the store
// drops (before the fix, Wait's fast path acknowledged those once
// everything recorded before the failure was synced: a failed fold lost
// every later admission) — the store counts, logs and reports it, nothing
// blocks, Close returns it, and a restart recovers everything acknowledged
// before it.
func TestEveryFailureStopsTheStore(t *testing.T) {
	faults := []struct {
		name string
		// fail injects the fault into a store that holds acknowledged
		// changes and makes it fail.
		fail func(t *testing.T, s *Store, fs faultFS, m *model)
	}{
		{"segment write", func(t *testing.T, s *Store, fs faultFS, m *model) {
			fs.arm(inJournal(errorfs.OpFileWrite))
			m.tat("during", epoch+sec)
			require.Error(t, s.Sync())
		}},
		{"segment sync", func(t *testing.T, s *Store, fs faultFS, m *model) {
			fs.arm(inJournal(errorfs.OpFileSync))
			m.tat("during", epoch+sec)
			require.Error(t, s.Sync())
		}},
		{"segment creation", func(t *testing.T, s *Store, fs faultFS, m *model) {
			require.NoError(t, s.foldNow()) // the next change opens a segment
			fs.arm(inJournal(errorfs.OpCreate))
			m.tat("during", epoch+sec)
			require.Error(t, s.Sync())
		}},
		{"segment removal after a fold", func(t *testing.T, s *Store, fs faultFS, m *model) {
			fs.arm(inJournal(errorfs.OpRemove))
			require.ErrorContains(t, s.foldNow(), "fold journal")
		}},
		{"pebble commit in a fold", func(t *testing.T, s *Store, fs faultFS, m *model) {
			fs.arm(inPebbleWAL(errorfs.OpFileWrite, errorfs.OpFileSync))
			require.ErrorContains(t, s.foldNow(), "fold journal")
		}},
	}
	for _, mode := range []Mode{Always, EverySec, No} {
		for _, f := range faults {
			t.Run(mode.String()+"/"+f.name, func(t *testing.T) {
				dir := t.TempDir()
				fs := newFaultFS()
				var logs bytes.Buffer
				var logMu sync.Mutex
				log := slog.New(slog.NewTextHandler(lockedWriter{&logs, &logMu}, nil))
				s, err := Open(Options{Dir: dir, Mode: mode, SyncInterval: 1 << 62, Logger: log, fs: fs})
				require.NoError(t, err)
				defer s.Close()
				m := newModel(s)
				m.tat("before", epoch+sec)
				m.set(keyspace.Window, "before", epoch+sec, "w")
				require.NoError(t, s.Sync())
				require.NoError(t, s.Wait())

				f.fail(t, s, fs, m)
				st := s.Stats()
				require.Error(t, st.Err)
				assert.GreaterOrEqual(t, st.WriteErrors, uint64(1))
				for i := range 100 {
					m.tat(fmt.Sprintf("after%d", i), epoch+sec)
					require.ErrorContains(t, s.Wait(), "persistence failed", "change %d after the failure", i)
				}
				assert.ErrorContains(t, s.Sync(), "persistence failed")
				assert.GreaterOrEqual(t, s.Stats().Dropped, uint64(100))
				assert.ErrorContains(t, s.Close(), "persistence failed")
				assert.ErrorContains(t, s.Wait(), "persistence failed", "after Close too")
				logMu.Lock()
				assert.Contains(t, logs.String(), "persistence: write failed")
				logMu.Unlock()

				fs.arm(nil)
				got, _ := reloadWith(t, Options{Dir: dir, fs: fs}, epoch)
				assert.Equal(t, state{epoch + sec, ""}, got[id{keyspace.GCRA, "before"}])
				assert.Equal(t, state{epoch + sec, "w"}, got[id{keyspace.Window, "before"}])
				assert.NotContains(t, got, id{keyspace.GCRA, "after0"})
			})
		}
	}
}

// TestAFailedCloseIsReported: the last sync at Close fails: Close returns
// the error, and so do Wait and Sync afterwards.
func TestAFailedCloseIsReported(t *testing.T) {
	for _, mode := range []Mode{Always, EverySec, No} {
		t.Run(mode.String(), func(t *testing.T) {
			fs := newFaultFS()
			s, err := Open(Options{Dir: t.TempDir(), Mode: mode, SyncInterval: 1 << 62, Logger: quiet(), fs: fs})
			require.NoError(t, err)
			m := newModel(s)
			m.tat("k", epoch+sec)
			require.NoError(t, s.Wait())
			fs.arm(inJournal(errorfs.OpFileSync))
			require.ErrorContains(t, s.Close(), "persistence failed")
			assert.ErrorContains(t, s.Wait(), "persistence failed")
			assert.ErrorContains(t, s.Sync(), "persistence failed")
		})
	}
}

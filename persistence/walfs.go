package persistence

import (
	"strings"
	"sync/atomic"

	"github.com/cockroachdb/pebble/vfs"
)

// walFS lets the store hand every batch to the operating system without
// paying an fsync for it. Pebble only writes its write-ahead log out of its
// in-process 32 KiB block buffer when the block fills or a commit asks for a
// sync, so a NoSync commit may sit in the process — and die with it — for
// any length of time. In EverySec and No modes the store therefore commits
// every batch with Sync, and walFS turns the log file's sync into a no-op
// unless the store opened the gate for a real one: each batch reaches the
// OS at once (surviving a process crash), and the disk only when the mode
// says.
//
// In Always mode the gate is nil (every sync goes through); in every mode
// walFS counts the log syncs that reach the disk, so Stats reports real
// fsyncs, however many batches Pebble's log writer folded into each.
type walFS struct {
	vfs.FS
	gate  *atomic.Bool   // true: log syncs reach the disk; nil: always
	syncs *atomic.Uint64 // log syncs that reached the disk
	// syncOnClose makes closing a log file (Pebble rotating it) sync it,
	// so a rotated log never holds unsynced changes the store counted as
	// synced in the next one (EverySec).
	syncOnClose bool
}

func (fs walFS) Create(name string) (vfs.File, error) {
	f, err := fs.FS.Create(name)
	return fs.wrap(name, f, err)
}

func (fs walFS) ReuseForWrite(oldname, newname string) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname)
	return fs.wrap(newname, f, err)
}

func (fs walFS) wrap(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil || !strings.HasSuffix(name, ".log") {
		return f, err
	}
	return &walFile{File: f, fs: fs}, nil
}

// walFile is a write-ahead log file whose syncs walFS gates.
type walFile struct {
	vfs.File
	fs walFS
}

// open reports whether a sync reaches the disk now, counting it if so.
func (fs walFS) open() bool {
	if fs.gate != nil && !fs.gate.Load() {
		return false
	}
	fs.syncs.Add(1)
	return true
}

func (f *walFile) Sync() error {
	if !f.fs.open() {
		return nil
	}
	return f.File.Sync()
}

func (f *walFile) SyncData() error {
	if !f.fs.open() {
		return nil
	}
	return f.File.SyncData()
}

func (f *walFile) SyncTo(length int64) (bool, error) {
	if !f.fs.open() {
		return false, nil
	}
	return f.File.SyncTo(length)
}

func (f *walFile) Close() error {
	if f.fs.syncOnClose || f.fs.gate == nil || f.fs.gate.Load() {
		if err := f.File.Sync(); err != nil {
			_ = f.File.Close()
			return err
		}
	}
	return f.File.Close()
}

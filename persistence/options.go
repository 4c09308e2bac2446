package persistence

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cockroachdb/pebble/vfs"
)

// Mode says when a recorded change reaches stable storage, as Redis's
// appendfsync does for its append-only file.
type Mode int

const (
	// Always fsyncs every change before the reply that depends on it is
	// sent: [Store.Wait] blocks until the changes recorded before it are
	// synced. Concurrent decisions share one fsync (group commit).
	Always Mode = iota + 1
	// EverySec writes changes through to the operating system without
	// waiting and fsyncs the journal within SyncInterval (one
	// second) of the first unsynced write. A crash of the machine loses at
	// most about that second.
	EverySec
	// No writes changes through to the operating system without ever asking
	// for an fsync (Close still syncs); the operating system decides when
	// they reach the disk.
	No
)

// String is the mode's flag spelling: always, everysec or no.
func (m Mode) String() string {
	switch m {
	case Always:
		return "always"
	case EverySec:
		return "everysec"
	case No:
		return "no"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// ParseMode reads a mode's flag spelling: always, everysec or no.
func ParseMode(s string) (Mode, error) {
	switch s {
	case "always":
		return Always, nil
	case "everysec":
		return EverySec, nil
	case "no":
		return No, nil
	}
	return 0, fmt.Errorf("fsync mode %q: must be always, everysec or no", s)
}

// Defaults for the zero values of Options.
const (
	DefaultSyncInterval = time.Second
	DefaultMaxPending   = 64 << 20
	DefaultMemTableSize = 8 << 20
	DefaultFoldBytes    = 16 << 20
)

// Options configure Open. The zero value of every field but Dir is a
// working default.
type Options struct {
	// Dir is the data directory; created when missing. Required.
	Dir string
	// Mode is the durability mode; zero means EverySec.
	Mode Mode
	// SyncInterval bounds how long EverySec leaves a write unsynced; zero
	// means DefaultSyncInterval.
	SyncInterval time.Duration
	// MaxPending is how many bytes of recorded changes may wait for the
	// writer before Record blocks (back-pressure on a disk that cannot keep
	// up); zero means DefaultMaxPending.
	MaxPending int
	// MemTableSize is Pebble's memtable size; zero means
	// DefaultMemTableSize. Larger tables absorb more rewrites of hot keys
	// before they reach an sstable, at the cost of memory and WAL replay.
	MemTableSize uint64
	// FoldBytes is how many bytes a journal segment holds before it is
	// closed and folded into Pebble (see fold.go); zero means
	// DefaultFoldBytes. Larger folds write a key changed many times once,
	// at the cost of a longer replay at start-up and more memory while
	// folding.
	FoldBytes int
	// OtherFiles names files other parts of the server keep in the data
	// directory (cluster mode's cluster.conf): a new directory holding only
	// these and the store's files is accepted.
	OtherFiles []string
	// Logger receives the store's and Pebble's messages; nil means
	// slog.Default().
	Logger *slog.Logger
	// Progress, when set, is told how recovery advances: by Open while it
	// replays the journal, by Load while it restores keys (see Progress).
	Progress func(Progress)
	// RefuseTruncated makes Open refuse a journal whose newest segment
	// ends in a torn record (--journal-load-truncated no). By default Open
	// folds the records before it, logs a warning and keeps the segment
	// aside: a crash that interrupted the last write leaves such a tail,
	// and it holds only changes whose replies did not wait for them (in
	// Always mode) or were made in the last moments before the crash.
	RefuseTruncated bool
	// AcceptCorruption lets Open start on a journal or Pebble write-ahead
	// log damaged anywhere but at its tail, or with a journal segment
	// missing (--journal-accept-corruption yes): it folds every record it
	// can read, logs the loss at error level and keeps the damaged file
	// aside as <name>.corrupt. By default Open refuses, naming the file.
	// Damage to Pebble's MANIFEST, markers or sstables is refused either
	// way (see damage.go).
	AcceptCorruption bool

	fs vfs.FS // tests inject errors through it; nil means the OS
	// foldGate, when set, is called by the folder before each fold: tests
	// hold a fold back with it to leave several segments unfolded.
	foldGate func()
}

// withDefaults returns a copy of o with the defaults filled in, or every
// problem with it at once.
func (o Options) withDefaults() (Options, error) {
	var errs []error
	if o.Dir == "" {
		errs = append(errs, errors.New("no data directory given"))
	}
	switch {
	case o.Mode == 0:
		o.Mode = EverySec
	case o.Mode < Always || o.Mode > No:
		errs = append(errs, fmt.Errorf("invalid fsync mode %d", int(o.Mode)))
	}
	if o.SyncInterval <= 0 {
		o.SyncInterval = DefaultSyncInterval
	}
	if o.MaxPending <= 0 {
		o.MaxPending = DefaultMaxPending
	}
	if o.FoldBytes <= 0 {
		o.FoldBytes = DefaultFoldBytes
	}
	if o.MemTableSize == 0 {
		o.MemTableSize = DefaultMemTableSize
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o, errors.Join(errs...)
}

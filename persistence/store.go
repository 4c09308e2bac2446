package persistence

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"
)

// Store is Sluice's durable copy of the keyspace: a journal of its changes
// folded into Pebble. It implements keyspace.Journal: Record only appends to
// an in-memory log; one writer goroutine appends what accumulated to the
// journal and syncs it as the Mode asks (writer.go); a folder goroutine
// folds full journal segments into Pebble (fold.go). It is safe for
// concurrent use.
type Store struct {
	db   *pebble.DB
	lock *pebble.Lock
	fs   vfs.FS
	// osFS: fs is the operating system's, so journal segments are
	// preallocated and, in Always mode, synced with a raw fdatasync(2) (see
	// syncSegment).
	osFS    bool
	journal string // the journal directory

	// Always mode commits in groups (see group): joined counts the callers
	// of Wait since the writer last took the pending log.
	joined atomic.Int64

	dir  string
	mode Mode
	log  *slog.Logger

	interval   time.Duration
	maxPending int

	mu      sync.Mutex
	room    sync.Cond  // broadcast when the writer takes the pending log
	pending pendingLog // changes not yet taken by the writer
	seq     uint64     // changes recorded
	closing bool       // no more changes are accepted

	// The journal (segment.go): the writer appends to seg, closes it once
	// it holds foldBytes, and asks the folder to fold the closed segments.
	seg          *segment // the writer's; nil until its first commit
	nextSegment  uint64   // the number of the writer's next segment
	foldAsked    uint64   // the writer's: segments below it were handed to the folder
	unfolded     atomic.Int64
	foldBytes    int
	foldReq      chan foldJob
	foldNowReq   chan chan error // foldNow asks the writer to close its segment
	folderDone   chan struct{}
	folding      atomic.Bool // a fold was asked for and has not finished
	foldGate     func()      // Options.foldGate
	lastFoldKeys int         // keys in the last fold, to size the next

	kick    chan struct{} // wakes the writer: pending became non-empty
	syncReq chan struct{} // asks the writer to sync now (Sync)
	quit    chan struct{} // Close
	done    chan struct{} // the writer has finished

	// progress is Options.Progress; loadProgress, Load's (progress.go).
	progress     func(Progress)
	loadProgress progressState

	recorded atomic.Uint64 // == seq, readable without mu
	written  atomic.Uint64 // changes in the journal (the OS has them)
	synced   atomic.Uint64 // changes known to be on stable storage

	waitMu sync.Mutex
	waitCh chan struct{} // closed whenever synced advances or the store stops
	err    error         // why the store stopped (ErrClosed after Close); nil while it runs
	failed atomic.Bool   // fail has set err (under mu too): changes are dropped

	keysWritten   atomic.Uint64
	keysDeleted   atomic.Uint64
	flushes       atomic.Uint64
	batches       atomic.Uint64
	fsyncs        atomic.Uint64 // journal syncs
	writeErrors   atomic.Uint64
	dropped       atomic.Uint64
	lastSync      atomic.Int64 // Unix ns of the last completed sync, 0 before any
	folds         atomic.Uint64
	foldedChanges atomic.Uint64
	foldedKeys    atomic.Uint64

	recMu    sync.Mutex
	recovery Recovery

	// What Open does with damage (see damage.go).
	refuseTruncated  bool
	acceptCorruption bool
	tornManifest     string // at Open: why Pebble may read an earlier state
	// auxLost: the fold in progress lost records to accepted corruption,
	// so no auxiliary field can be trusted (see fold); set and cleared by
	// the goroutine folding.
	auxLost bool

	closed    atomic.Bool // Close has begun
	closeOnce sync.Once
	closeErr  error
}

// Open opens (creating if needed) the data directory, folds whatever
// journal a previous run left into Pebble, and starts the writer and the
// folder. It fails rather than touch a directory that is a file, cannot be
// written, is locked by another process, holds files that are not Pebble's
// or the journal's, or holds another layout version; it never removes
// anything it did not write.
func Open(opts Options) (*Store, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	fs := opts.fs
	if fs == nil {
		fs = vfs.Default
	}
	dir := opts.Dir
	if err := prepareDir(dir, fs); err != nil {
		return nil, err
	}
	lock, err := pebble.LockDirectory(dir, fs)
	if err != nil {
		return nil, lockError(dir, err)
	}
	s := &Store{
		lock:        lock,
		fs:          fs,
		osFS:        opts.fs == nil,
		journal:     fs.PathJoin(dir, journalDir),
		dir:         dir,
		mode:        opts.Mode,
		log:         opts.Logger,
		interval:    opts.SyncInterval,
		maxPending:  opts.MaxPending,
		kick:        make(chan struct{}, 1),
		syncReq:     make(chan struct{}, 1),
		quit:        make(chan struct{}),
		done:        make(chan struct{}),
		waitCh:      make(chan struct{}),
		nextSegment: 1,
		foldBytes:   opts.FoldBytes,
		foldReq:     make(chan foldJob, 1),
		foldNowReq:  make(chan chan error),
		folderDone:  make(chan struct{}),
		progress:    opts.Progress,
		foldGate:    opts.foldGate,

		refuseTruncated:  opts.RefuseTruncated,
		acceptCorruption: opts.AcceptCorruption,
	}
	s.room.L = &s.mu
	if err := checkContents(dir, fs, opts.OtherFiles); err != nil {
		_ = lock.Close()
		return nil, err
	}
	db, err := s.openPebble(opts)
	if err != nil {
		_ = lock.Close()
		return nil, err
	}
	s.db = db
	if err := s.checkLayout(); err != nil {
		_ = db.Close()
		_ = lock.Close()
		return nil, err
	}
	start := time.Now()
	replayed, err := s.replay()
	if err != nil {
		_ = db.Close()
		_ = lock.Close()
		return nil, fmt.Errorf("replay journal in %s: %w", dir, err)
	}
	s.recovery.Replayed = replayed
	s.recovery.Duration = time.Since(start)
	go s.run()
	go s.folder()
	return s, nil
}

// Mode is the durability mode.
func (s *Store) Mode() Mode { return s.mode }

// Dir is the data directory.
func (s *Store) Dir() string { return s.dir }

// Close stops accepting changes, commits and syncs everything recorded,
// waits for a fold in progress, closes Pebble and releases the directory
// lock; the journal not yet folded is folded at the next Open. Changes
// recorded after Close began are dropped. It returns the store's error, if
// it failed, or the first error closing; calling it again returns the same.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.mu.Lock()
		s.closing = true
		s.mu.Unlock()
		s.room.Broadcast()
		close(s.quit)
		<-s.done
		<-s.folderDone
		err := s.failure()
		if cerr := guard(s.db.Close); cerr != nil && err == nil {
			err = fmt.Errorf("close data dir %s: %w", s.dir, cerr)
		}
		if lerr := s.lock.Close(); lerr != nil && err == nil {
			err = fmt.Errorf("unlock data dir %s: %w", s.dir, lerr)
		}
		s.waitMu.Lock()
		if s.err == nil {
			s.err = ErrClosed
		}
		close(s.waitCh)
		s.waitCh = make(chan struct{})
		s.waitMu.Unlock()
		s.closeErr = err
	})
	return s.closeErr
}

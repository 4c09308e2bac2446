package persistence

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"
)

// Defaults for the zero values of Options.
const (
	DefaultSyncInterval = time.Second
	DefaultMaxPending   = 64 << 20
	DefaultMemTableSize = 8 << 20
)

// On-disk layout. Every TAT lives under tatPrefix as the table key's bytes
// mapped to 8 bytes of big-endian Unix nanoseconds; other prefixes are left
// for later namespaces. metaFormat names the layout version.
const (
	tatPrefix     = "t/"
	metaFormat    = "m/format"
	formatVersion = "4"
	// formatV1 is the layout without the journal, formatV2 the one with
	// the journal inside Pebble, formatV3 the one whose journal has no
	// opForget; all read the same and are upgraded in place (version 3
	// only needs the new stamp, which makes an older sluice refuse the
	// directory rather than fail on a record it does not know).
	formatV1 = "1"
	formatV2 = "2"
	formatV3 = "3"
)

var (
	tatLower = []byte(tatPrefix)
	tatUpper = []byte("t0") // the first key after every "t/..." key
)

// ErrClosed is returned by Wait once Close has begun, and by Sync after it.
var ErrClosed = errors.New("persistence: store closed")

// Options configure Open.
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
	// FoldBytes is how many bytes of journalled changes are folded into
	// the key space at once (see journal.go); zero means DefaultFoldBytes.
	// Larger folds write a key changed many times once, at the cost of a
	// longer replay at start-up and more memory while folding.
	FoldBytes int
	// Logger receives the store's and Pebble's messages; nil means
	// slog.Default().
	Logger *slog.Logger

	fs vfs.FS // tests inject errors through it; nil means the OS
}

// Store is Sluice's durable copy of the state table on Pebble. It implements
// gcra.Journal: Record only appends to an in-memory log, and one writer
// goroutine commits what accumulated to Pebble in as few batches as it can,
// written to the OS at once and synced to disk as the Mode asks. It is safe
// for concurrent use.
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
	pending pendingLog // operations not yet taken by the writer
	seq     uint64     // operations recorded
	closing bool       // no more operations are accepted
	broken  bool       // the writer has failed; operations are dropped

	// The journal (journal.go): the writer appends to seg, closes it once
	// it holds foldBytes, and asks the folder to fold the closed segments.
	seg          *segment // the writer's; nil until its first commit
	nextSegment  uint64   // the number of the writer's next segment
	foldAsked    uint64   // the writer's: segments below it were handed to the folder
	unfolded     atomic.Int64
	foldBytes    int
	foldReq      chan uint64 // segments below this number may be folded
	folderDone   chan struct{}
	folding      atomic.Bool // a fold was asked for and has not finished
	lastFoldKeys int         // the folder's: keys in its last fold, to size the next
	// table is the table Load filled when it is a DirtySource: folds take
	// the last TAT of changed keys from it (see fold).
	table         atomic.Pointer[DirtySource]
	folds         atomic.Uint64
	foldedChanges atomic.Uint64
	foldedKeys    atomic.Uint64

	kick    chan struct{} // wakes the writer: pending became non-empty
	syncReq chan struct{} // asks the writer to sync now (Sync)
	quit    chan struct{} // Close
	done    chan struct{} // the writer has finished

	recorded atomic.Uint64 // == seq, readable without mu
	written  atomic.Uint64 // operations in Pebble's log file (the OS has them)
	synced   atomic.Uint64 // operations known to be on stable storage

	waitMu sync.Mutex
	waitCh chan struct{} // closed whenever synced advances or the store fails
	err    error         // why the store failed; nil while healthy

	keysWritten atomic.Uint64
	keysDeleted atomic.Uint64
	flushes     atomic.Uint64
	batches     atomic.Uint64
	fsyncs      atomic.Uint64 // journal syncs
	writeErrors atomic.Uint64
	dropped     atomic.Uint64
	lastSync    atomic.Int64 // Unix ns of the last completed sync, 0 before any

	recMu    sync.Mutex
	recovery Recovery

	closed    atomic.Bool // Close has begun
	closeOnce sync.Once
	closeErr  error
}

// Stats are the store's counters, for INFO.
type Stats struct {
	Dir         string
	Mode        Mode
	Recorded    uint64    // changes recorded (Set, delete or flush)
	Written     uint64    // of those, handed to the OS (a process crash keeps them)
	Synced      uint64    // of those, known to be on stable storage
	KeysWritten uint64    // TATs written
	KeysDeleted uint64    // keys deleted (DEL, expiry, refunds to full)
	Flushes     uint64    // FLUSHALLs applied as range deletions
	Batches     uint64    // journal records written
	Fsyncs      uint64    // syncs of the journal
	LastSync    time.Time // when the last sync completed; zero before any
	WriteErrors uint64    // failed writes and Pebble background errors
	Dropped     uint64    // changes discarded because the store had failed or closed
	Err         error     // why the store stopped writing; nil while healthy
	DiskBytes   uint64    // Pebble's disk usage
	Folds       uint64    // journal folds into the key space
	Folded      uint64    // journalled changes folded
	FoldedKeys  uint64    // keys those folds wrote or deleted
	Unfolded    uint64    // bytes journalled since the last fold began
	Recovery    Recovery  // what Load found
}

// Recovery describes one Load.
type Recovery struct {
	Keys     int           // unexpired TATs loaded into the table
	Replayed int           // journalled changes folded into the key space at Open
	Expired  int           // TATs that had passed, deleted from disk
	Invalid  int           // malformed entries, deleted from disk
	Duration time.Duration // how long replaying (at Open) and loading took
}

// Open opens (creating if needed) the data directory and starts the writer.
// It fails rather than touch a directory that is a file, cannot be written,
// is locked by another process, or holds files that are not Pebble's; it
// never removes anything it did not write.
func Open(opts Options) (*Store, error) {
	if opts.Dir == "" {
		return nil, errors.New("no data directory given")
	}
	if opts.Mode == 0 {
		opts.Mode = EverySec
	}
	if opts.Mode < Always || opts.Mode > No {
		return nil, fmt.Errorf("invalid fsync mode %d", int(opts.Mode))
	}
	if opts.SyncInterval <= 0 {
		opts.SyncInterval = DefaultSyncInterval
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = DefaultMaxPending
	}
	if opts.FoldBytes <= 0 {
		opts.FoldBytes = DefaultFoldBytes
	}
	if opts.MemTableSize == 0 {
		opts.MemTableSize = DefaultMemTableSize
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
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
		foldReq:     make(chan uint64, 1),
		folderDone:  make(chan struct{}),
	}
	s.room.L = &s.mu
	if err := checkContents(dir, fs); err != nil {
		_ = lock.Close()
		return nil, err
	}
	db, err := pebble.Open(dir, &pebble.Options{
		FS:                 fs,
		Lock:               lock,
		Logger:             pebbleLogger{opts.Logger},
		EventListener:      s.eventListener(),
		FormatMajorVersion: pebble.FormatNewest,
		MemTableSize:       opts.MemTableSize,
		// Pebble's default lets the manifest grow to 128 MiB before it is
		// rewritten; constant churn appends to it on every flush.
		MaxManifestFileSize: 8 << 20,
	})
	if err != nil {
		_ = lock.Close()
		return nil, fmt.Errorf("open data dir %s: %w", dir, err)
	}
	s.db = db
	found, err := s.layoutVersion()
	if err != nil {
		_ = db.Close()
		_ = lock.Close()
		return nil, err
	}
	start := time.Now()
	replayed, err := s.replay(found)
	if err == nil && found != formatVersion {
		err = s.stampLayout()
	}
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

// replay folds what a previous run left in the journal (and, in a
// directory of layout version 2, in Pebble) into the key space, and numbers
// the writer's first segment after every segment found.
func (s *Store) replay(version string) (int, error) {
	var legacy folded
	if version == formatV2 {
		var err error
		if legacy, err = s.foldLegacyJournal(); err != nil {
			return 0, err
		}
	}
	// The journal directory's own entry is synced (always: a crash may
	// have come between creating and syncing it), as each segment's is.
	if err := s.fs.MkdirAll(s.journal, 0o750); err != nil {
		return 0, err
	}
	if err := syncDir(s.fs, s.dir); err != nil {
		return 0, err
	}
	nums, err := s.segments()
	if err != nil {
		return 0, err
	}
	through, err := s.foldedThrough()
	if err != nil {
		return 0, err
	}
	s.nextSegment = max(1, through)
	if len(nums) > 0 {
		s.nextSegment = max(s.nextSegment, nums[len(nums)-1]+1)
	}
	s.foldAsked = s.nextSegment
	if len(nums) == 0 {
		return legacy.changes, nil
	}
	f, err := s.foldSegments(s.nextSegment)
	return legacy.changes + f.changes, err
}

// prepareDir makes sure dir is a directory, creating it (and missing
// parents) when missing. Each directory it creates has its entry synced in
// its parent, so that a power cut cannot take the data dir away with
// everything later stored in it.
func prepareDir(dir string, fs vfs.FS) error {
	st, err := fs.Stat(dir)
	switch {
	case err == nil && !st.IsDir():
		return fmt.Errorf("data dir %s is not a directory", dir)
	case err == nil:
		return nil
	case !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("data dir %s: %w", dir, err)
	}
	// The directories to create, innermost first.
	missing := []string{dir}
	for d := fs.PathDir(dir); d != missing[len(missing)-1]; d = fs.PathDir(d) {
		if _, err := fs.Stat(d); err == nil {
			break
		}
		missing = append(missing, d)
	}
	if err := fs.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if parent := fs.PathDir(missing[i]); parent != missing[i] {
			if err := syncDir(fs, parent); err != nil {
				return fmt.Errorf("create data dir: sync %s: %w", parent, err)
			}
		}
	}
	return nil
}

// syncDir makes the entries of directory dir durable.
func syncDir(fs vfs.FS, dir string) error {
	d, err := fs.OpenDir(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// lockError explains why Pebble's LOCK file could not be taken.
func lockError(dir string, err error) error {
	var pe *os.PathError
	if !errors.As(err, &pe) && (errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EACCES) ||
		strings.Contains(err.Error(), "lock held by current process")) {
		return fmt.Errorf("data dir %s is in use by another running sluice (its LOCK file is held): %w", dir, err)
	}
	return fmt.Errorf("lock data dir %s: %w", dir, err)
}

// checkContents refuses a directory that holds anything but Pebble's files:
// pointing --data-dir at the wrong place must not mix Sluice's files into it.
func checkContents(dir string, fs vfs.FS) error {
	desc, err := pebble.Peek(dir, fs)
	if err != nil {
		return fmt.Errorf("read data dir %s: %w", dir, err)
	}
	if desc.Exists {
		return nil
	}
	names, err := fs.List(dir)
	if err != nil {
		return fmt.Errorf("read data dir %s: %w", dir, err)
	}
	for _, n := range names {
		if !pebbleFile(n) {
			return fmt.Errorf("data dir %s holds %q and no Sluice data; refusing to use it (give an empty or new directory)", dir, n)
		}
	}
	return nil
}

// pebbleFile reports whether name is one Pebble writes in its directory.
func pebbleFile(name string) bool {
	switch {
	case name == "LOCK", name == "CURRENT", name == "archive", name == journalDir,
		strings.HasPrefix(name, "OPTIONS-"), strings.HasPrefix(name, "MANIFEST-"),
		strings.HasPrefix(name, "marker."), strings.HasSuffix(name, ".log"),
		strings.HasSuffix(name, ".sst"), strings.HasSuffix(name, ".dbtmp"):
		return true
	}
	return false
}

// layoutVersion reads the directory's layout version ("" for a new store)
// and refuses one this build does not know. Open stamps the current version
// only after replaying the journal, so an upgrade a crash interrupts is done
// again from the start.
func (s *Store) layoutVersion() (string, error) {
	v, closer, err := s.db.Get([]byte(metaFormat))
	if errors.Is(err, pebble.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read data dir %s: %w", s.dir, err)
	}
	got := string(v)
	_ = closer.Close()
	if got != formatV1 && got != formatV2 && got != formatV3 && got != formatVersion {
		return "", fmt.Errorf("data dir %s holds layout version %q; this sluice reads version %s", s.dir, got, formatVersion)
	}
	return got, nil
}

// stampLayout records the current layout version.
func (s *Store) stampLayout() error {
	if err := s.db.Set([]byte(metaFormat), []byte(formatVersion), pebble.Sync); err != nil {
		return fmt.Errorf("write data dir %s: %w", s.dir, err)
	}
	return nil
}

func (s *Store) eventListener() *pebble.EventListener {
	return &pebble.EventListener{
		BackgroundError: func(err error) {
			s.writeErrors.Add(1)
			s.log.Error("persistence: pebble background error", slog.Any("err", err))
		},
		DiskSlow: func(info pebble.DiskSlowInfo) {
			s.log.Warn("persistence: disk slow", slog.String("op", info.String()))
		},
		WriteStallBegin: func(info pebble.WriteStallBeginInfo) {
			s.log.Warn("persistence: pebble write stall", slog.String("reason", info.Reason))
		},
		WriteStallEnd: func() { s.log.Info("persistence: pebble write stall ended") },
	}
}

// Mode is the durability mode.
func (s *Store) Mode() Mode { return s.mode }

// Dir is the data directory.
func (s *Store) Dir() string { return s.dir }

// Record journals that key now has TAT tat, or was removed when tat is 0. It
// implements gcra.Journal and is called under the key's shard lock, so the
// changes of one key arrive in order. It does no I/O: it appends to the
// pending buffer and wakes the writer; it blocks only while MaxPending bytes
// already wait for a writer that cannot keep up.
func (s *Store) Record(key []byte, tat int64) {
	if tat == 0 {
		s.record(opDelete, key, 0)
		return
	}
	s.record(opSet, key, tat)
}

// RecordCreate is Record for a key the table did not hold: should the key
// be removed before the journal is folded, the fold writes nothing for it.
func (s *Store) RecordCreate(key []byte, tat int64) { s.record(opCreate, key, tat) }

// RecordForget journals the removal of a key that nothing but its own
// journalled changes stored (see gcra.Journal).
func (s *Store) RecordForget(key []byte) { s.record(opForget, key, 0) }

// record journals one change of a TAT: op is opSet or opCreate with tat,
// or opDelete or opForget.
func (s *Store) record(op byte, key []byte, tat int64) {
	empty, ok := s.lockToAppend()
	if !ok {
		return
	}
	switch op {
	case opDelete, opForget:
		s.pending.appendDelete(op, key)
		s.keysDeleted.Add(1)
	default:
		s.pending.appendSet(op, key, tat)
		s.keysWritten.Add(1)
	}
	s.appended(empty)
}

// RecordFlush journals that every key was removed (FLUSHALL); it becomes one
// range deletion over the TAT namespace, ordered with the other changes.
func (s *Store) RecordFlush() {
	empty, ok := s.lockToAppend()
	if !ok {
		return
	}
	s.pending.appendFlush()
	s.flushes.Add(1)
	s.appended(empty)
}

// RecordPut journals that ns+key now holds value (state other than TATs:
// window counters, leases). Like Record it does no I/O, and it is ordered
// with every other change.
func (s *Store) RecordPut(ns string, key, value []byte) { s.recordRaw(opPut, ns, key, value) }

// RecordDrop journals that ns+key was removed.
func (s *Store) RecordDrop(ns string, key []byte) { s.recordRaw(opDrop, ns, key, nil) }

// RecordFlushPrefix journals that every key of namespace ns was removed.
func (s *Store) RecordFlushPrefix(ns string) { s.recordRaw(opFlushPrefix, ns, nil, nil) }

func (s *Store) recordRaw(op byte, ns string, key, value []byte) {
	empty, ok := s.lockToAppend()
	if !ok {
		return
	}
	s.pending.appendRaw(op, ns, key, value)
	switch op {
	case opPut:
		s.keysWritten.Add(1)
	case opDrop:
		s.keysDeleted.Add(1)
	default:
		s.flushes.Add(1)
	}
	s.appended(empty)
}

// lockToAppend takes s.mu for appending one operation to the pending log,
// once there is room, and reports whether the log was empty (the writer
// needs waking). When the store no longer accepts changes it counts the
// change as dropped, releases s.mu and reports !ok.
func (s *Store) lockToAppend() (empty, ok bool) {
	s.mu.Lock()
	if !s.admit() {
		s.mu.Unlock()
		return false, false
	}
	return s.pending.size == 0, true
}

// appended numbers the operation just appended, releases s.mu and wakes the
// writer if the log had been empty.
func (s *Store) appended(empty bool) {
	s.seq++
	s.recorded.Store(s.seq)
	s.mu.Unlock()
	if empty {
		s.wake()
	}
}

// admit waits for room in the pending buffer and reports whether a change
// may be appended. Called with s.mu held.
func (s *Store) admit() bool {
	for s.pending.size >= s.maxPending && !s.closing && !s.broken {
		s.room.Wait()
	}
	if s.closing || s.broken {
		s.dropped.Add(1)
		return false
	}
	return true
}

func (s *Store) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Recorded is how many changes have been handed to the store so far,
// whether it kept them or, failed or closed, dropped them: a caller that
// sees it move made a change, and Wait then tells whether it is durable.
func (s *Store) Recorded() uint64 { return s.recorded.Load() + s.dropped.Load() }

// Wait returns once every change recorded before the call is as durable as
// the mode promises a reply can rely on. In Always mode that means synced to
// stable storage: Wait blocks for the next group commit and returns the
// store's error if it failed, or ErrClosed once Close has begun (the caller's
// change may have been dropped). In EverySec and No modes replies do not
// wait, and Wait returns nil at once.
func (s *Store) Wait() error {
	if !s.RepliesWait() {
		return nil
	}
	if s.closed.Load() {
		return ErrClosed
	}
	target := s.recorded.Load()
	if s.synced.Load() >= target {
		return nil
	}
	s.joined.Add(1)
	return s.waitSynced(target)
}

// RepliesWait reports whether Wait can block: only in Always mode.
func (s *Store) RepliesWait() bool { return s.mode == Always }

// Sync makes every change recorded before the call durable now, whatever the
// mode, and returns the store's error if it cannot.
func (s *Store) Sync() error {
	target := s.recorded.Load()
	if s.synced.Load() >= target {
		return s.failure()
	}
	select {
	case s.syncReq <- struct{}{}:
	default:
	}
	return s.waitSynced(target)
}

// waitSynced blocks until synced reaches target or the store fails.
func (s *Store) waitSynced(target uint64) error {
	for {
		if s.synced.Load() >= target {
			return nil
		}
		s.waitMu.Lock()
		ch, err := s.waitCh, s.err
		s.waitMu.Unlock()
		if err != nil {
			return err
		}
		if s.synced.Load() >= target {
			return nil
		}
		<-ch
	}
}

func (s *Store) failure() error {
	s.waitMu.Lock()
	defer s.waitMu.Unlock()
	return s.err
}

// advance publishes that operations up to seq are synced, waking waiters.
func (s *Store) advance(seq uint64) {
	s.synced.Store(seq)
	s.lastSync.Store(time.Now().UnixNano())
	s.waitMu.Lock()
	close(s.waitCh)
	s.waitCh = make(chan struct{})
	s.waitMu.Unlock()
}

// fail stops the store writing: later changes are dropped, waiters get err.
func (s *Store) fail(err error) {
	s.writeErrors.Add(1)
	s.log.Error("persistence: write failed; the store stops writing and the on-disk state stays as of the last successful write until restart",
		slog.String("dir", s.dir), slog.Any("err", err))
	s.mu.Lock()
	s.broken = true
	s.pending.recycle(s.pending.take(nil))
	s.mu.Unlock()
	s.room.Broadcast()
	s.waitMu.Lock()
	if s.err == nil {
		s.err = fmt.Errorf("persistence failed: %w", err)
	}
	close(s.waitCh)
	s.waitCh = make(chan struct{})
	s.waitMu.Unlock()
}

// take hands the writer the pending chunks (reusing spare's storage for
// the next ones) and the sequence number of the last operation in them.
func (s *Store) take(spare [][]byte) ([][]byte, uint64) {
	s.mu.Lock()
	chunks, seq := s.pending.take(spare), s.seq
	s.mu.Unlock()
	s.room.Broadcast()
	return chunks, seq
}

// give returns drained chunks for reuse.
func (s *Store) give(chunks [][]byte) {
	s.mu.Lock()
	s.pending.recycle(chunks)
	s.mu.Unlock()
}

// run is the writer: it commits whatever accumulated, syncing per mode,
// until Close.
func (s *Store) run() {
	defer close(s.done)
	defer close(s.foldReq)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	armed := false // timer runs: EverySec has unsynced writes
	gather := time.NewTimer(time.Hour)
	gather.Stop()
	var spare [][]byte
	for {
		var forced, due, quit bool
		select {
		case <-s.kick:
			if s.mode == Always {
				s.group()
			} else {
				forced, quit = s.gather(gather)
			}
		case <-s.syncReq:
			forced = true
		case <-timer.C:
			armed, due = false, true
		case <-s.quit:
			quit = true
		}
		chunks, seq := s.take(spare)
		spare = chunks[:0] // the next take's storage; the chunks go back by give
		if s.mode == Always {
			s.joined.Store(0)
		}
		if s.failure() != nil {
			s.give(chunks)
			if quit {
				return
			}
			continue
		}
		syncNow := forced || due || quit || s.mode == Always
		if len(chunks) > 0 {
			err := s.commit(chunks, syncNow)
			s.give(chunks)
			if err != nil {
				s.fail(err)
				continue
			}
			s.written.Store(seq)
			if syncNow {
				s.advance(seq)
			}
			if s.seg.w.Size() >= int64(s.foldBytes) {
				// The segment is full: closing syncs it, so everything
				// written so far is durable.
				if err := s.closeSegment(); err != nil {
					s.fail(err)
					continue
				}
				s.advance(seq)
			}
			s.maybeFold()
		} else if syncNow && s.synced.Load() < s.written.Load() {
			if err := s.syncSegment(); err != nil {
				s.fail(err)
				continue
			}
			s.advance(s.written.Load())
		}
		if s.synced.Load() < s.written.Load() && s.mode == EverySec && !armed {
			timer.Reset(s.interval)
			armed = true
		}
		if quit {
			if err := s.closeSegment(); err != nil {
				s.fail(err)
			}
			return
		}
	}
}

// maxGroupYields bounds how many times the writer yields while an
// Always-mode group forms (see group).
const maxGroupYields = 64

// group lets an Always-mode group commit form before the writer takes it.
// The connection that woke the writer has just recorded a change, and the
// others whose requests arrived with it are runnable but have not run yet:
// a woken goroutine takes the scheduler's next slot. Committing at once
// would sync one change while they wait for the next sync, and on one CPU,
// where the sync holds the only scheduler thread (see syncSegment), groups
// collapse to a change or two. The writer therefore yields to every
// runnable goroutine, again while a yield brought new callers of Wait (at
// most maxGroupYields times), and then takes the group: every request
// already read joins this sync, and those arriving during it are gathered
// for the next one, as in a single-threaded server such as Redis.
func (s *Store) group() {
	for range maxGroupYields {
		n := s.joined.Load()
		runtime.Gosched()
		if s.joined.Load() == n {
			return
		}
	}
}

// prefixEnd is the first key after every key starting with prefix (whose
// last byte is not 0xff: namespaces end in '/').
func prefixEnd(prefix []byte) []byte {
	end := append([]byte(nil), prefix...)
	end[len(end)-1]++
	return end
}

// coalesce is how long the writer lets changes gather in EverySec and No
// modes, where replies do not wait for it, before handing them to Pebble:
// under load one write then carries many, saving the server's CPU.
const coalesce = time.Millisecond

// gather waits coalesce on t, or less when Sync or Close asks.
func (s *Store) gather(t *time.Timer) (forced, quit bool) {
	t.Reset(coalesce)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.syncReq:
		forced = true
	case <-s.quit:
		quit = true
	}
	return forced, quit
}

// fatalError is what pebbleLogger.Fatalf panics with: Pebble calls Fatalf
// when a commit fails (for example the write-ahead log cannot be written),
// and the writer recovers it as that commit's error.
type fatalError string

func (e fatalError) Error() string { return string(e) }

// guard runs fn, turning a Pebble fatal error panic into an error.
func guard(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			fe, ok := r.(fatalError)
			if !ok {
				panic(r)
			}
			err = fe
		}
	}()
	return fn()
}

// maxBatchBytes bounds a journal record: a far-behind backlog goes in
// several records, which folds and replays read one at a time.
const maxBatchBytes = 512 << 10

// commit appends the pending chunks to the journal (see journal.go) as
// records of at most maxBatchBytes (whole chunks each), hands them to the
// operating system in one write where it can, and with sync waits for the
// disk too.
func (s *Store) commit(chunks [][]byte, sync bool) error {
	if s.seg == nil {
		if err := s.openSegment(); err != nil {
			return err
		}
	}
	w := s.seg.w
	for i := 0; i < len(chunks); {
		n, j := len(chunks[i]), i+1
		for ; j < len(chunks) && n+len(chunks[j]) <= maxBatchBytes; j++ {
			n += len(chunks[j])
		}
		rw, err := w.Next()
		if err != nil {
			return err
		}
		for _, c := range chunks[i:j] {
			if _, err := rw.Write(c); err != nil {
				return err
			}
		}
		s.unfolded.Add(int64(n))
		s.batches.Add(1)
		i = j
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if sync {
		return s.syncSegment()
	}
	return nil
}

// maybeFold hands the folder the segments the writer closed, unless it is
// still folding earlier ones.
func (s *Store) maybeFold() {
	closed := s.nextSegment
	if s.seg != nil {
		closed = s.seg.num
	}
	if closed <= s.foldAsked || s.folding.Load() {
		return
	}
	s.folding.Store(true)
	s.unfolded.Store(0)
	s.foldAsked = closed
	s.foldReq <- closed
}

// Close stops accepting changes, commits and syncs everything recorded,
// closes Pebble and releases the directory lock. Changes recorded after
// Close are dropped. It returns the store's error, if it failed, or the
// first error closing; calling it again returns the same.
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

// Stats reads the counters.
func (s *Store) Stats() Stats {
	st := Stats{
		Dir:         s.dir,
		Mode:        s.mode,
		Recorded:    s.recorded.Load(),
		Written:     s.written.Load(),
		Synced:      s.synced.Load(),
		KeysWritten: s.keysWritten.Load(),
		KeysDeleted: s.keysDeleted.Load(),
		Flushes:     s.flushes.Load(),
		Batches:     s.batches.Load(),
		Fsyncs:      s.fsyncs.Load(),
		WriteErrors: s.writeErrors.Load(),
		Dropped:     s.dropped.Load(),
		Folds:       s.folds.Load(),
		Folded:      s.foldedChanges.Load(),
		FoldedKeys:  s.foldedKeys.Load(),
		Unfolded:    uint64(s.unfolded.Load()),
	}
	if ns := s.lastSync.Load(); ns != 0 {
		st.LastSync = time.Unix(0, ns)
	}
	if err := s.failure(); err != nil && !errors.Is(err, ErrClosed) {
		st.Err = err
	}
	select {
	case <-s.done: // closed: Pebble's metrics are gone
	default:
		st.DiskBytes = s.diskUsage() + s.journalUsage()
	}
	s.recMu.Lock()
	st.Recovery = s.recovery
	s.recMu.Unlock()
	return st
}

// diskUsage is Pebble's own account of its files, tolerating a concurrent
// Close.
func (s *Store) diskUsage() (n uint64) {
	defer func() { _ = recover() }()
	return s.db.Metrics().DiskSpaceUsage()
}

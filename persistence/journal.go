package persistence

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/record"
	"github.com/cockroachdb/pebble/vfs"
)

// The journal is how changes become durable cheaply. The writer appends
// each batch it takes from the pending log as one record (Pebble's record
// format: checksummed, block-framed) to a segment file in the journal
// directory, in the pending-log encoding, and syncs the segment as the mode
// asks. A decision then costs one write(2) shared with the others of its
// batch, and in Always mode one fdatasync(2) shared with its group: no
// Pebble commit pipeline, memtable insert or goroutine hand-off per batch.
//
// Once a segment holds FoldBytes it is closed and the folder goroutine
// folds it into Pebble's key space ("t/" + key -> TAT and the other
// namespaces): the last change of each key wins, so a key changed a
// thousand times in the meantime is written once. The fold's last batch
// records, synced, which segments it covered (metaFolded), and only then
// are their files removed. Open folds whatever segments a previous run
// left, skipping those the mark covers, so Load and LoadValues read the key
// space alone and a segment folded twice can never undo a later change.
const (
	journalDir = "journal"
	segmentExt = ".log"
	// metaFolded holds the number of the first segment not yet folded
	// (8 bytes big-endian).
	metaFolded = "m/folded"
)

// Layout version 2 kept the journal inside Pebble as journalPrefix + an
// 8-byte entry number; such entries are folded once when a version-2
// directory is opened.
const journalPrefix = "j/"

var (
	journalLower = []byte(journalPrefix)
	journalUpper = []byte("j0") // the first key after every "j/..." key
)

// foldSlice is how many changes a fold reads, or keys it writes, between
// yields to the scheduler.
const foldSlice = 1024

// DefaultFoldBytes is how many bytes of journalled changes trigger a fold
// when Options.FoldBytes is zero.
const DefaultFoldBytes = 16 << 20

// segmentName is the file name of journal segment n.
func segmentName(n uint64) string { return fmt.Sprintf("%016d%s", n, segmentExt) }

// parseSegmentName is segmentName's inverse.
func parseSegmentName(name string) (uint64, bool) {
	digits, ok := strings.CutSuffix(name, segmentExt)
	if !ok || len(digits) != 16 {
		return 0, false
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	return n, err == nil
}

// maxPrealloc bounds a segment's preallocation.
const maxPrealloc = 64 << 20

// segment is the journal file the writer appends to.
type segment struct {
	num uint64
	f   vfs.File
	w   *record.Writer
}

// openSegment creates the writer's next segment: preallocated (with the OS
// file system), so that appending does not change the file's size and a
// data sync has no metadata to write, and with its directory entry synced
// before anything that a reply waits for is written to it.
func (s *Store) openSegment() error {
	name := s.fs.PathJoin(s.journal, segmentName(s.nextSegment))
	f, err := s.fs.Create(name)
	if err != nil {
		return err
	}
	// Allocate (and size) the file now; the record reader stops at the
	// zeros after the last record. This is only an optimisation: without
	// room for it (a nearly full disk) the segment grows as it is written.
	if s.osFS && syscall.Fallocate(int(f.Fd()), 0, 0, int64(min(s.foldBytes, maxPrealloc))+maxBatchBytes) == nil {
		if err := f.Sync(); err != nil {
			_ = f.Close()
			return err
		}
	}
	if err := syncDir(s.fs, s.journal); err != nil {
		_ = f.Close()
		return err
	}
	s.seg = &segment{num: s.nextSegment, f: f, w: record.NewWriter(f)}
	s.nextSegment++
	return nil
}

// syncSegment makes the writer's segment durable. In Always mode, with the
// OS file system, it issues fdatasync(2) as a raw system call: the Go
// runtime then does not see a blocking call, so it neither hands the
// goroutine's P to another thread nor wakes its monitor thread for it,
// which on a small machine cost as much CPU as the sync itself. The price
// is that the sync holds its P (with one, the whole process waits for the
// disk, as Redis does with appendfsync always) and that a stop-the-world
// pause of the garbage collector waits for a sync in flight. In the other
// modes replies do not wait for syncs, so a slow disk must not hold up the
// process: they sync with an ordinary, blocking call.
func (s *Store) syncSegment() error {
	if s.seg == nil {
		return nil
	}
	s.fsyncs.Add(1)
	if !s.osFS || s.mode != Always {
		return s.seg.f.SyncData()
	}
	if _, _, e := syscall.RawSyscall(syscall.SYS_FDATASYNC, s.seg.f.Fd(), 0, 0); e != 0 {
		return fmt.Errorf("sync journal: %w", e)
	}
	return nil
}

// closeSegment syncs and closes the writer's segment, if any.
func (s *Store) closeSegment() error {
	if s.seg == nil {
		return nil
	}
	err := s.syncSegment()
	if cerr := s.seg.f.Close(); err == nil {
		err = cerr
	}
	s.seg = nil
	return err
}

// segments lists the journal's segment numbers in order.
func (s *Store) segments() ([]uint64, error) {
	names, err := s.fs.List(s.journal)
	if err != nil {
		return nil, err
	}
	var nums []uint64
	for _, name := range names {
		if n, ok := parseSegmentName(name); ok {
			nums = append(nums, n)
		}
	}
	slices.Sort(nums)
	return nums, nil
}

// journalUsage is the journal's size on disk.
func (s *Store) journalUsage() uint64 {
	nums, err := s.segments()
	if err != nil {
		return 0
	}
	var n uint64
	for _, num := range nums {
		if st, err := s.fs.Stat(s.fs.PathJoin(s.journal, segmentName(num))); err == nil {
			n += uint64(st.Size())
		}
	}
	return n
}

// readSegment calls each with every record of segment n, in order, up to
// the end of the file or the first torn or zeroed record (the tail a crash
// or the preallocation left: every record a reply waited for precedes it).
func (s *Store) readSegment(n uint64, each func(v []byte) error) error {
	f, err := s.fs.Open(s.fs.PathJoin(s.journal, segmentName(n)))
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	r := record.NewReader(f, 0)
	var buf bytes.Buffer // reused: one record at a time
	for {
		rr, err := r.Next()
		if err == nil {
			buf.Reset()
			_, err = buf.ReadFrom(rr)
		}
		switch {
		case errors.Is(err, io.EOF) || record.IsInvalidRecord(err):
			return nil
		case err != nil:
			return fmt.Errorf("read journal segment %d: %w", n, err)
		}
		if err := each(buf.Bytes()); err != nil {
			return err
		}
	}
}

// foldedThrough reads metaFolded: segments below it are in the key space.
func (s *Store) foldedThrough() (uint64, error) {
	v, closer, err := s.db.Get([]byte(metaFolded))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer func() { _ = closer.Close() }()
	if len(v) != 8 {
		return 0, fmt.Errorf("corrupt %s entry (%d bytes)", metaFolded, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// foldSegments folds the segments numbered below to that the mark does not
// cover yet, then removes every segment file below to.
func (s *Store) foldSegments(to uint64) (folded, error) {
	from, err := s.foldedThrough()
	if err != nil {
		return folded{}, err
	}
	nums, err := s.segments()
	if err != nil {
		return folded{}, err
	}
	var todo []uint64
	for _, n := range nums {
		if n >= from && n < to {
			todo = append(todo, n)
		}
	}
	read := func(each func(v []byte) error) error {
		for _, n := range todo {
			if err := s.readSegment(n, each); err != nil {
				return err
			}
		}
		return nil
	}
	mark := binary.BigEndian.AppendUint64(nil, to)
	var table DirtySource
	if t := s.table.Load(); t != nil {
		table = *t
	}
	f, err := s.fold(read, func(b *pebble.Batch) error { return b.Set([]byte(metaFolded), mark, nil) }, table)
	if err != nil {
		return f, err
	}
	for _, n := range nums {
		if n < to {
			if err := s.fs.Remove(s.fs.PathJoin(s.journal, segmentName(n))); err != nil {
				return f, err
			}
		}
	}
	return f, nil
}

// foldLegacyJournal folds a version-2 directory's in-Pebble journal.
func (s *Store) foldLegacyJournal() (folded, error) {
	read := func(each func(v []byte) error) error {
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: journalLower, UpperBound: journalUpper})
		if err != nil {
			return err
		}
		for ok := it.First(); ok; ok = it.Next() {
			v, err := it.ValueAndErr()
			if err == nil {
				err = each(v)
			}
			if err != nil {
				_ = it.Close()
				return err
			}
		}
		return it.Close()
	}
	return s.fold(read, func(b *pebble.Batch) error { return b.DeleteRange(journalLower, journalUpper, nil) }, nil)
}

// change is a key's last operation in the journal being folded; reported
// says the table's Dirty gave its TAT now, born why the key had no TAT
// before its first operation in the journal.
type change struct {
	key      string
	op       byte
	born     born
	reported bool
	tat      int64
	value    []byte
}

// born is why a key had no TAT before its first change in a fold.
type born byte

const (
	bornBefore  born = iota // it may have had one
	bornCreated             // the table created it (but see fold)
	bornFlushed             // a flush in the same fold removed it
)

// DirtySource is what a table offers a fold (gcra.Table implements it):
// every key a journalled change gave a TAT since the previous call, with
// its TAT now (see gcra.Table.Dirty), and any key's TAT now (Current).
// Both mark the keys they report as stored, which their removal tells the
// journal (RecordForget or not).
type DirtySource interface {
	Dirty(fn func(key []byte, tat int64))
	Current(key []byte) (int64, bool)
}

// folded is the outcome of one fold.
type folded struct {
	changes int // journalled changes read
	keys    int // keys written or deleted in the key space
}

// fold rewrites the journal records read yields into the key space, last
// change of each key winning, and commits finish's changes (which mark the
// records folded) in its last batch, synced. Until that batch the records
// stay unmarked, so a crash mid-fold leaves them to be folded again, and
// folding is idempotent: the same records fold to the same state over a
// partly folded key space.
//
// With a table (the one Load filled, see Dirty), an update of a key's TAT
// is not looked up at all: the table reports, once, every key changed since
// the previous fold with its TAT now, which is at least as recent as the
// records folded (a later change is in a later segment and folds again over
// it). A key the records create or remove, or update after a flush, takes
// its state now from the table too, reported or not: an earlier fold may
// have written a later state of it than these records hold (it reported
// the key and forgot it), which neither a creation's TAT nor a flush may
// undo. For the same reason a key the records create and remove is deleted
// from the key space unless its removal says no fold stored it (opForget).
func (s *Store) fold(read func(each func(v []byte) error) error, finish func(*pebble.Batch) error, table DirtySource) (folded, error) {
	var out folded
	// index maps a key to its change in changes: one hash lookup per
	// journalled change (the fold's main cost). Both are sized for as many
	// keys as the last fold had, so filling them rarely grows them.
	index := make(map[string]int32, s.lastFoldKeys)
	changes := make([]change, 0, s.lastFoldKeys)
	var flushed []string // namespaces flushed, in order
	flushedTATs := false
	var scratch []byte
	note := func(key []byte, c change) {
		if i, ok := index[string(key)]; ok {
			c.key, c.born = changes[i].key, changes[i].born
			changes[i] = c
			return
		}
		c.key = string(key)
		index[c.key] = int32(len(changes))
		changes = append(changes, c)
	}
	flush := func(ns string) {
		for i, c := range changes {
			if strings.HasPrefix(c.key, ns) {
				changes[i].op = opFlush // dropped: the range deletion covers it
				delete(index, c.key)
			}
		}
		flushed = append(flushed, ns)
	}
	err := read(func(v []byte) error {
		return ops([][]byte{v}, func(op byte, key []byte, tat int64, value []byte) error {
			out.changes++
			if out.changes%foldSlice == 0 {
				runtime.Gosched()
			}
			switch op {
			case opSet, opCreate, opDelete, opForget:
				if op == opSet && table != nil && !flushedTATs {
					return nil // the table has the key's last TAT
				}
				c := change{op: op, tat: tat}
				switch {
				case flushedTATs:
					c.born = bornFlushed
				case op == opCreate:
					c.born = bornCreated
				}
				scratch = append(append(scratch[:0], tatPrefix...), key...)
				note(scratch, c)
			case opPut:
				note(key, change{op: op, value: append([]byte(nil), value...)})
			case opDrop:
				note(key, change{op: op})
			case opFlush:
				flush(tatPrefix)
				flushedTATs = true
			case opFlushPrefix:
				flush(string(key))
			default:
				return fmt.Errorf("corrupt journal record: operation %d", op)
			}
			return nil
		})
	})
	if err != nil {
		return out, err
	}
	b := s.db.NewBatch()
	defer func() { _ = b.Close() }()
	for _, ns := range flushed {
		if err := b.DeleteRange([]byte(ns), prefixEnd([]byte(ns)), nil); err != nil {
			return out, err
		}
	}
	// The table's changed keys: those the records created or removed take
	// their TAT now in changes; the others are written from dirty.
	var dirty []byte // "t/" + key and 8 bytes of TAT, for each changed key
	var rest [][2]int
	if table != nil {
		var ends []int
		table.Dirty(func(key []byte, tat int64) { // quick: under a shard lock
			dirty = append(append(dirty, tatPrefix...), key...)
			dirty = binary.BigEndian.AppendUint64(dirty, uint64(tat))
			ends = append(ends, len(dirty))
		})
		start := 0
		for _, end := range ends {
			if i, ok := index[string(dirty[start:end-8])]; ok {
				changes[i].op, changes[i].tat = opSet, int64(binary.BigEndian.Uint64(dirty[end-8:end]))
				changes[i].reported = true
			} else {
				rest = append(rest, [2]int{start, end})
			}
			start = end
		}
		for i, c := range changes {
			if c.reported || c.op == opFlush || !strings.HasPrefix(c.key, tatPrefix) {
				continue
			}
			scratch = append(scratch[:0], c.key[len(tatPrefix):]...)
			if tat, ok := table.Current(scratch); ok {
				changes[i].op, changes[i].tat = opSet, tat
			} else if c.op == opSet || c.op == opCreate {
				changes[i].op = opDelete // removed since; the removal folds later
			}
		}
	}
	// wrote counts a key written and commits the batch every foldSlice
	// keys, letting connections run in between (with one CPU a long fold
	// would otherwise hold it for a whole scheduler time slice). A crash
	// between slices is harmless: the records are only marked folded by
	// the last one.
	wrote := func() error {
		if out.keys++; out.keys%foldSlice != 0 {
			return nil
		}
		if err := guard(func() error { return s.db.Apply(b, pebble.NoSync) }); err != nil {
			return err
		}
		b.Reset()
		runtime.Gosched()
		return nil
	}
	var val [8]byte
	for _, c := range changes {
		k := c.key
		switch {
		case c.op == opFlush:
			continue // flushed after its change
		case (c.op == opDelete || c.op == opForget) && c.born == bornFlushed:
			continue // the flush's range deletion, in this batch, removes it
		case c.op == opForget && c.born == bornCreated:
			continue // created and removed within the journal, never stored
		case c.op == opSet || c.op == opCreate:
			binary.BigEndian.PutUint64(val[:], uint64(c.tat))
			err = b.Set([]byte(k), val[:], nil)
		case c.op == opPut:
			err = b.Set([]byte(k), c.value, nil)
		default:
			err = b.Delete([]byte(k), nil)
		}
		if err == nil {
			err = wrote()
		}
		if err != nil {
			return out, err
		}
	}
	for _, r := range rest {
		e := dirty[r[0]:r[1]]
		err = b.Set(e[:len(e)-8], e[len(e)-8:], nil)
		if err == nil {
			err = wrote()
		}
		if err != nil {
			return out, err
		}
	}
	if err := finish(b); err != nil {
		return out, err
	}
	if err := guard(func() error { return s.db.Apply(b, pebble.Sync) }); err != nil {
		return out, err
	}
	s.lastFoldKeys = len(changes)
	return out, nil
}

// folder folds the segments below each number the writer sends, until the
// writer closes foldReq.
func (s *Store) folder() {
	defer close(s.folderDone)
	for to := range s.foldReq {
		start := time.Now()
		f, err := s.foldSegments(to)
		if err != nil {
			s.fail(fmt.Errorf("fold journal: %w", err))
		} else {
			s.folds.Add(1)
			s.foldedChanges.Add(uint64(f.changes))
			s.foldedKeys.Add(uint64(f.keys))
			s.log.Debug("persistence: folded journal", "changes", f.changes, "keys", f.keys, "took", time.Since(start))
		}
		s.folding.Store(false)
	}
}

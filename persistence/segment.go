package persistence

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/cockroachdb/pebble/record"
	"github.com/cockroachdb/pebble/vfs"
)

// The journal is how changes become durable cheaply. The writer appends
// each batch it takes from the pending log as one record (Pebble's record
// format: checksummed, block-framed) to a segment file in the journal
// directory, in the pending log's encoding, and syncs the segment as the
// mode asks. A decision then costs one write(2) shared with the others of
// its batch, and in Always mode one fdatasync(2) shared with its group: no
// Pebble commit pipeline, memtable insert or goroutine hand-off per batch.
// Segments are numbered in order; once one holds FoldBytes the writer
// closes it and the folder folds it into Pebble (fold.go).

// segmentExt ends a segment's file name.
const segmentExt = ".log"

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
// and its number recorded in Pebble (metaOpened) before anything that a
// reply waits for is written to it.
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
	// Only now that the file is there: a segment marked begun and not on
	// disk is one that went missing.
	if err := s.markOpened(s.nextSegment); err != nil {
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

// readSegment calls each with every record of segment n it can read, in
// order, up to the end of the file or of what was written (the zeros of
// the preallocation), and reports what it could not read (see scanLog and
// judgeSegment): a torn last record, or damage anywhere.
func (s *Store) readSegment(n uint64, each func(v []byte) error) (logScan, error) {
	name := s.fs.PathJoin(s.journal, segmentName(n))
	f, err := s.fs.Open(name)
	if err != nil {
		return logScan{}, err
	}
	defer func() { _ = f.Close() }()
	sc, err := scanLog(f, 0, false, each)
	if err != nil {
		return sc, fmt.Errorf("read journal segment %s: %w", name, err)
	}
	return sc, nil
}

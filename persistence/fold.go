package persistence

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/sluicehq/sluice/keyspace"
)

// Folding turns journal segments into Pebble's key space (layout.go). The
// folder goroutine folds the segments the writer closed; Open folds
// whatever a previous run left. A fold replays the segments' changes in
// order, keeps the last state of each (kind, key) — so a key changed a
// thousand times is written once — and writes them as one Pebble batch,
// committed in slices. The last slice also records which segments the fold
// covered (metaFolded) and is flushed with the others to an sstable; only
// then are their files removed (a damaged one is kept aside first, see
// damage.go). Folds
// skip the segments that mark covers, so a segment whose removal a crash
// lost is never folded twice, and Load reads the key space alone.

// foldSlice is how many changes a fold reads, or keys it writes, between
// yields to the scheduler.
const foldSlice = 1024

// foldJob asks the folder to fold the segments numbered below to; done,
// when not nil, receives the outcome (see Store.foldNow).
type foldJob struct {
	to   uint64
	done chan error
}

// folded is the outcome of one fold.
type folded struct {
	changes int // journalled changes read
	keys    int // keys written or deleted in Pebble
}

// folder folds what the writer asks for until the writer closes foldReq.
func (s *Store) folder() {
	defer close(s.folderDone)
	for job := range s.foldReq {
		if s.foldGate != nil {
			s.foldGate()
		}
		start := time.Now()
		f, err := s.foldSegments(job.to, false)
		if err != nil {
			err = fmt.Errorf("fold journal: %w", err)
			s.fail(err)
		} else {
			s.folds.Add(1)
			s.foldedChanges.Add(uint64(f.changes))
			s.foldedKeys.Add(uint64(f.keys))
			s.log.Debug("persistence: folded journal", "changes", f.changes, "keys", f.keys, "took", time.Since(start))
		}
		s.folding.Store(false)
		if job.done != nil {
			job.done <- err
		}
	}
}

// Aux returns the last value RecordAux recorded for name before the last
// Close or crash, or false when none was (or, after records were lost to
// damage accepted with Options.AcceptCorruption, none can be trusted).
// Call it after Open, before recording more.
func (s *Store) Aux(name string) ([]byte, bool, error) {
	v, closer, err := s.db.Get([]byte(auxPrefix + name))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	defer func() { _ = closer.Close() }()
	return append([]byte(nil), v...), true, nil
}

// foldedThrough reads metaFolded: segments below it are in the key space.
func (s *Store) foldedThrough() (uint64, error) { return s.mark(metaFolded) }

// mark reads one of the store's numbered marks, 0 when it is not set.
func (s *Store) mark(key string) (uint64, error) {
	v, closer, err := s.db.Get([]byte(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer func() { _ = closer.Close() }()
	if len(v) != 8 {
		return 0, fmt.Errorf("corrupt %s entry (%d bytes)", key, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// foldSegments folds the segments numbered below to that the mark does not
// cover yet, then removes every segment file below to. replay says the
// fold may repeat one a crash interrupted (see fold).
func (s *Store) foldSegments(to uint64, replay bool) (folded, error) {
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
	// At Open the newest segment's damage may be a torn tail (judgeSegment).
	var newest uint64
	if replay && len(nums) > 0 {
		newest = nums[len(nums)-1]
	}
	read := func(each func(rec []byte) error) error {
		if replay {
			each = s.replayProgress(todo, each)
		}
		for _, n := range todo {
			sc, err := s.readSegment(n, each)
			if err != nil {
				return err
			}
			if err := s.judgeSegment(n, sc, n == newest); err != nil {
				return err
			}
			if sc.damaged() {
				// Kept aside before the fold marks it folded: after that
				// mark it is removed unread.
				if err := s.keepAside(s.journal, segmentName(n)); err != nil {
					return err
				}
			}
		}
		return nil
	}
	f, err := s.fold(read, to, replay)
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

// foldEntry is the last state of one (kind, key) in a fold.
type foldEntry struct {
	key     string // the Pebble key: the kind's prefix and the key
	expires int64
	off     int    // the value's place in the fold's arena
	n, cap  uint32 // its length, and the room it has there
	set     bool   // the last change was a Set, not a Delete
	clean   bool   // nothing of the key can be in Pebble before the fold
}

// fold replays the journal records read yields, in order, and writes the
// last state of each (kind, key) into Pebble: a Set is stored, a Delete
// deleted. A Flush drops the changes before it and becomes range deletions
// of every kind at the head of the batch. The batch is committed in slices
// of foldSlice keys, yielding in between (with one CPU a long fold would
// otherwise hold it for a whole scheduler time slice); its last slice
// records in metaFolded that segments below to are folded, and the fold is
// flushed to an sstable. Until then the records stay unmarked, so a crash
// mid-fold leaves them to be folded again.
//
// A key's Delete needs no Pebble delete when nothing of the key can be in
// Pebble: when a Flush of this fold came before the key's first change in
// it, or when that first change is a Set the keyspace marked Created
// (nothing of the key's kind was live before it, so no earlier fold stored
// a live state of it; one that expired, if any, Load deletes). Such a key
// was born and died within the fold, and the fold writes nothing for it.
// The second reason does not hold for a fold that repeats one a crash
// interrupted, whose first slices may have stored the key: replay says
// the fold may be such a one (at Open), and then such keys are deleted.
func (s *Store) fold(read func(each func(rec []byte) error) error, to uint64, replay bool) (folded, error) {
	var out folded
	// index maps a Pebble key to its entry: one hash lookup per journalled
	// change (the fold's main cost). Both are sized for as many keys as the
	// last fold had, so filling them rarely grows them.
	index := make(map[string]int32, s.lastFoldKeys)
	entries := make([]foldEntry, 0, s.lastFoldKeys)
	var arena, scratch []byte // values; a Pebble key or value being built
	flushed := false
	var auxes map[string][]byte // the last value of each auxiliary field
	err := read(func(rec []byte) error {
		return decodeAux(rec, func(c keyspace.Change) error {
			out.changes++
			if out.changes%foldSlice == 0 {
				runtime.Gosched()
			}
			if c.Op == keyspace.Flush {
				clear(index)
				entries, arena, flushed = entries[:0], arena[:0], true
				return nil
			}
			scratch = append(append(scratch[:0], kindPrefix(c.Kind)...), c.Key...)
			i, ok := index[string(scratch)]
			if !ok {
				i = int32(len(entries))
				entries = append(entries, foldEntry{
					key:   string(scratch),
					clean: flushed || (c.Op == keyspace.Set && c.Created && !replay),
				})
				index[entries[i].key] = i
			}
			e := &entries[i]
			e.set = c.Op == keyspace.Set
			if e.set {
				e.expires, e.n = c.Expires, uint32(len(c.Value))
				if e.n > e.cap {
					e.off, e.cap = len(arena), e.n
					arena = append(arena, c.Value...)
				} else {
					copy(arena[e.off:], c.Value)
				}
			}
			return nil
		}, func(name, value []byte) error {
			if auxes == nil {
				auxes = map[string][]byte{}
			}
			auxes[string(name)] = append([]byte(nil), value...)
			return nil
		})
	})
	if err != nil {
		return out, err
	}
	b := s.db.NewBatch()
	defer func() { _ = b.Close() }()
	if flushed {
		for _, k := range kinds {
			if err := b.DeleteRange([]byte(k.prefix), prefixEnd(k.prefix), nil); err != nil {
				return out, err
			}
		}
	}
	var key []byte
	for i := range entries {
		e := &entries[i]
		key = append(key[:0], e.key...)
		switch {
		case e.set:
			scratch = appendValue(scratch[:0], e.expires, arena[e.off:e.off+int(e.n)])
			err = b.Set(key, scratch, nil)
		case e.clean:
			continue // born and died within the fold
		default:
			err = b.Delete(key, nil)
		}
		if err != nil {
			return out, err
		}
		if out.keys++; out.keys%foldSlice == 0 {
			// A slice: a crash after it is harmless, the records are
			// only marked folded by the last one.
			if err := guard(func() error { return s.db.Apply(b, pebble.NoSync) }); err != nil {
				return out, err
			}
			b.Reset()
			runtime.Gosched()
		}
	}
	// The auxiliary fields go in the last slice, with the mark: until it
	// is committed the records are folded again, fields and all. After a
	// loss of records other than a torn tail, a field may describe changes
	// that are gone: every field is dropped.
	if s.auxLost {
		// Only this fold's: fields recorded later follow a resync.
		s.auxLost = false
		if err := b.DeleteRange([]byte(auxPrefix), prefixEnd(auxPrefix), nil); err != nil {
			return out, err
		}
	} else {
		for name, value := range auxes {
			if err := b.Set([]byte(auxPrefix+name), value, nil); err != nil {
				return out, err
			}
		}
	}
	if err := b.Set([]byte(metaFolded), binary.BigEndian.AppendUint64(nil, to), nil); err != nil {
		return out, err
	}
	// Flushed to an sstable before the segments go: Pebble's write-ahead
	// log then never holds the only copy of a change, so its damage or loss
	// costs nothing acknowledged (Pebble reads a damaged log tail as its
	// end, without a word). The commit is synced first all the same: a
	// log that cannot be synced fails here, with an error, rather than in
	// the flush's log rotation, where Pebble panics holding its lock.
	if err := guard(func() error {
		if err := s.db.Apply(b, pebble.Sync); err != nil {
			return err
		}
		return s.db.Flush()
	}); err != nil {
		return out, err
	}
	s.lastFoldKeys = len(entries)
	return out, nil
}

// foldNow folds everything recorded before the call into Pebble and returns
// the fold's outcome: the writer closes its segment and the folder folds
// it, as it would a full one. Tests drive folds with it.
func (s *Store) foldNow() error {
	if err := s.Sync(); err != nil {
		return err
	}
	done := make(chan error, 1)
	select {
	case s.foldNowReq <- done:
	case <-s.done:
		return ErrClosed
	}
	return <-done
}

package persistence

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/cockroachdb/pebble"
)

// The journal is how changes reach Pebble cheaply: each batch the writer
// commits is one Pebble key, journalPrefix + an 8-byte big-endian entry
// number, whose value is the batch's operations in the pending-log encoding.
// A decision then costs Pebble a copy into its write-ahead log, not an
// insert into its memtable and later flushes and compactions of its own.
// Once FoldBytes have been journalled, the folder goroutine folds the
// journal into the key space ("t/" + key -> TAT and the other namespaces):
// the last change of each key wins, so a key changed a thousand times in
// the meantime is written once, and the folded entries are removed with a
// range deletion in the same batch. Open folds whatever journal a previous
// run left, so Load and LoadValues read the key space alone.
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

// journalKey is the Pebble key of journal entry n.
func journalKey(n uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte(journalPrefix), n)
}

// folded is the outcome of one fold.
type folded struct {
	changes int // journalled changes read
	keys    int // keys written or deleted in the key space
}

// fold rewrites the journal entries in [lower, upper) into the key space
// and then deletes them. The journal goes last, so a crash mid-fold leaves
// it in place, and folding is idempotent: the journal folds to the same
// state over a partly folded key space.
func (s *Store) fold(lower, upper []byte) (folded, error) {
	var out folded
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return out, err
	}
	// change is a key's last operation in the journal; born says the key
	// had no TAT before its first one (created by the table, or after a
	// flush), so if it ends removed there is nothing to delete.
	type change struct {
		key   string
		op    byte
		born  bool
		tat   int64
		value []byte
	}
	// index maps a key to its change in changes: one hash lookup per
	// journalled change, on a small map (the fold's main cost).
	index := make(map[string]int32, s.lastFoldKeys)
	var changes []change
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
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return out, err
		}
		err = ops([][]byte{v}, func(op byte, key []byte, tat int64, value []byte) error {
			out.changes++
			if out.changes%foldSlice == 0 {
				runtime.Gosched()
			}
			switch op {
			case opSet, opCreate, opDelete:
				scratch = append(append(scratch[:0], tatPrefix...), key...)
				note(scratch, change{op: op, born: op == opCreate || flushedTATs, tat: tat})
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
				return fmt.Errorf("corrupt journal entry %x: operation %d", it.Key(), op)
			}
			return nil
		})
		if err != nil {
			_ = it.Close()
			return out, err
		}
	}
	if err := it.Close(); err != nil {
		return out, err
	}
	b := s.db.NewBatch()
	defer func() { _ = b.Close() }()
	for _, ns := range flushed {
		if err := b.DeleteRange([]byte(ns), prefixEnd([]byte(ns)), nil); err != nil {
			return out, err
		}
	}
	var val [8]byte
	for _, c := range changes {
		k := c.key
		switch {
		case c.op == opFlush:
			continue // flushed after its change
		case c.op == opDelete && c.born:
			continue // created and removed within the journal
		case c.op == opSet || c.op == opCreate:
			binary.BigEndian.PutUint64(val[:], uint64(c.tat))
			err = b.Set([]byte(k), val[:], nil)
		case c.op == opPut:
			err = b.Set([]byte(k), c.value, nil)
		default:
			err = b.Delete([]byte(k), nil)
		}
		if err != nil {
			return out, err
		}
		out.keys++
		if out.keys%foldSlice == 0 {
			// Commit in slices, letting connections run in between (with
			// one CPU a long fold would otherwise hold it for a whole
			// scheduler time slice). A crash between slices is harmless:
			// the journal is only deleted by the last one.
			if err := guard(func() error { return s.db.Apply(b, pebble.NoSync) }); err != nil {
				return out, err
			}
			b.Reset()
			runtime.Gosched()
		}
	}
	if err := b.DeleteRange(lower, upper, nil); err != nil {
		return out, err
	}
	// NoSync: the journal stays until the fold is on disk, so a fold lost
	// to a crash is simply done again.
	if err := guard(func() error { return s.db.Apply(b, pebble.NoSync) }); err != nil {
		return out, err
	}
	s.lastFoldKeys = len(changes)
	return out, nil
}

// folder folds the journal below each entry number the writer sends, until
// the writer closes foldReq.
func (s *Store) folder() {
	defer close(s.folderDone)
	from := uint64(1)
	for to := range s.foldReq {
		start := time.Now()
		f, err := s.fold(journalKey(from), journalKey(to))
		if err != nil {
			s.fail(fmt.Errorf("fold journal: %w", err))
		} else {
			from = to
			s.folds.Add(1)
			s.foldedChanges.Add(uint64(f.changes))
			s.foldedKeys.Add(uint64(f.keys))
			s.log.Debug("persistence: folded journal", "changes", f.changes, "keys", f.keys, "took", time.Since(start))
		}
		s.folding.Store(false)
	}
}

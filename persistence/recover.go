package persistence

import (
	"fmt"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/sluicehq/sluice/keyspace"
)

// Recovery takes two steps. Open folds the journal a previous run left into
// Pebble (replay), so that Pebble alone holds the state; Load then hands
// every live state to the keyspace.

// Restorer receives the recovered state; the keyspace implements it.
// Restore applies c without journalling it back: the store already holds
// it. Load passes only Sets, marked Created (the keyspace it fills holds
// nothing yet); c.Key and c.Value are only valid during the call.
type Restorer interface {
	Restore(c keyspace.Change, now int64) error
}

// replay folds the segments a previous run left into Pebble and numbers
// the writer's first segment after every segment found or begun. Damaged
// and missing segments are judged as damage.go says.
func (s *Store) replay() (int, error) {
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
	opened, err := s.mark(metaOpened)
	if err != nil {
		return 0, err
	}
	if err := s.judgeMissing(missingSegments(nums, through, opened)); err != nil {
		return 0, err
	}
	// Numbers are never reused, a missing segment's included.
	s.nextSegment = max(1, through, opened+1)
	if len(nums) > 0 {
		s.nextSegment = max(s.nextSegment, nums[len(nums)-1]+1)
	}
	s.foldAsked = s.nextSegment
	if len(nums) == 0 {
		return 0, nil
	}
	// A crash may have interrupted a fold of these segments: replay.
	f, err := s.foldSegments(s.nextSegment, true)
	return f.changes, err
}

// Load hands dst every state on disk whose Expires is after now, kind by
// kind, as a Set, and deletes from disk the states that expired while
// Sluice was down and any malformed entry. Call it once, before serving:
// changes recorded meanwhile are not ordered with it.
func (s *Store) Load(dst Restorer, now int64) (Recovery, error) {
	start := time.Now()
	var rec Recovery
	b := s.db.NewBatch()
	defer func() { _ = b.Close() }()
	for _, k := range kinds {
		if err := s.loadKind(dst, now, k.kind, k.prefix, b, rec.of(k.kind)); err != nil {
			return rec, err
		}
	}
	if err := guard(func() error { return s.db.Apply(b, pebble.NoSync) }); err != nil {
		return rec, fmt.Errorf("delete expired state in %s: %w", s.dir, err)
	}
	if n := rec.Total().Invalid; n > 0 {
		s.log.Warn("persistence: deleted malformed entries", "count", n, "dir", s.dir)
	}
	rec.Duration = time.Since(start)
	s.recMu.Lock()
	rec.Replayed = s.recovery.Replayed
	rec.Duration += s.recovery.Duration
	s.recovery = rec
	s.recMu.Unlock()
	return rec, nil
}

// loadKind restores the states of kind, stored under prefix, counting in
// rec and adding the deletions to b (applied in pieces when it grows).
func (s *Store) loadKind(dst Restorer, now int64, kind keyspace.Kind, prefix string, b *pebble.Batch, rec *KindRecovery) (err error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte(prefix), UpperBound: prefixEnd(prefix)})
	if err != nil {
		return fmt.Errorf("read data dir %s: %w", s.dir, err)
	}
	defer func() {
		if cerr := it.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("read data dir %s: %w", s.dir, cerr)
		}
	}()
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("read data dir %s: %w", s.dir, err)
		}
		s.loaded(len(it.Key()) + len(v))
		key := it.Key()[len(prefix):]
		expires, value, perr := parseValue(v)
		switch {
		case perr != nil:
			rec.Invalid++
		case expires <= now:
			rec.Expired++
		default:
			c := keyspace.Change{Op: keyspace.Set, Kind: kind, Created: true, Key: key, Expires: expires, Value: value}
			if err := dst.Restore(c, now); err != nil {
				return fmt.Errorf("restore %s state of key %q: %w", kind, key, err)
			}
			rec.Restored++
			continue
		}
		if err := b.Delete(it.Key(), nil); err != nil {
			return err
		}
		if b.Len() >= 1<<20 {
			if err := guard(func() error { return s.db.Apply(b, pebble.NoSync) }); err != nil {
				return fmt.Errorf("delete expired state in %s: %w", s.dir, err)
			}
			b.Reset()
		}
	}
	return nil
}

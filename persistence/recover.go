package persistence

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble"
)

// Setter receives recovered TATs; *gcra.Table implements it. Set must not
// journal the change back (the store already holds it).
type Setter interface {
	Set(key []byte, tat, now int64) error
}

// Load puts every TAT still after now into dst and deletes from disk the ones
// that have passed (and any malformed entry). Call it once, before serving:
// changes recorded meanwhile are not ordered with it. When dst is also a
// DirtySource (a gcra.Table is), it must be the table that journals to s:
// folds then read the last TAT of every changed key from it.
func (s *Store) Load(dst Setter, now int64) (Recovery, error) {
	if d, ok := dst.(DirtySource); ok {
		s.table.Store(&d)
	}
	start := time.Now()
	var rec Recovery
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: tatLower, UpperBound: tatUpper})
	if err != nil {
		return rec, fmt.Errorf("read data dir %s: %w", s.dir, err)
	}
	b := s.db.NewBatch()
	flushDeletes := func() error {
		if b.Empty() {
			return nil
		}
		if err := guard(func() error { return s.db.Apply(b, pebble.NoSync) }); err != nil {
			return fmt.Errorf("delete expired keys in %s: %w", s.dir, err)
		}
		b.Reset()
		return nil
	}
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			b.Close()
			return rec, fmt.Errorf("read data dir %s: %w", s.dir, err)
		}
		var tat int64
		if len(v) == 8 {
			tat = int64(binary.BigEndian.Uint64(v))
		}
		switch {
		case tat <= 0:
			rec.Invalid++
		case tat <= now:
			rec.Expired++
		default:
			if err := dst.Set(k[len(tatPrefix):], tat, now); err != nil {
				_ = it.Close()
				b.Close()
				return rec, fmt.Errorf("load key %q: %w", k[len(tatPrefix):], err)
			}
			rec.Keys++
			continue
		}
		if err := b.Delete(k, nil); err != nil {
			_ = it.Close()
			b.Close()
			return rec, err
		}
		if b.Len() >= 1<<20 {
			if err := flushDeletes(); err != nil {
				_ = it.Close()
				b.Close()
				return rec, err
			}
		}
	}
	err = it.Close()
	if err == nil {
		err = flushDeletes()
	}
	b.Close()
	if err != nil {
		return rec, fmt.Errorf("read data dir %s: %w", s.dir, err)
	}
	if rec.Invalid > 0 {
		s.log.Warn("persistence: deleted malformed entries", "count", rec.Invalid, "dir", s.dir)
	}
	rec.Duration = time.Since(start)
	s.recMu.Lock()
	rec.Replayed = s.recovery.Replayed
	rec.Duration += s.recovery.Duration
	s.recovery = rec
	s.recMu.Unlock()
	return rec, nil
}

// LoadValues calls fn for every key of namespace ns (without ns) and its
// value, and deletes from disk the entries for which fn returns false
// (expired or malformed state). It returns how many were kept.
func (s *Store) LoadValues(ns string, fn func(key, value []byte) bool) (int, error) {
	prefix := []byte(ns)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return 0, fmt.Errorf("read data dir %s: %w", s.dir, err)
	}
	b := s.db.NewBatch()
	defer b.Close()
	kept := 0
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return kept, fmt.Errorf("read data dir %s: %w", s.dir, err)
		}
		if fn(it.Key()[len(prefix):], v) {
			kept++
		} else if err := b.Delete(it.Key(), nil); err != nil {
			_ = it.Close()
			return kept, err
		}
	}
	if err := it.Close(); err != nil {
		return kept, fmt.Errorf("read data dir %s: %w", s.dir, err)
	}
	if err := guard(func() error { return s.db.Apply(b, pebble.NoSync) }); err != nil {
		return kept, fmt.Errorf("delete expired state in %s: %w", s.dir, err)
	}
	return kept, nil
}
